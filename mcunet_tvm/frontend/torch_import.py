"""PyTorch to Relax: ``torch.export`` programs through ``relax.frontend.torch``.

The float graph keeps PyTorch's NCHW layout; quantisation (``quant.ptq``)
moves it to NHWC. Weights are embedded as constants.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import tvm
from tvm.relax.frontend.torch import from_exported_program

from ..errors import ModelFileError, UnsupportedModelError


@contextmanager
def quiet_torch() -> Iterator[None]:
    """torch.export without the notices users cannot act on: the pytree ``LeafSpec`` deprecation
    (raised inside torch and TVM's importer), and ``torch.export.load`` logging a traceback before it
    raises the error we report."""
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def import_exported(program: torch.export.ExportedProgram) -> tvm.IRModule:
    """Relax module (float, NCHW) of an exported program."""
    try:
        with quiet_torch():
            mod = from_exported_program(program, keep_params_as_input=False)
    except Exception as exc:
        raise UnsupportedModelError(
            f"TVM's PyTorch importer rejected the program: {str(exc).strip().splitlines()[-1]}"
        ) from None
    return mod


def import_torch(model: torch.nn.Module, input_shape: tuple[int, ...]) -> tvm.IRModule:
    """Export ``model`` (eval mode) for one NCHW input of ``input_shape`` and import it."""
    model = model.eval()
    with torch.no_grad(), quiet_torch():
        program = torch.export.export(model, (torch.zeros(input_shape),))
    return import_exported(program)


def load_pt2(path: Path) -> tuple[tvm.IRModule, tuple[int, ...]]:
    """Load a program saved with ``torch.export.save``; returns the module and its NCHW input shape."""
    try:
        with quiet_torch():
            program = torch.export.load(str(path))
    except FileNotFoundError:
        raise ModelFileError("model file not found", where=str(path)) from None
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise ModelFileError(
            f"not a readable torch.export program: {reason}",
            where=str(path),
            hint="save it with torch.export.save(torch.export.export(model, (example,)), 'model.pt2')",
        ) from None
    inputs = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    if len(inputs) != 1:
        raise UnsupportedModelError(f"the program has {len(inputs)} inputs; exactly one is supported",
                                    where=str(path))
    placeholder = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == inputs[0].arg.name)
    shape = tuple(int(d) for d in placeholder.meta["val"].shape)
    if len(shape) != 4:
        raise UnsupportedModelError(f"the input has shape {shape}; an NCHW image tensor is expected",
                                    where=str(path))
    return import_exported(program), shape
