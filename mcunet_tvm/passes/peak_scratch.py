"""ShrinkPeakScratch: the kernel at the arena's peak takes a smaller-scratch form where one exists.

Some kernels take arena scratch for speed: the row depthwise kernel keeps wide rows as int16
(``plan.ring_lane_bytes``: 5-7 % fewer instructions, twice the ring), and a SIMD conv/dense in
pixel order widens each pixel tile's input windows once (``simd.staged_input_bytes``: a dense
layer's whole input as int16). Where such a step holds the most live bytes of the schedule, its
scratch sets the arena: the step takes a form of less scratch (``KernelChoice.smaller_scratch``:
an int8 ring; a SIMD tile of fewer pixels or in channel order), the one with the lowest peak of
live bytes among those that lower the peak by the least fraction the form is worth (none for the
cheap int8 ring, ``choice.UNSTAGED_MIN_GAIN`` for unstaged SIMD tiles, which cost up to 42 % of a
network's instructions; a channel-order tile's output may no longer overlap its input, so a form may
even raise the peak). Repeated while the peak step has such a form (each change shrinks one kernel's
scratch, so it ends); the changes up to the first that reached the lowest peak are kept, none if
the peak did not fall. Every step that runs the changed kernel gets the new form (the kernel is
regenerated under its name), and its choice says so (``memory_first``: ``report.json`` lists them).

Decided on the live bytes per step (the planner's lower bound) of the module as it will run, so
run it last, after the passes that choose kernels and the order. Memory first: it trades
instructions for bytes only where the bytes set the arena.
"""

from __future__ import annotations

import dataclasses

import tvm

from ..ir import KernelCall, Program, program_of
from ..kernels import KernelChoice
from ..ops import OpDesc
from ..planner import live_bytes
from .rewrite_util import module_pass, rechoose_kernels


def _with(calls: list[KernelCall], kernel: str, choice: KernelChoice) -> list[KernelCall]:
    """``calls`` with every call of ``kernel`` on ``choice``."""
    return [dataclasses.replace(c, choice=choice) if c.kernel == kernel else c for c in calls]


def _peak(prog: Program, calls: list[KernelCall]) -> tuple[int, int]:
    """(peak live bytes, its first step; -1 without steps) of ``prog`` running ``calls``."""
    live = live_bytes(dataclasses.replace(prog, calls=tuple(calls)).memory_graph())
    peak = max(live, default=0)
    return peak, live.index(peak) if live else -1


def peak_scratch_choices(prog: Program) -> dict[tuple[OpDesc, KernelChoice], KernelChoice]:
    """The kernels whose scratch at the peak of live bytes shrinks: (op, choice) -> smaller form.

    Greedy: the peak step's kernel takes its form of the lowest peak (not above the current one),
    again and again; the changes up to the first that reached the lowest peak are kept (a change
    that leaves the peak where it is pays instructions for nothing unless later ones lower it).
    """
    calls = list(prog.calls)
    peak, step = _peak(prog, calls)
    history: list[tuple[int, tuple[OpDesc, KernelChoice], KernelChoice]] = []
    while step >= 0 and calls[step].kernel:
        call = calls[step]
        trials = [(_peak(prog, _with(calls, call.kernel, form)), i, form, gain)
                  for i, (form, gain) in enumerate(call.choice.smaller_scratch(call.op))]
        fits = [t[:3] for t in trials if t[0][0] <= peak * (1 - t[3])]
        if not fits:
            break
        (peak, step), _, form = min(fits, key=lambda t: (t[0][0], t[1]))
        history.append((peak, (call.op, call.choice), form))
        calls = _with(calls, call.kernel, form)
    if not history or history[-1][0] == _peak(prog, list(prog.calls))[0]:
        return {}
    lowest = min(h[0] for h in history)
    changed: dict[tuple[OpDesc, KernelChoice], KernelChoice] = {}
    for reached, before, form in history:
        original = next((k for k, v in changed.items() if v == before[1]), before)
        changed[original] = form
        if reached == lowest:
            break
    return changed


def shrink_peak_scratch(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with the kernels of :func:`peak_scratch_choices` in their smaller-scratch forms."""
    changed = peak_scratch_choices(program_of(mod))
    if not changed:
        return mod
    return rechoose_kernels(mod, lambda op, choice: changed.get((op, choice)))


def ShrinkPeakScratch() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`shrink_peak_scratch`."""
    return module_pass(shrink_peak_scratch, "mcunet.ShrinkPeakScratch")
