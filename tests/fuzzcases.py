"""The differential check of one random-graph .tflite (scripts/make_tflite_fuzz.py): imported and equal to
TF Lite Micro byte for byte, or refused with an error of ours naming the file and the operator. Shared by
tests/test_tflite_fuzz.py and scripts/fuzz_tflite.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcunet_tvm.errors import UnsupportedModelError
from mcunet_tvm.frontend.tflite import import_tflite, read_model
from mcunet_tvm.frontend.tflite.importer import convert
from mcunet_tvm.ir import KernelCall, program_of
from mcunet_tvm.reference.graph_ref import run_call, run_program
from mcunet_tvm.reference.tflm import run_tflm_outputs, run_tflm_tensors


@dataclass
class Outcome:
    """What the frontend did with one file."""

    path: Path
    status: str  # imported | refused | mismatch (scripts/fuzz_tflite.py adds traceback)
    reason: str = ""  # refused: the operator (or what) refused; mismatch: which output, which input
    detail: str = ""  # refused: the error's text
    mod: object = None
    inputs: list = field(default_factory=list)  # imported: the input sets checked


def inputs_for(prog, seed: int) -> list[np.ndarray]:
    """One int8 array per model input, seeded."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, prog.shapes[n], dtype=np.int8) for n in prog.inputs]


def refusal_reason(exc: UnsupportedModelError) -> str:
    """A short key for a refusal: the TFLite operator ``where`` names (else where it points)."""
    op = re.search(r"operator #\d+ (\w+)", exc.where)
    return op.group(1) if op else exc.where.removeprefix(str(exc.where).split(":")[0]).strip(": ")[:40]


def check_model(path: Path, seeds=(0, 1)) -> Outcome:
    """Import ``path``; if it imports, compare the reference on the imported program with TFLM on each seed's
    inputs (every output, byte for byte). A refusal must name the file and an operator index."""
    try:
        mod = import_tflite(path)[0]
    except UnsupportedModelError as exc:
        # the file and the operator (or, refusing the model's interface, the file alone)
        assert exc.where == str(path) or re.match(re.escape(f"{path}: operator #") + r"\d+ ", exc.where), \
            exc.format()
        return Outcome(path, "refused", refusal_reason(exc), detail=exc.what)
    prog = program_of(mod)
    sets = [inputs_for(prog, seed) for seed in seeds]
    for seed, xs in zip(seeds, sets, strict=True):
        ours, tflm = run_program(prog, xs), run_tflm_outputs(path, xs)
        assert len(ours) == len(tflm)
        for k, (a, b) in enumerate(zip(ours, tflm, strict=True)):
            if a.shape != b.shape or a.tobytes() != b.tobytes():
                diff = int(np.count_nonzero(a.reshape(-1) != b.reshape(-1))) if a.size == b.size else -1
                return Outcome(path, "mismatch", f"output {k} on input seed {seed}: {diff} of {b.size} differ", mod=mod,
                               inputs=sets)
    step = first_wrong_step(path, sets[0]) if sets else None
    if step is not None:
        return Outcome(path, "mismatch", step, mod=mod, inputs=sets)
    return Outcome(path, "imported", mod=mod, inputs=sets)


def first_wrong_step(path: Path, xs: list[np.ndarray]) -> str | None:
    """Operator by operator: each imported step, run by the numpy reference on TFLM's own inputs to it, must
    write TFLM's bytes (an oracle even where random weights saturate the outputs); the first that does not."""
    ctx = convert(read_model(path))
    written = [s.output for s in ctx.steps if s.output >= 0]
    tflm = run_tflm_tensors(path, xs, [*ctx.model.inputs, *written])
    values = dict(zip(ctx.model.inputs, xs, strict=True))
    for k, step in enumerate(ctx.steps):
        call = KernelCall("k", step.lowered.op, (), tuple(step.lowered.consts), "")
        args = [tflm[i] if i in tflm else values[i] for i in step.inputs]
        values[step.output] = run_call(call, args).reshape(step.lowered.op.out_shape)
        if step.output >= 0 and values[step.output].tobytes() != tflm[step.output].tobytes():
            return f"step {k} ({step.lowered.op.kind}) writing tensor {step.output} differs from TFLM"
    return None


def single_io(outcome: Outcome) -> bool:
    """One input and one output: what tests/opcases.run_compiled drives."""
    prog = program_of(outcome.mod)
    return len(prog.inputs) == 1 and len(prog.outputs) == 1
