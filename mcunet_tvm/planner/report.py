"""Human-readable views of a memory plan: per-step table, text bars, PNG plot, budget check."""

from __future__ import annotations

from pathlib import Path

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


def text_bars(table: list[dict], arena: int, width: int = 40) -> str:
    """TinyEngine-style bars of live bytes per step, the peak marked."""
    peak = max((r["live_bytes"] for r in table), default=0)
    scale = max(peak, 1)
    lines = [f"live activation bytes per step (arena {arena:,} B, peak live {peak:,} B)"]
    for r in table:
        bar = "#" * max(1, round(width * r["live_bytes"] / scale))
        mark = "  <- peak" if r["live_bytes"] == peak else ""
        lines.append(f"  {r['step']:3d} {r['op'][:22]:22s} {r['live_bytes']:>10,} {bar}{mark}")
    return "\n".join(lines)


def plot_png(table: list[dict], arena: int, path: Path, title: str, stage_end: int | None = None) -> None:
    """Bar chart of live bytes per layer with the peak highlighted and the arena line.

    ``stage_end``: patch-based builds, the first step after the patch stage (both stages are marked).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = [r["live_bytes"] / 1024 for r in table]
    peak = max(range(len(live)), key=lambda i: live[i]) if live else 0
    colors = ["#d62728" if i == peak else "#1f77b4" for i in range(len(live))]
    fig, ax = plt.subplots(figsize=(max(6, len(live) * 0.25), 3.5))
    ax.bar(range(len(live)), live, color=colors)
    ax.axhline(arena / 1024, color="black", linestyle="--", linewidth=1, label=f"arena {arena / 1024:.1f} KB")
    if stage_end is not None:
        ax.axvspan(-0.5, stage_end - 0.5, color="#2ca02c", alpha=0.12, label="patch stage (per patch)")
        ax.axvline(stage_end - 0.5, color="#2ca02c", linewidth=1)
    ax.set_xlabel("step (layer)")
    ax.set_ylabel("live activations (KB)")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_size(text: str) -> int:
    """'256KB', '1MB', '320kB', '65536' -> bytes (K = 1024)."""
    t = text.strip().upper().removesuffix("B")
    factor = 1
    if t.endswith("K"):
        factor, t = 1024, t[:-1]
    elif t.endswith("M"):
        factor, t = 1024 * 1024, t[:-1]
    try:
        return int(float(t) * factor)
    except ValueError:
        raise BudgetError(f"cannot read the size '{text}'", hint="write e.g. 256KB, 1MB or 65536") from None


def check_sram_budget(graph: Graph, plan: MemoryPlan, budget: int) -> None:
    """Raise :class:`BudgetError` naming the peak step and its live tensors if the arena exceeds ``budget``."""
    if plan.arena_bytes <= budget:
        return
    i = peak_step(plan)
    live = sorted((iv for iv in plan.intervals.values() if iv.first <= i <= iv.last), key=lambda v: -v.nbytes)
    tensors = ", ".join(f"{iv.name} {iv.nbytes:,} B" for iv in live)
    raise BudgetError(
        f"the activations need {plan.arena_bytes:,} B of SRAM but the budget is {budget:,} B "
        f"(lower bound for this schedule: {plan.lower_bound_bytes:,} B)",
        where=f"peak at step {i} ({graph.steps[i].name}): live tensors {tensors}",
        hint="run the first stage patch by patch (--patch auto, MCUNetV2), or use a smaller input "
        "resolution or width",
    )
