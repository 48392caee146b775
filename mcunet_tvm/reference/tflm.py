"""Run a .tflite model with TF Lite Micro on the host (the ``tflite-micro`` package).

Used as the external reference for int8 results and for TFLM's memory use.
The arena figures come from TFLM's own RecordingMicroAllocator: ``arena_bytes``
is the total arena TFLM needs (``head``: the planned activation tensors, plus
``tail``: persistent runtime structures), ``tensor_arena_bytes`` the head alone.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

_ARENA_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class TflmResult:
    output: np.ndarray
    arena_bytes: int
    tensor_arena_bytes: int


def _captured_stdout(fn) -> str:
    """Run ``fn`` and return what native code printed (TFLM logs to stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
            ctypes.CDLL(None).fflush(None)  # native stdio buffers
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def _typed(x) -> np.ndarray:
    """An input as TFLM takes it: float and int16 arrays as they are (a float32 or 16x8 model input),
    anything else int8."""
    x = np.asarray(x)
    return np.ascontiguousarray(x if x.dtype.kind == "f" or x.dtype == np.int16 else x.astype(np.int8))


def run_tflm(model: str | Path | bytes, inputs: np.ndarray) -> TflmResult:
    """Invoke TFLM once on ``inputs`` (int8, int16 for a 16x8 model, or float32 for a float input; the
    model's input shape)."""
    from tflite_micro import runtime

    if isinstance(model, bytes):
        data = model
    else:
        try:
            data = Path(model).read_bytes()
        except OSError as exc:
            raise ModelFileError(f"cannot read the model file: {exc.strerror}", where=str(model)) from None
    interp = runtime.Interpreter.from_bytes(data, arena_size=_ARENA_SIZE)
    interp.set_input(_typed(inputs), 0)
    interp.invoke()
    output = np.array(interp.get_output(0), copy=True)
    return TflmResult(output, *_allocations(interp))


def run_tflm_tensors(model: str | Path, inputs: np.ndarray | list[np.ndarray],
                     indices: list[int]) -> dict[int, np.ndarray]:
    """Invoke TFLM once with every tensor preserved; the values of tensors ``indices`` (subgraph 0):
    a per-operator oracle (each intermediate result, not only the output). ``inputs``: the input
    array, or one per model input in order."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(Path(model).read_bytes(), arena_size=_ARENA_SIZE,
                                            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for k, x in enumerate(inputs if isinstance(inputs, list) else [inputs]):
        interp.set_input(_typed(x), k)
    interp.invoke()
    values = {}
    for i in indices:
        info = interp.GetTensor(i, 0)
        values[i] = np.array(info["tensor_data"], copy=True).reshape(info["shape"])
    return values


def run_tflm_outputs(model: str | Path | bytes, inputs, arena_size: int = 1 << 20) -> list[np.ndarray]:
    """Invoke TFLM once with one array per model input (in the model's input order); all outputs.

    Unlike :func:`run_tflm` it takes several inputs, returns every output (in the model's output
    order, with its own dtype) and skips the arena report.
    """
    import tflite
    from tflite_micro import runtime

    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    graph = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    inputs = list(inputs)
    if len(inputs) != graph.InputsLength():
        raise ValueError(f"the model has {graph.InputsLength()} inputs, {len(inputs)} given")
    interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
    for index, array in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(array), index)
    interp.invoke()
    return [np.array(interp.get_output(i), copy=True) for i in range(graph.OutputsLength())]


def tflm_arena_bytes(model: bytes) -> tuple[int, int]:
    """(total, tensor) arena TFLM allocates for ``model``, without running it."""
    from tflite_micro import runtime

    return _allocations(runtime.Interpreter.from_bytes(model, arena_size=_ARENA_SIZE))


def _allocations(interp) -> tuple[int, int]:
    """(total, head) arena bytes from TFLM's RecordingMicroAllocator report."""
    text = _captured_stdout(interp.print_allocations)
    total = re.search(r"Arena allocation total (\d+) bytes", text)
    head = re.search(r"Arena allocation head (\d+) bytes", text)
    if total is None or head is None:
        raise RuntimeError(f"unexpected TFLM allocation report: {text[:200]!r}")
    return int(total.group(1)), int(head.group(1))
