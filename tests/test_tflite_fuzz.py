"""Differential fuzzing of the TFLite frontend on a fixed sample of seeded random graphs
(tests/fixtures/fuzz, written by scripts/make_tflite_fuzz.py: seeds 0..39, and 370, 408 and 542 where the sweep
of scripts/fuzz_tflite.py found bugs; 542 is a softmax over one channel, which failed to build):
each model imports and equals TF Lite Micro byte for byte (every output on two inputs, and operator by
operator on TFLM's own tensors), or is refused with an error naming the file and
the operator; a few imported ones also compiled to C and run on the host."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.tflm import run_tflm_outputs

from conftest import FIXTURES
from fuzzcases import check_model, single_io
from opcases import run_compiled

FUZZ = FIXTURES / "fuzz"
MODELS = sorted(FUZZ.glob("*.tflite"))
#: imported models (one input, one output, varied outputs) also compiled for the host: FULLY_CONNECTED on a
#: reshaped conv output and SUB; average pool, LOGISTIC, a broadcasting MAXIMUM, QUANTIZE; two depthwise and
#: MAXIMUM; a conv and MINIMUM; a 5x3 VALID conv and HARD_SWISH; TANH, QUANTIZE, CONCATENATION; depthwise on
#: H = 1, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE
COMPILED = ("fuzz_0001", "fuzz_0008", "fuzz_0012", "fuzz_0013", "fuzz_0017", "fuzz_0018", "fuzz_0023",
            # regressions found by scripts/fuzz_tflite.py: a 1x1 max pool (every output was -128); depthwise
            # convolutions on W = 1 whose taps all read padding (the C did not compile: unused weights)
            "fuzz_0370", "fuzz_0408")
#: how many of the sample import today (raise it as operators land)
IMPORTED_FLOOR = 43


def test_manifest_lists_every_model() -> None:
    manifest = json.loads((FUZZ / "MANIFEST.json").read_text())
    assert sorted(manifest["models"]) == [p.name for p in MODELS]
    for p in MODELS:
        assert hashlib.sha256(p.read_bytes()).hexdigest() == manifest["models"][p.name]["sha256"], p.name
    assert sum(p.stat().st_size for p in MODELS) < 600_000


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_fuzz_model_imports_exactly_or_is_refused(path) -> None:
    outcome = check_model(path)
    assert outcome.status != "mismatch", f"{path.name}: {outcome.reason}"
    if outcome.status == "refused":
        pytest.skip(f"refused: {outcome.reason}: {outcome.detail}")


def test_most_fuzz_models_import() -> None:
    """A floor on coverage: how many of the sample import (each checked against TFLM above)."""
    imported = sum(check_model(path, seeds=()).status == "imported" for path in MODELS)
    assert imported >= IMPORTED_FLOOR, imported


@pytest.mark.parametrize("name", COMPILED)
def test_fuzz_model_compiled_equals_tflm(name: str, tmp_path) -> None:
    """The generated C (host) equals TFLM on the original file, on two inputs."""
    outcome = check_model(FUZZ / f"{name}.tflite")
    assert outcome.status == "imported" and single_io(outcome), outcome
    outputs = run_compiled(compile_relax(outcome.mod, mcpu=None), "host", tmp_path,
                           [xs[0] for xs in outcome.inputs])
    for seed, (xs, output) in enumerate(zip(outcome.inputs, outputs, strict=True)):
        expected = run_tflm_outputs(outcome.path, xs)[0]
        assert np.unique(expected).size > 1
        assert output == expected.tobytes(), f"{name} input seed {seed} (C)"
