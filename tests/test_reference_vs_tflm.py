"""The numpy reference and our TFLite export agree with TF Lite Micro byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
import tflite
from tvm.relax.frontend.tflite import from_tflite

from mcunet_tvm.export.tflite_writer import program_to_tflite
from mcunet_tvm.frontend.torch_import import import_torch
from mcunet_tvm.frontend.zoo import get_model
from mcunet_tvm.ir import program_of
from mcunet_tvm.passes.lower_qdq import lower_qdq_to_integer
from mcunet_tvm.quant.fixedpoint import quantize_multiplier
from mcunet_tvm.quant.ptq import quantize_model
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.reference.tflm import run_tflm

from conftest import FIXTURES


def _program(path):
    mod = from_tflite(tflite.Model.GetRootAsModel(path.read_bytes(), 0))
    return program_of(lower_qdq_to_integer(mod[0] if isinstance(mod, tuple) else mod))


@pytest.mark.parametrize("name", ["tiny_cnn.tflite", "tiny_valid_cnn.tflite"])
def test_reference_matches_tflm(name: str) -> None:
    prog = _program(FIXTURES / name)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(-128, 128, prog.shapes[prog.input], dtype=np.int8)
        expected = run_tflm(FIXTURES / name, x).output.reshape(-1)
        assert np.array_equal(run_reference(prog, x).reshape(-1), expected)


@pytest.mark.parametrize("name", ["tiny_cnn.tflite", "tiny_valid_cnn.tflite"])
def test_export_roundtrip_matches_original(name: str) -> None:
    prog = _program(FIXTURES / name)
    exported = program_to_tflite(prog)
    x = np.random.default_rng(1).integers(-128, 128, prog.shapes[prog.input], dtype=np.int8)
    assert np.array_equal(run_tflm(exported, x).output, run_tflm(FIXTURES / name, x).output)


def test_pytorch_model_matches_tflm_through_export() -> None:
    zm = get_model("demo-cnn")
    n, h, w, c = zm.input_shape_nhwc
    prog = program_of(lower_qdq_to_integer(
        quantize_model(import_torch(zm.torch_module, (n, c, h, w)), zm.calib_fn())))
    exported = program_to_tflite(prog)
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.integers(-128, 128, prog.shapes[prog.input], dtype=np.int8)
        assert np.array_equal(run_reference(prog, x).reshape(-1), run_tflm(exported, x).output.reshape(-1))


@pytest.mark.parametrize(
    "real,expected",
    [(0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.75, (1610612736, 0)), (0.0, (0, 0)),
     (2.0 ** -40, (0, 0)), (0.9999999999, (1 << 30, 1))],
)
def test_quantize_multiplier_corner_cases(real: float, expected: tuple[int, int]) -> None:
    assert quantize_multiplier(real) == expected
