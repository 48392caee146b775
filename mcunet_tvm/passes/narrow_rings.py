"""NarrowPeakRings: a depthwise ring is int8 where its int16 form would set the arena's peak.

The row depthwise kernel keeps wide rows as int16 (``plan.ring_lane_bytes``: taps
paired without widening, 5-7 % fewer instructions), which doubles its ring.
Where that depthwise step holds the most live bytes of the schedule, the ring
would set the arena: such steps take the int8 ring instead
(``KernelChoice.wide_ring`` False), one at a time, until the peak step is no
longer one of them. Decided on the live bytes per step (the planner's lower
bound) of the module as it will run, so run it last, after the passes that
choose kernels and the order. Memory first: it trades a few instructions
for bytes only where the bytes set the arena.
"""

from __future__ import annotations

import dataclasses

import tvm

from ..ir import Program, program_of
from ..kernels.depthwise.plan import ring_lane_bytes, row_buffer_shape
from ..ops import Conv2D
from ..planner import live_bytes
from .rewrite_util import module_pass, rechoose_kernels


def _wide(call) -> bool:
    op, choice = call.op, call.choice
    return (isinstance(op, Conv2D) and op.depthwise and bool(row_buffer_shape(op, choice))
            and ring_lane_bytes(op, choice) == 2)


def peak_rings(prog: Program) -> set[str]:
    """Kernels of depthwise steps whose int16 ring sets the peak of live bytes (to run narrow)."""
    narrowed: set[str] = set()
    calls = list(prog.calls)
    while True:
        live = live_bytes(dataclasses.replace(prog, calls=tuple(calls)).memory_graph())
        peak = max(range(len(live)), key=live.__getitem__, default=None)
        if peak is None or not _wide(calls[peak]):
            return narrowed
        narrowed.add(calls[peak].kernel)
        calls[peak] = dataclasses.replace(calls[peak], choice=calls[peak].choice.with_(wide_ring=False))


def narrow_peak_rings(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with the depthwise kernels of :func:`peak_rings` on int8 rings."""
    names = peak_rings(program_of(mod))
    return rechoose_kernels(mod, lambda op, choice: choice.with_(wide_ring=False), names) if names else mod


def NarrowPeakRings() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`narrow_peak_rings`."""
    return module_pass(narrow_peak_rings, "mcunet.NarrowPeakRings")
