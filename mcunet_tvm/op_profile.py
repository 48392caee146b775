"""Where the instructions go, operator by operator: ``profile.json`` from the per-step counts.

The model is built and loaded once on the emulated core. The harness stamps
QEMU's instruction-exact virtual clock (``-icount``) after every step of
``mcunet_invoke`` (the ``MCUNET_PROFILE`` hook), so one run measures every
operator separately, from the host, deterministically. This module turns
those counts into a table and ``profile.json``: op, shapes, MACs,
instructions, instructions per MAC and share of the total, sorted, plus a
summary per operator type and the end-to-end total (whose difference from the
sum of the steps is the entry point's own code between the steps). Where the
cycle model knows the core (:mod:`mcunet_tvm.cycles`), every row and total also
has its modelled ``cycles`` (an estimate, attributed to steps the same way).
"""

from __future__ import annotations

from .cycles import CycleEstimate
from .errors import McunetError
from .ir import Program
from .kernels import pointwise_conv
from .ops import Conv2D, OpDesc


def op_type(op: OpDesc) -> str:
    """The row label of an operator: conv2d is split into pointwise, depthwise and regular."""
    if isinstance(op, Conv2D):
        if op.depthwise:
            return "depthwise_conv2d"
        return "pointwise_conv2d" if pointwise_conv(op) else "conv2d"
    return op.kind


def profile_rows(prog: Program, step_instructions: list[int], step_cycles: list[int] | None = None) -> list[dict]:
    """One row per executed step, in execution order (``cycles``: the modelled cycles per step, or None)."""
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
            "cycles": step_cycles[step] if step_cycles else None,
            "cycles_per_mac": round(step_cycles[step] / macs, 3) if step_cycles and macs else None,
            "kernel_variant": call.choice.describe(),
        })
    return rows


def by_op_type(rows: list[dict]) -> list[dict]:
    """Totals per operator type, most expensive first."""
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r["op"], {"op": r["op"], "count": 0, "macs": 0, "instructions": 0, "cycles": None})
        g["count"] += 1
        g["macs"] += r["macs"]
        g["instructions"] += r["instructions"]
        if r.get("cycles") is not None:
            g["cycles"] = (g["cycles"] or 0) + r["cycles"]
    total = sum(r["instructions"] for r in rows) or 1
    for g in groups.values():
        g["instructions_per_mac"] = round(g["instructions"] / g["macs"], 3) if g["macs"] else None
        g["share"] = round(g["instructions"] / total, 5)
        g["cycles_per_mac"] = round(g["cycles"] / g["macs"], 3) if g["cycles"] is not None and g["macs"] else None
    return sorted(groups.values(), key=lambda g: -g["instructions"])


def make_profile(prog: Program, step_instructions: list[int], total_instructions: int,
                 cycles: CycleEstimate | None = None) -> dict:
    """The content of ``profile.json``; ``cycles``: the modelled cycles of the same run."""
    rows = profile_rows(prog, step_instructions, cycles.step_cycles if cycles else None)
    macs = prog.macs()
    return {
        "total_cycles_estimate": cycles.total_cycles if cycles else None,
        "cycles_model": cycles.report()["model"] if cycles else None,
        "total_instructions": total_instructions,
        "sum_of_steps": sum(step_instructions),
        "entry_overhead_instructions": total_instructions - sum(step_instructions),
        "macs": macs,
        "instructions_per_mac": round(total_instructions / macs, 3) if macs else None,
        "by_op_type": by_op_type(rows),
        "steps": sorted(rows, key=lambda r: (-r["instructions"], r["step"])),
    }
