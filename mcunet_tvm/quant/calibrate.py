"""Calibration: run the float Relax graph on the host and record each activation's range.

Every float32 tensor ``main`` computes is recorded over all calibration batches as the plain
min/max, as the TFLite converter does. The graph runs in numpy (:mod:`.float_exec`); a graph with
an operator that executor does not know is compiled for ``llvm`` instead, with ``main`` rewritten
to return every intermediate tensor.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .float_exec import UnknownFloatOpError, batch_size, value_ranges


def _all_values_function(func: relax.Function) -> tuple[relax.Function, list[str]]:
    """``func`` returning a tuple of every tensor it computes; and their names."""
    names, values = [], []
    for block in func.body.blocks:
        for binding in block.bindings:
            if isinstance(binding.var.ty, relax.TensorType) and binding.var.ty.dtype == "float32":
                names.append(binding.var.name)
                values.append(binding.var)
    blocks = [relax.BindingBlock(list(b.bindings)) for b in func.body.blocks]
    body = relax.SeqExpr(blocks, relax.Tuple(values))
    return relax.Function(func.params, body, relax.TupleType([v.ty for v in values])), names


def _tvm_ranges(mod: tvm.IRModule, batches: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """(min, max) of every float tensor of ``main`` over ``batches``, from ``main`` compiled for ``llvm``."""
    func, names = _all_values_function(relax.transform.ToNonDataflow()(mod)["main"])
    vm = relax.VirtualMachine(tvm.compile(tvm.IRModule({"main": func}), target="llvm"), tvm.cpu())
    ranges: dict[str, tuple[float, float]] = {}
    for batch in batches:
        outs = vm["main"](tvm.runtime.tensor(np.asarray(batch, np.float32)))
        _merge(ranges, {name: (float(v.numpy().min()), float(v.numpy().max())) for name, v in zip(names, outs,
                                                                                                 strict=True)})
    return ranges


def _numpy_ranges(mod: tvm.IRModule, batches: list[np.ndarray]) -> dict[str, tuple[float, float]] | None:
    """As :func:`_tvm_ranges`, from numpy in chunks of samples; None if an operator is not known there."""
    func = mod["main"]
    samples = np.concatenate([np.asarray(b, np.float32) for b in batches])
    try:
        step = batch_size(func)
        ranges = value_ranges(func, samples[:step])
    except UnknownFloatOpError:
        return None
    for start in range(step, len(samples), step):
        _merge(ranges, value_ranges(func, samples[start:start + step]))
    return ranges


def _merge(into: dict[str, tuple[float, float]], more: dict[str, tuple[float, float]]) -> None:
    for name, (lo, hi) in more.items():
        old_lo, old_hi = into.get(name, (np.inf, -np.inf))
        into[name] = (min(old_lo, lo), max(old_hi, hi))


def calibrate(mod: tvm.IRModule, batches: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """(min, max) of every float activation of ``main`` (keyed by var name), and of the input."""
    ranges = (_numpy_ranges(mod, batches) if batches else None) or _tvm_ranges(mod, batches)
    input_name = mod["main"].params[0].name
    ranges[input_name] = (min(float(np.min(b)) for b in batches), max(float(np.max(b)) for b in batches))
    return ranges
