"""``python -m mcunet_tvm.profile``: where the instructions go, operator by operator.

The model is built and loaded once on the emulated core. The harness stamps
QEMU's instruction-exact virtual clock (``-icount``) after every step of
``mcunet_invoke`` (the ``MCUNET_PROFILE`` hook), so one run measures every
operator separately, from the host, deterministically. This module turns
those counts into a table and ``profile.json``: op, shapes, MACs,
instructions, instructions per MAC and share of the total, sorted, plus a
summary per operator type and the end-to-end total (whose difference from the
sum of the steps is the entry point's own code between the steps).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .aot.program import Program
from .errors import McunetError
from .kernels import kernel_schedule, pointwise_conv
from .ops import Conv2D, OpDesc


def op_type(op: OpDesc) -> str:
    """The row label of an operator: conv2d is split into pointwise, depthwise and regular."""
    if isinstance(op, Conv2D):
        if op.depthwise:
            return "depthwise_conv2d"
        return "pointwise_conv2d" if pointwise_conv(op) else "conv2d"
    return op.kind


def profile_rows(prog: Program, step_instructions: list[int]) -> list[dict]:
    """One row per executed step, in execution order."""
    calls = [c for c in prog.calls if c.kernel]
    if len(calls) != len(step_instructions):
        raise McunetError(
            f"the device reported {len(step_instructions)} steps but the program has {len(calls)}",
            hint="rebuild: the ELF and the generated C are out of step",
        )
    total = sum(step_instructions) or 1
    rows = []
    for step, (call, n) in enumerate(zip(calls, step_instructions, strict=True)):
        macs = call.op.macs()
        schedule = kernel_schedule(prog.kernels.get(call.kernel))
        rows.append({
            "step": step,
            "kernel": call.kernel,
            "op": op_type(call.op),
            "in_shape": list(call.op.in_shape),
            "out_shape": list(call.op.out_shape),
            "macs": macs,
            "instructions": n,
            "instructions_per_mac": round(n / macs, 3) if macs else None,
            "share": round(n / total, 5),
            "kernel_variant": _variant(schedule),
        })
    return rows


def _variant(schedule) -> str:
    """How a step's kernel was generated: plain TIR, a SIMD (DSP) or Helium tile, shared or not."""
    if schedule is None:
        return "plain"
    kind = "helium" if schedule.helium else "simd"
    return f"{kind} {schedule.pixels}x{schedule.channels}" + (" shared" if schedule.shared else "")


def by_op_type(rows: list[dict]) -> list[dict]:
    """Totals per operator type, most expensive first."""
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r["op"], {"op": r["op"], "count": 0, "macs": 0, "instructions": 0})
        g["count"] += 1
        g["macs"] += r["macs"]
        g["instructions"] += r["instructions"]
    total = sum(r["instructions"] for r in rows) or 1
    for g in groups.values():
        g["instructions_per_mac"] = round(g["instructions"] / g["macs"], 3) if g["macs"] else None
        g["share"] = round(g["instructions"] / total, 5)
    return sorted(groups.values(), key=lambda g: -g["instructions"])


def make_profile(prog: Program, step_instructions: list[int], total_instructions: int) -> dict:
    """The content of ``profile.json``."""
    rows = profile_rows(prog, step_instructions)
    macs = prog.macs()
    return {
        "total_instructions": total_instructions,
        "sum_of_steps": sum(step_instructions),
        "entry_overhead_instructions": total_instructions - sum(step_instructions),
        "macs": macs,
        "instructions_per_mac": round(total_instructions / macs, 3) if macs else None,
        "by_op_type": by_op_type(rows),
        "steps": sorted(rows, key=lambda r: (-r["instructions"], r["step"])),
    }


def format_profile(profile: dict, limit: int | None = None) -> str:
    """A text table of the steps (most expensive first) and of the operator types."""
    head = f"{'step':>4}  {'op':<17} {'in -> out':<32} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9} {'share':>6}"
    lines = [head, "-" * len(head)]
    for r in profile["steps"][:limit]:
        shapes = f"{'x'.join(map(str, r['in_shape'][1:]))} -> {'x'.join(map(str, r['out_shape'][1:]))}"
        ipm = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] is not None else "-"
        lines.append(f"{r['step']:>4}  {r['op']:<17} {shapes:<32} {r['macs']:>11,} {r['instructions']:>13,} "
                     f"{ipm:>9} {r['share']:>6.1%}")
    lines += ["", f"{'op type':<17} {'count':>5} {'MACs':>12} {'instructions':>13} {'instr/MAC':>9} {'share':>6}"]
    for g in profile["by_op_type"]:
        ipm = f"{g['instructions_per_mac']:.2f}" if g["instructions_per_mac"] is not None else "-"
        lines.append(f"{g['op']:<17} {g['count']:>5} {g['macs']:>12,} {g['instructions']:>13,} {ipm:>9} "
                     f"{g['share']:>6.1%}")
    ipm = profile["instructions_per_mac"]
    lines += ["", f"end to end: {profile['total_instructions']:,} instructions for {profile['macs']:,} MACs "
              f"({ipm:.2f} per MAC); steps sum to {profile['sum_of_steps']:,}, the entry point adds "
              f"{profile['entry_overhead_instructions']:,}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build with ``--run --profile`` and print the table (same options as the build CLI)."""
    from .build import main as build_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in argv:
        argv += ["--out", str(Path("build") / "profile")]
    for flag in ("--run", "--profile", "--quiet"):
        if flag not in argv:
            argv.append(flag)
    code = build_main(argv, prog="python -m mcunet_tvm.profile")
    out = Path(argv[argv.index("--out") + 1])
    if code == 0 and (out / "profile.json").exists():
        print()
        print(format_profile(json.loads((out / "profile.json").read_text())))
        print(f"\nwritten: {out / 'profile.json'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
