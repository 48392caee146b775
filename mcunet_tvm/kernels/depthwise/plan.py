"""Compile-time plans of the depthwise kernels: which taps a word holds, which outputs are interior,
how many output pairs a ring iteration computes, and which kernels have a compact form.

Everything here is plain Python over the op's geometry (no TIR), so it is
decided, and testable, before any code is emitted.
"""

from __future__ import annotations

import dataclasses

from tvm import tirx

from ...ops import Conv2D

#: a small image's border pixel starts from the folded bias (outside taps: one multiply by the zero
#: point each) unless its outside taps outnumber its inside ones by this many (measured on the M7)
ZP_TAPS_SLACK = 4

#: PrimFunc attribute of a depthwise kernel generated in its compact form (``--optimize size``)
COMPACT = "mcunet.compact"

#: a row-plan item: (word, lane register, tap in the bottom half or -1, tap in the top half or -1)
PlanItem = tuple[int, int, int, int]


def interior(n_out: int, stride: int, dil: int, k: int, pad: int, size: int) -> tuple[int, int]:
    """[lo, hi): output positions whose window lies inside ``size`` input positions."""
    inside = [o for o in range(n_out) if o * stride - pad >= 0 and o * stride - pad + (k - 1) * dil < size]
    if not inside:
        return 0, 0
    return inside[0], inside[-1] + 1


def row_plan(kw: int, first: int, lane_bytes: int) -> list[PlanItem]:
    """How an output whose first tap is element ``first`` of a ring segment takes its ``kw`` taps.

    Returns (word, lane register, tap in the bottom half or -1, tap in the top
    half or -1) items. An int16 ring (``lane_bytes`` 2) holds two taps per
    word, used as they are (lane register 0). An int8 ring holds four:
    SXTB16 puts bytes 0 / 2 of a word in the bottom / top halves of lane
    register 0 and, rotated, bytes 1 / 3 in lane register 1. Two taps in one
    lane register are one SMLAD against a weight pair; a lone tap is one
    16x16 multiply-accumulate (SMLAxy) against a half of a weight register.
    """
    per_word = 4 // lane_bytes
    halves: dict[tuple[int, int], list[int]] = {}
    for t in range(kw):
        pos = first + t
        lane, half = (pos % 2, (pos % 4) // 2) if lane_bytes == 1 else (0, pos % 2)
        halves.setdefault((pos // per_word, lane), [-1, -1])[half] = t
    return [(word, lane, lo, hi) for (word, lane), (lo, hi) in sorted(halves.items())]


def one_pair_per_iteration(op: Conv2D, compact: bool) -> bool:
    """Output pairs per loop iteration of the row kernel: two for 3x3 kernels (measured fastest),
    one for 5x5 and larger (also measured fastest: fewer registers live; half the code) or compact."""
    return compact or min(op.kernel) >= 5


def compact_op(func: tirx.PrimFunc, op: Conv2D) -> Conv2D | None:
    """The op whose compact kernel (``depthwise_conv2d(..., compact=True)``) is the compact form of
    depthwise kernel ``func`` (``op``), or None where ``func`` has none or is it: 3x3 row kernels
    (then one output pair per iteration); small images (then the ring where it applies, else
    the pixels in loops)."""
    if not op.depthwise or (func.attrs is not None and COMPACT in func.attrs):
        return None
    if op.unrolls_small_image():
        return dataclasses.replace(op, unroll_small_image=False)
    if not op.row_buffer_shape():
        return None
    return op if not one_pair_per_iteration(op, False) else None
