"""UseSimdKernels: integer conv2d / dense kernels become Cortex-M SIMD micro-kernels.

After ``LowerQDQToInteger`` every operator is a ``call_tir`` of a plain TIR
kernel. On cores with the DSP extension this pass sets the kernel choice of
each layer that has a SIMD variant (:func:`mcunet_tvm.kernels.simd_choice`)
to that variant, with the schedule knobs chosen per layer by ``schedule`` (a
tuning database lookup) or the untuned default; on cores with Helium
(``mve``) 1x1 convolutions and dense layers take the MVE vector kernel
(:mod:`mcunet_tvm.kernels.helium`), and TRANSPOSE_CONV its dual-MAC form. Only kernel bodies change: the graph, the
buffers and the results (bit for bit) stay the same, so it can run before or
after any graph pass (before ``ReorderForPeak`` and ``ShrinkPeakScratch``,
which plan with the kernels' scratch).
"""

from __future__ import annotations

from collections.abc import Callable

import tvm

from ..kernels import SimdConfig, simd_choice
from ..ops import OpDesc
from .rewrite_util import module_pass, rechoose_kernels

#: picks the schedule of one layer; None means the default
ScheduleFn = Callable[[OpDesc], SimdConfig | None]


def use_simd_kernels(mod: tvm.IRModule, schedule: ScheduleFn | None = None, mve: bool = False) -> tvm.IRModule:
    """Every kernel with a SIMD variant takes it (schedule per layer from ``schedule``; ``mve``:
    Helium kernels where they exist)."""
    def choose(op, choice):
        return simd_choice(op, choice, schedule(op) if schedule else None, mve)

    return rechoose_kernels(mod, choose)


def UseSimdKernels(schedule: ScheduleFn | None = None, mve: bool = False) -> tvm.transform.Pass:  # noqa: N802
    """Pass form of :func:`use_simd_kernels`."""
    return module_pass(lambda mod: use_simd_kernels(mod, schedule, mve), "mcunet.UseSimdKernels")
