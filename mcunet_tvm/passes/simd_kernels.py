"""UseSimdKernels: swap integer conv2d / dense kernels for Cortex-M SIMD micro-kernels.

After ``LowerQDQToInteger`` every operator is a ``call_tir`` of a plain TIR
kernel carrying its descriptor (``mcunet.op``). On cores with the DSP
extension this pass replaces each kernel that has a SIMD variant (see
:func:`mcunet_tvm.kernels.simd.simd_supported`) by that variant, with the
schedule knobs chosen per layer by ``schedule`` (a tuning database lookup) or
the untuned default. On cores with Helium (``mve``) 1x1 convolutions and
dense layers take the MVE vector kernel instead (:mod:`mcunet_tvm.kernels.helium`).
Only kernel bodies change: the graph, the buffers and the results (bit for
bit) stay the same, so it can run before or after any graph pass.
"""

from __future__ import annotations

from collections.abc import Callable

import tvm

from ..kernels.simd import SimdConfig, helium_config, simd_kernel, simd_supported
from ..ops import OpDesc, op_from_prim_func
from .rewrite_util import module_pass

#: picks the schedule of one layer; None means the default
ScheduleFn = Callable[[OpDesc], SimdConfig | None]


def use_simd_kernels(mod: tvm.IRModule, schedule: ScheduleFn | None = None, mve: bool = False) -> tvm.IRModule:
    """Replace every kernel with a SIMD variant by it (schedule per layer from ``schedule``;
    ``mve``: Helium kernels where they exist)."""
    updates = {}
    for gvar, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        op = op_from_prim_func(func)
        if op is None or not simd_supported(op):
            continue
        cfg = schedule(op) if schedule else None
        if mve:
            cfg = helium_config(op, cfg) or cfg
        updates[gvar] = simd_kernel(op, cfg)
    if not updates:
        return mod
    functions = {gvar: updates.get(gvar, func) for gvar, func in mod.functions.items()}
    return tvm.IRModule(functions, attrs=mod.attrs)


def UseSimdKernels(schedule: ScheduleFn | None = None, mve: bool = False) -> tvm.transform.Pass:  # noqa: N802
    """Pass form of :func:`use_simd_kernels`."""
    return module_pass(lambda mod: use_simd_kernels(mod, schedule, mve), "mcunet.UseSimdKernels")
