"""Memory first: a depthwise ring is int8 where its int16 form would raise the arena's peak.

The row depthwise kernel keeps wide rows as int16 (``Conv2D.ring_lane_bytes``:
taps paired without widening, 5-7 % fewer instructions), which doubles its
ring. Where that depthwise step holds the most live bytes of the schedule,
the ring would set the arena: such steps take the int8 ring instead, until
the peak step is no longer one of them. Decided on the program (live bytes
per step, the planner's lower bound); applied to the integer Relax module by
swapping the kernels, so module and program stay one.
"""

from __future__ import annotations

import dataclasses

import tvm

from ..kernels import make_kernel
from ..kernels.depthwise import COMPACT, depthwise_conv2d
from ..ops import Conv2D
from ..planner.lifetimes import lifetimes, live_bytes_per_step, overlap_rules
from .program import Program


def _wide(op) -> bool:
    return isinstance(op, Conv2D) and op.depthwise and bool(op.row_buffer_shape()) and op.ring_lane_bytes() == 2


def peak_rings(prog: Program) -> set[str]:
    """Kernels of depthwise steps whose int16 ring sets the peak of live bytes (to run narrow)."""
    narrowed: set[str] = set()
    calls = list(prog.calls)
    while True:
        graph = dataclasses.replace(prog, calls=calls).memory_graph()
        intervals = lifetimes(graph)
        live = live_bytes_per_step(intervals, len(graph.steps), overlap_rules(graph, intervals))
        peak = max(range(len(live)), key=live.__getitem__, default=None)
        if peak is None or not _wide(calls[peak].op):
            return narrowed
        narrowed.add(calls[peak].kernel)
        calls[peak] = dataclasses.replace(calls[peak], op=dataclasses.replace(calls[peak].op, wide_ring=False))


def _narrow_kernel(func: tvm.tirx.PrimFunc, op: Conv2D) -> tvm.tirx.PrimFunc:
    compact = func.attrs is not None and COMPACT in func.attrs
    narrow = dataclasses.replace(op, wide_ring=False)
    return depthwise_conv2d(narrow, compact=True) if compact else make_kernel(narrow)


def with_narrow_rings(prog: Program, names: set[str]) -> Program:
    """``prog`` with the depthwise kernels ``names`` on int8 rings (ops, and kernels where it has them)."""
    calls, kernels = [], dict(prog.kernels)
    for call in prog.calls:
        if call.kernel in names:
            if call.kernel in kernels:
                kernels[call.kernel] = _narrow_kernel(kernels[call.kernel], call.op)
            call = dataclasses.replace(call, op=dataclasses.replace(call.op, wide_ring=False))
        calls.append(call)
    return dataclasses.replace(prog, calls=calls, kernels=kernels)


def narrow_peak_rings(prog: Program) -> Program:
    """``prog`` with its rings as ``compile_relax`` picks them (for planning without compiling)."""
    return with_narrow_rings(prog, peak_rings(prog))


def narrow_rings(mod: tvm.IRModule, prog: Program, names: set[str]) -> tvm.IRModule:
    """The integer module ``mod`` (whose program is ``prog``) with the kernels ``names`` narrowed."""
    ops = {c.kernel: c.op for c in prog.calls if c.kernel in names}
    functions = {gvar: _narrow_kernel(func, ops[gvar.name_hint]) if gvar.name_hint in ops else func
                 for gvar, func in mod.functions.items()}
    return tvm.IRModule(functions, attrs=mod.attrs)
