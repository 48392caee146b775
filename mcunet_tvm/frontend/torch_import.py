"""PyTorch to Relax: ``torch.export`` programs through ``relax.frontend.torch``.

The float graph keeps PyTorch's NCHW layout; quantisation (``quant.ptq``)
moves it to NHWC. Weights are embedded as constants. A program whose every
operator is in ``DIRECT_OPS`` is translated as exported, without PyTorch's
decomposition pass (which retraces the whole program: 1-2 s of a zoo model's
build); any other program is decomposed first, as TVM's importer does by default.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import tvm
from torch import fx
from tvm import relax
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


#: aten operators TVM translates correctly as exported (inference), so programs of only these skip the
#: decomposition; tests/test_torch_import.py checks each against the decomposed import
DIRECT_OPS = frozenset({
    "aten.add.Tensor", "aten.batch_norm.default", "aten.conv2d.default", "aten.hardtanh.default",
    "aten.relu.default", "aten.linear.default", "aten.mean.dim",
})


def _batch_norm_inference(node: fx.Node, importer) -> relax.Var:
    """``aten.batch_norm`` (input, weight, bias, mean, var, training, momentum, eps, cudnn) in inference: TVM's
    direct converter reads momentum and eps one position early and trains."""
    x = importer.env[node.args[0]]
    channels = int(importer.shape_of(x)[1])
    dtype = x.ty.dtype.dtype
    defaults = (np.ones(channels), np.zeros(channels), np.zeros(channels), np.ones(channels))
    params = [importer.env[a] if a is not None else relax.const(d, dtype=dtype)
              for a, d in zip(node.args[1:5], defaults, strict=True)]
    momentum, eps = node.args[6], node.args[7]
    norm = importer.block_builder.emit(relax.op.nn.batch_norm(
        x, *params, axis=1, epsilon=eps, center=node.args[2] is not None, scale=node.args[1] is not None,
        momentum=momentum, training=False))
    return importer.block_builder.emit(norm[0])


def _linear_as_addmm(node: fx.Node, importer) -> relax.Var:
    """``aten.linear`` of a 2-D input with a bias, as the decomposition writes it (``addmm``): the
    transposed weight, a matmul, the bias added first."""
    x, weight, bias = (importer.env[a] for a in node.args[:3])
    emit = importer.block_builder.emit
    product = emit(relax.op.matmul(x, emit(relax.op.permute_dims(weight, [1, 0])), out_dtype="float32"))
    return emit(relax.op.add(bias, product))


def _direct_call(node: fx.Node) -> bool:
    target = str(node.target)
    if target == "aten.batch_norm.default":
        return not node.args[5]  # not training
    if target == "aten.linear.default":
        return len(node.args) > 2 and node.args[2] is not None and node.args[0].meta["val"].dim() == 2
    return target in DIRECT_OPS


def _direct(program: torch.export.ExportedProgram) -> bool:
    """Whether every operator of ``program`` is one of ``DIRECT_OPS`` (batch norms in inference, linear
    layers of 2-D inputs with a bias)."""
    return all(_direct_call(n) for n in program.graph.nodes if n.op == "call_function")


def import_exported(program: torch.export.ExportedProgram) -> tvm.IRModule:
    """Relax module (float, NCHW) of an exported program."""
    direct = _direct(program)
    convert = {"batch_norm.default": _batch_norm_inference, "linear.default": _linear_as_addmm} if direct else None
    try:
        with quiet_torch():
            mod = from_exported_program(program, keep_params_as_input=False, run_ep_decomposition=not direct,
                                        custom_convert_map=convert)
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
