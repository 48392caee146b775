"""Choose where to split and how fine a grid for patch-based inference.

Every split step whose prefix can run per patch, and every grid from 2x2 up
to :data:`MAX_GRID`, is turned into the patched program and measured with the
memory planner's own model (the live-bytes lower bound of its lifetimes, with
in-place depthwise applied as the compiler will apply it): the same memory
model the arena is planned with, without generating any kernel.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from ..aot.program import Program
from ..errors import BudgetError, UnsupportedModelError
from ..kernels import can_run_inplace
from ..planner.lifetimes import lifetimes, live_bytes_per_step, overlap_rules
from .regions import check_split, patch_program

MAX_GRID = 6


@dataclass(frozen=True)
class PatchCandidate:
    split_step: int
    grid: tuple[int, int]
    peak_bytes: int  # live-bytes lower bound of the patched program
    mac_overhead: float


def estimated_peak(prog: Program) -> int:
    """Peak live bytes of ``prog`` as the planner counts them, in-place depthwise applied."""
    graph = with_inplace_depthwise(prog).memory_graph()
    intervals = lifetimes(graph)
    return max(live_bytes_per_step(intervals, len(graph.steps), overlap_rules(graph, intervals)), default=0)


def with_inplace_depthwise(prog: Program) -> Program:
    """``prog`` with the depthwise convs ``InplaceDepthwise`` would switch marked in-place."""
    graph = prog.memory_graph()
    reads = Counter(graph.storage_of(n) for c in prog.calls if c.kernel for n in c.inputs)
    reads[graph.storage_of(prog.output)] += 1
    calls = [
        dataclasses.replace(c, op=dataclasses.replace(c.op, inplace=True))
        if c.kernel and can_run_inplace(c.op, reads[graph.storage_of(c.inputs[0])] == 1) else c
        for c in prog.calls
    ]
    return dataclasses.replace(prog, calls=calls)


def candidates(prog: Program, stream_input: bool = False) -> list[PatchCandidate]:
    """Every valid (split step, n x n grid) with its estimated peak and MAC overhead."""
    found = []
    for step in range(len(prog.calls) - 1):
        try:
            check_split(prog, step)
        except UnsupportedModelError:
            continue
        _, h, w, _ = prog.shapes[prog.calls[step].output]
        for n in range(2, min(MAX_GRID, h, w) + 1):
            patched, info = patch_program(prog, step, (n, n), stream_input)
            found.append(PatchCandidate(step, (n, n), estimated_peak(patched), info.mac_overhead))
    return found


def choose_patch(
    prog: Program, max_mac_overhead: float = 0.3, sram_budget: int | None = None, stream_input: bool = False
) -> PatchCandidate | None:
    """The split to use, or None when layer-based execution is as good (or already fits the budget).

    Without a budget: the lowest peak whose MAC overhead is within ``max_mac_overhead``
    (ties: less overhead). With a budget: the least overhead whose peak fits it.
    Raises :class:`BudgetError` naming the best achievable peak when nothing fits.
    ``stream_input``: candidates fetch the input band by band (see ``patch_program``);
    streaming needs patches, so a split is always returned when one exists.
    """
    layer_peak = estimated_peak(prog)
    if sram_budget is not None and layer_peak <= sram_budget:
        return None
    allowed = [c for c in candidates(prog, stream_input) if c.mac_overhead <= max_mac_overhead]
    if sram_budget is None:
        best = min(allowed, key=lambda c: (c.peak_bytes, c.mac_overhead), default=None)
        return best if best is not None and (stream_input or best.peak_bytes < layer_peak) else None
    fitting = [c for c in allowed if c.peak_bytes <= sram_budget]
    if fitting:
        return min(fitting, key=lambda c: (c.mac_overhead, c.peak_bytes))
    best = min(allowed, key=lambda c: c.peak_bytes, default=None)
    achievable = f"{best.peak_bytes:,} B with a {best.grid[0]}x{best.grid[1]} grid ending at step " \
        f"{best.split_step} ({best.mac_overhead:.0%} more MACs)" if best else f"{layer_peak:,} B (layer-based)"
    raise BudgetError(
        f"no patch split fits the SRAM budget of {sram_budget:,} B within {max_mac_overhead:.0%} extra MACs; "
        f"the best achievable peak is {achievable}",
        where=f"layer-based peak {layer_peak:,} B",
        hint="raise --max-mac-overhead, raise the budget, or use a smaller input resolution or width",
    )

