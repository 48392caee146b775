"""Choose where to split and how fine a grid for patch-based inference.

Every split step whose prefix can run per patch, and every grid from 2x2 up
to :data:`MAX_GRID`, is planned by the compiler's own code: ``PatchInference``'s
plan (:func:`~.regions.plan_patches`) applied to the view as data
(:func:`~.regions.patched_view`), then ``ZeroCopyViews``' decision
(:func:`~mcunet_tvm.passes.zero_copy_views.with_views`) and ``InplaceDepthwise``'s
(:func:`~mcunet_tvm.passes.inplace_depthwise.inplace_steps`), and measured with
the memory planner's own model: the live-bytes lower bound of its lifetimes,
the same memory model the arena is planned with. No module is emitted per
candidate (that cost 0.5 s each, 150 candidates on MobileNetV2); the
candidates checked against a budget (:data:`MAX_EXACT`) and the one chosen are
emitted and planned for real, on a light copy of the module (stub kernels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import tvm

from ..errors import BudgetError, UnsupportedModelError
from ..ir import Program, lighten, program_of
from ..passes.inplace_depthwise import inplace_depthwise, inplace_steps
from ..passes.patch_inference import patch_inference
from ..passes.zero_copy_views import with_views, zero_copy_views
from ..planner import peak_live_bytes
from ..progress import Progress, counter
from .regions import check_split, patched_view, plan_patches

MAX_GRID = 6
#: with a budget, how many candidates (least MAC overhead first) are planned exactly before giving up
MAX_EXACT = 8
#: the exact arena of a light (patched) integer module as the compiler builds it
ArenaFn = Callable[[tvm.IRModule], int]


@dataclass(frozen=True)
class PatchCandidate:
    split_step: int
    grid: tuple[int, int]
    peak_bytes: int  # live-bytes lower bound of the patched program
    mac_overhead: float


def estimated_peak(mod: tvm.IRModule) -> int:
    """Peak live bytes of ``mod`` as the planner counts them, zero-copy views and in-place depthwise applied."""
    return peak_live_bytes(program_of(inplace_depthwise(zero_copy_views(mod))).memory_graph())


def view_peak(prog: Program) -> int:
    """:func:`estimated_peak` of a view: ``ZeroCopyViews``' and ``InplaceDepthwise``'s decisions applied to
    the calls."""
    prog = with_views(prog)
    switch = inplace_steps(prog)
    calls = tuple(dataclasses.replace(c, kernel=f"{c.kernel}_inplace", choice=c.choice.with_(inplace=True))
                  if i in switch else c for i, c in enumerate(prog.calls))
    return peak_live_bytes(dataclasses.replace(prog, calls=calls).memory_graph())


def candidates(mod: tvm.IRModule, stream_input: bool = False, progress: Progress = None,
               max_mac_overhead: float | None = None) -> list[PatchCandidate]:
    """Every valid (split step, n x n grid) with its estimated peak and MAC overhead (``progress``:
    how many are planned, :mod:`mcunet_tvm.progress`). With ``max_mac_overhead``, only those within
    it: the others are planned (their overhead is the plan's) but not scored, two thirds of the
    search's time on MobileNetV2."""
    light = lighten(mod)
    prog = program_of(light)
    splits = []
    for step in range(len(prog.calls) - 1):
        try:
            check_split(prog, step)
        except UnsupportedModelError:
            continue
        _, h, w, _ = prog.shapes[prog.calls[step].output]
        splits += [(step, n) for n in range(2, min(MAX_GRID, h, w) + 1)]
    planned = counter(progress, "patch search: candidates planned", len(splits))
    found = []
    for step, n in splits:  # scored on the patched view: what PatchInference would emit, as data
        plan = plan_patches(prog, step, (n, n), stream_input)
        if max_mac_overhead is None or plan.info.mac_overhead <= max_mac_overhead:
            found.append(PatchCandidate(step, (n, n), view_peak(patched_view(prog, plan)), plan.info.mac_overhead))
        planned.step()
    planned.close()
    return found


def choose_patch(
    mod: tvm.IRModule, max_mac_overhead: float = 0.3, sram_budget: int | None = None, stream_input: bool = False,
    arena: ArenaFn | None = None, progress: Progress = None,
) -> PatchCandidate | None:
    """The split to use, or None when layer-based execution is as good (or its arena already fits the budget).

    Without a budget: the lowest peak whose MAC overhead is within ``max_mac_overhead``
    (ties: less overhead). With a budget: the least overhead whose arena fits it. ``arena``
    (the compiler passes one) gives the exact arena the build of a light patched module
    plans; the budget is checked with it (the live-bytes estimate only orders the
    candidates), so a split chosen here fits when built, and the achievable arena an error
    names is the one ``--patch auto`` without a budget builds. Raises :class:`BudgetError`
    when nothing fits. ``stream_input``: candidates fetch the input band by band (see
    ``patch_program``); streaming needs patches, so a split is always returned when one exists.
    """
    light = lighten(mod)
    measure = arena or estimated_peak
    # layer by layer when its arena fits (not the live-bytes estimate: that is the module's own order, and the
    # compiler's lowest-peak order can fit below it)
    if sram_budget is not None and measure(light) <= sram_budget:
        return None
    allowed = candidates(mod, stream_input, progress, max_mac_overhead)
    lowest = min(allowed, key=lambda c: (c.peak_bytes, c.mac_overhead), default=None)
    if sram_budget is None:
        return lowest if lowest is not None and (stream_input or lowest.peak_bytes < estimated_peak(light)) else None

    def exact(c: PatchCandidate) -> int:
        return measure(patch_inference(light, c.split_step, c.grid, stream_input))

    fitting = sorted((c for c in allowed if c.peak_bytes <= sram_budget), key=lambda c: (c.mac_overhead, c.peak_bytes))
    for c in fitting[:MAX_EXACT]:
        if exact(c) <= sram_budget:
            return c
    achievable = f"{exact(lowest):,} B with a {lowest.grid[0]}x{lowest.grid[1]} grid ending at step " \
        f"{lowest.split_step} ({lowest.mac_overhead:.0%} more MACs; what --patch auto builds without a budget)" \
        if lowest else f"{measure(light):,} B (layer-based)"
    raise BudgetError(
        f"no patch split fits the SRAM budget of {sram_budget:,} B within {max_mac_overhead:.0%} extra MACs; "
        f"the lowest achievable arena is {achievable}",
        where=f"layer-based arena {measure(light):,} B",
        hint="raise --max-mac-overhead, raise the budget, or use a smaller input resolution or width",
    )
