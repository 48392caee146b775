"""A memory plan as data: the per-step table of ``report.json``, the peak step, the budget check."""

from __future__ import annotations

from ..errors import BudgetError
from . import Graph, MemoryPlan


def step_table(graph: Graph, plan: MemoryPlan) -> list[dict]:
    """One row per step: op, output, live tensors with their arena ranges, live bytes."""
    rows = []
    for i, step in enumerate(graph.steps):
        live = [iv for iv in plan.intervals.values() if iv.first <= i <= iv.last]
        rows.append({
            "step": i,
            "op": step.name,
            "output": step.output,
            "live_bytes": plan.live_bytes[i],
            "live": [
                {"tensor": iv.name, "bytes": iv.nbytes,
                 "range": [plan.layout.offsets[iv.name], plan.layout.offsets[iv.name] + iv.nbytes]}
                for iv in sorted(live, key=lambda v: plan.layout.offsets[v.name])
            ],
        })
    return rows


def peak_step(plan: MemoryPlan) -> int:
    return max(range(len(plan.live_bytes)), key=lambda i: plan.live_bytes[i]) if plan.live_bytes else 0


def check_sram_budget(graph: Graph, plan: MemoryPlan, budget: int, hint: str = "") -> None:
    """Raise :class:`BudgetError` if the arena exceeds ``budget``, naming the peak step and its live tensors
    with their arena ranges, counted as the planner counts them (storage shared in place once, the gaps
    the placement leaves included in the arena, not in the live bytes)."""
    if plan.arena_bytes <= budget:
        return
    i = peak_step(plan)
    row = step_table(graph, plan)[i]
    tensors = ", ".join(f"{t['tensor']} [{t['range'][0]:,}, {t['range'][1]:,})" for t in row["live"])
    gap = plan.arena_bytes - plan.live_bytes[i]
    raise BudgetError(
        f"the activations need {plan.arena_bytes:,} B of SRAM but the budget is {budget:,} B "
        f"(lower bound for this schedule: {plan.lower_bound_bytes:,} B)",
        where=f"peak at step {i} ({graph.steps[i].name}): {plan.live_bytes[i]:,} B live in tensors at arena "
              f"ranges {tensors}" + (f"; the placement adds {gap:,} B" if gap else ""),
        hint=hint or "run the first stage patch by patch (--patch auto, MCUNetV2), or use a smaller input "
        "resolution or width",
    )
