"""Compile-time plans of the depthwise kernels: which kernel a layer runs (the ring of rows or tap by
tap, small images unrolled), its ring and scratch, whether it may write straight over its input,
which taps a word holds, which outputs are interior, how many output pairs a ring iteration
computes, and which kernels have a compact form.

Everything here is plain Python over the op's geometry (no TIR), so it is
decided, and testable, before any code is emitted.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from ...ops import Conv2D

if TYPE_CHECKING:
    from ..choice import KernelChoice

#: a small image's border pixel starts from the folded bias (outside taps: one multiply by the zero
#: point each) unless its outside taps outnumber its inside ones by this many (measured on the M7)
ZP_TAPS_SLACK = 4

#: output width from which the row depthwise kernel keeps its ring as int16 (:func:`ring_lane_bytes`)
WIDE_RING_MIN_WIDTH = 8
#: depthwise outputs per channel up to which the tap kernel runs every pixel unrolled (its border
#: taps outside the image dropped at compile time) instead of the row kernel's ring ...
SMALL_IMAGE_OUTPUTS = 25
#: ... when outputs x taps stay within this many (the unrolled code: about 10 bytes a tap)
SMALL_IMAGE_TAPS = 625


def row_buffer_shape(op: Conv2D, choice: KernelChoice) -> tuple[int, int] | None:
    """(rows, bytes per row) of the row depthwise kernel's ring of padded input rows (stride 1 or 2).

    ``2 x KH`` rows (each input row is stored twice, KH rows apart, so the
    KH rows of any window are contiguous) of one channel, padded with the
    zero point, plus slack so the last outputs of a row may read whole
    words; rows are whole words of :func:`ring_lane_bytes` elements.
    ``None``: the kernel works tap by tap (dilated, 3x3 stride 2, other
    strides, padding too large for the window, or a small image unrolled).
    """
    kh, kw = op.kernel
    pt, pl, pb, pr = op.padding
    # stride 2 only pays for its row gathers with 5x5 and larger kernels (measured on the M7)
    strides_ok = op.strides == (1, 1) or (op.strides == (2, 2) and min(kh, kw) >= 5)
    if not (op.depthwise and strides_ok and op.dilation == (1, 1)
            and max(pt, pb) < kh and max(pl, pr) < kw and pt <= kh - op.strides[0]):
        return None
    if unrolls_small_image(op, choice):
        return None  # the tap kernel, fully unrolled
    lanes = ring_lane_bytes(op, choice)
    return 2 * kh, -(-(op.in_shape[2] + pl + pr + 4) * lanes // 4) * 4


def unrolls_small_image(op: Conv2D, choice: KernelChoice) -> bool:
    """Whether the tap kernel runs the image with every pixel unrolled (at most
    ``SMALL_IMAGE_OUTPUTS`` outputs and ``SMALL_IMAGE_TAPS`` taps a channel; 14-29 % fewer
    instructions than the ring on MCUNet's 3x3 and 5x5 outputs, where per-row work dominates)."""
    outputs = op.out_shape[1] * op.out_shape[2]
    return (op.depthwise and choice.unroll_small_image and outputs <= SMALL_IMAGE_OUTPUTS
            and outputs * op.kernel[0] * op.kernel[1] <= SMALL_IMAGE_TAPS)


def ring_lane_bytes(op: Conv2D, choice: KernelChoice) -> int:
    """Bytes per element of the row depthwise kernel's ring: int16 for outputs at least
    ``WIDE_RING_MIN_WIDTH`` wide (taps paired without widening: 5-7 % fewer instructions
    measured on MobileNetV2 layers of 18 to 72 columns), int8 for narrower ones (the int16
    ring measured 20 % more instructions on 5-column layers, where per-row work dominates)."""
    return 2 if choice.wide_ring and op.out_shape[2] >= WIDE_RING_MIN_WIDTH else 1


def scratch_bytes(op: Conv2D, choice: KernelChoice) -> int:
    """Row depthwise kernels: their ring of rows; other in-place depthwise kernels: one output
    channel, unless they may write straight over the input (:func:`writes_over_input`)."""
    rows = row_buffer_shape(op, choice)
    if rows:
        return rows[0] * rows[1]
    return op.out_shape[1] * op.out_shape[2] if choice.inplace and not writes_over_input(op, choice) else 0


def writes_over_input(op: Conv2D, choice: KernelChoice) -> bool:
    """In-place tap-by-tap depthwise: whether each output may be stored straight over the input.

    In place, output pixel ``p`` of channel c lands on input pixel ``p``
    (flat row-major indices) of channel c. Computed in row-major order, that
    is safe iff every input pixel ``p`` is last read by an output at most
    ``p`` (an output reads its window before it is stored). Strided layers
    shrink the image, so outputs lag behind the rows they read (checked
    tap by tap at compile time).
    """
    if not (choice.inplace and op.depthwise) or row_buffer_shape(op, choice):
        return False
    return _outputs_lag_inputs(op.in_shape[1:3], op.out_shape[1:3], op.kernel, op.strides, op.dilation,
                               op.padding[:2])


@functools.lru_cache(maxsize=256)
def _outputs_lag_inputs(hw, out_hw, kernel, strides, dilation, pad_tl) -> bool:
    """Whether, in row-major order, the last output reading each input pixel has an index <= the pixel's."""
    (h, w), (oh, ow) = hw, out_hw
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    last_reader = np.full(h * w, -1, np.int64)
    for ki in range(kernel[0]):
        for kj in range(kernel[1]):
            r = i * strides[0] - pad_tl[0] + ki * dilation[0]
            c = j * strides[1] - pad_tl[1] + kj * dilation[1]
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            np.maximum.at(last_reader, (r * w + c)[inside], (i * ow + j)[inside])
    return bool(np.all(last_reader <= np.arange(h * w)))

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


def compact_choice(op: Conv2D, choice: KernelChoice) -> KernelChoice | None:
    """The choice of depthwise ``op``'s compact form (``--optimize size``), or None where it has none
    or ``choice`` is it: 3x3 row kernels (then one output pair per iteration); small images (then
    the ring where it applies, else the pixels in loops)."""
    if not op.depthwise or choice.compact:
        return None
    if unrolls_small_image(op, choice):
        return choice.with_(unroll_small_image=False, compact=True)
    if not row_buffer_shape(op, choice):
        return None
    return choice.with_(compact=True) if not one_pair_per_iteration(op, False) else None
