"""Presentation for people: memory bars and plot, build summary, profile table, sizes as typed.

Everything a CLI prints or draws, and the parsing of the sizes users type
(``256KB``), lives here; the compiler and the reports it writes are data.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BudgetError


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


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:(K|M)(?:I?B)?|B)?\s*", re.IGNORECASE)


def parse_size(text: str, flag: str = "", minimum: int = 1) -> int:
    """A size of at least ``minimum`` bytes as typed: '256KB', '256KiB', '256K', '1MB', '1.5MiB', '65536' -> bytes.

    K and M are binary (1024, 1024²) with or without 'iB'/'B', as MCU datasheets count SRAM.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise BudgetError(f"cannot read the size '{text}'", where=flag,
                          hint="write a positive size such as 256KB, 256KiB, 1MB or 65536 (bytes)")
    factor = {"K": 1024, "M": 1024 * 1024}.get((match.group(2) or "").upper(), 1)
    size = int(float(match.group(1)) * factor)
    if size < minimum:
        raise BudgetError(f"the size '{text}' is below {minimum:,} B", where=flag,
                          hint="a budget is a positive size such as 256KB" if minimum else "")
    return size


def build_summary(report: dict) -> str:
    lines = [
        f"model {report['model']} on {report['target']}",
        f"  MACs          {report['macs']:,}",
        f"  params        {report['params']:,}",
        f"  arena         {report['arena_bytes']:,} B (lower bound {report['arena_lower_bound_bytes']:,} B)",
    ]
    if report["target"] != "host":  # a host executable's size says nothing about a microcontroller's flash
        lines.append(f"  flash         {report['flash_bytes']:,} B (model {report['model_flash_bytes']:,} B, "
                     f"of which code {report['code_bytes']:,} B)")
    if report.get("patch"):
        pt = report["patch"]
        lines.append(
            f"  patches       {pt['grid'][0]}x{pt['grid'][1]} up to step {pt['split_step']} "
            f"({pt['mac_overhead']:+.1%} MACs; peak {pt['patch_stage_peak_bytes']:,} B in the patch stage, "
            f"{pt['rest_peak_bytes']:,} B after)"
        )
        if pt.get("stream_input"):
            lines.append("  input         streamed row band by row band (not in the arena)")
    if report.get("stack_bytes") is not None:
        lines.append(f"  stack         {report['stack_bytes']:,} B")
    run = report.get("qemu") or report.get("host_run")
    if run:
        if run.get("instructions") is not None:
            lines.append(f"  instructions  {run['instructions']:,}")
        est = report.get("cycles_estimate")
        if est:
            lines.append(f"  cycles        {est['total']:,} (estimate: {est['model']}, "
                         f"{est['assumptions']['flash_wait_states']} flash wait states)")
        lines.append(f"  bit-exact     {'yes' if run['bit_exact'] else 'NO'} (host reference)")
        if report.get("patch"):
            lines.append(f"  bit-exact     {'yes' if run['bit_exact_layer_based'] else 'NO'} (layer-based reference)")
        if "bit_exact_tflm" in run:
            lines.append(f"  bit-exact     {'yes' if run['bit_exact_tflm'] else 'NO'} (TF Lite Micro)")
    return "\n".join(lines)


def format_profile(profile: dict, limit: int | None = None) -> str:
    """A text table of the steps (most expensive first) and of the operator types."""
    cyc = profile.get("total_cycles_estimate") is not None

    def cycles(row: dict) -> str:
        return f" {row['cycles']:>13,}" if cyc else ""

    extra = f" {'cycles (est.)':>13}" if cyc else ""
    head = (f"{'step':>4}  {'op':<17} {'in -> out':<32} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9} "
            f"{'share':>6}{extra}")
    lines = [head, "-" * len(head)]
    for r in profile["steps"][:limit]:
        shapes = f"{'x'.join(map(str, r['in_shape'][1:]))} -> {'x'.join(map(str, r['out_shape'][1:]))}"
        ipm = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] is not None else "-"
        lines.append(f"{r['step']:>4}  {r['op']:<17} {shapes:<32} {r['macs']:>11,} {r['instructions']:>13,} "
                     f"{ipm:>9} {r['share']:>6.1%}{cycles(r)}")
    lines += ["", f"{'op type':<17} {'count':>5} {'MACs':>12} {'instructions':>13} {'instr/MAC':>9} {'share':>6}"
              f"{extra}"]
    for g in profile["by_op_type"]:
        ipm = f"{g['instructions_per_mac']:.2f}" if g["instructions_per_mac"] is not None else "-"
        lines.append(f"{g['op']:<17} {g['count']:>5} {g['macs']:>12,} {g['instructions']:>13,} {ipm:>9} "
                     f"{g['share']:>6.1%}{cycles(g)}")
    ipm = profile["instructions_per_mac"]
    lines += ["", f"end to end: {profile['total_instructions']:,} instructions for {profile['macs']:,} MACs "
              f"({ipm:.2f} per MAC); steps sum to {profile['sum_of_steps']:,}, the entry point adds "
              f"{profile['entry_overhead_instructions']:,}"]
    if cyc:
        lines.append(f"estimated cycles: {profile['total_cycles_estimate']:,} ({profile['cycles_model']}; "
                     "a model, not a measurement)")
    return "\n".join(lines)
