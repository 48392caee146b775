"""Calibration: run the float Relax graph on the host and record each activation's range.

``main`` is rewritten to return every intermediate tensor (TVM compiles it
for ``llvm``), the calibration batches are run, and the plain min/max over
all batches is recorded per binding, as the TFLite converter does.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax


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


def calibrate(mod: tvm.IRModule, batches: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """(min, max) of every float activation of ``main`` (keyed by var name), and of the input."""
    stripped = relax.transform.ToNonDataflow()(mod)
    func, names = _all_values_function(stripped["main"])
    probe = tvm.IRModule({"main": func})
    vm = relax.VirtualMachine(tvm.compile(probe, target="llvm"), tvm.cpu())
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    input_name = mod["main"].params[0].name
    lo[input_name], hi[input_name] = np.inf, -np.inf
    for batch in batches:
        outs = vm["main"](tvm.runtime.tensor(np.asarray(batch, np.float32)))
        for name, value in zip(names, outs, strict=True):
            arr = value.numpy()
            lo[name] = min(lo[name], float(arr.min()))
            hi[name] = max(hi[name], float(arr.max()))
        lo[input_name] = min(lo[input_name], float(np.min(batch)))
        hi[input_name] = max(hi[input_name], float(np.max(batch)))
    return {n: (lo[n], hi[n]) for n in lo}
