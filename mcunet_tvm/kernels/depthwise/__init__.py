"""Depthwise conv2d (NHWC, int8), out of place or in place, with fused requantisation.

Two kernels, both channel by channel with the input zero point folded into
one per-channel constant (``bias - zp * sum(w)``):

- stride 1, and stride 2 with 5x5 or larger kernels (:func:`~.ring.row_kernel`,
  ``plan.row_buffer_shape``): the channel's input rows pass through a ring
  of rows padded with the zero point (an argument: the planner places it in
  the arena), so every output is an interior one, and SMLAD multiplies pairs
  of taps at once (an int16 ring for wide rows: neighbouring taps, no
  widening; else int8: taps (t, t + 2) after SXTB16);
- otherwise (3x3 stride 2, dilated, small images; :func:`~.taps.tap_kernel`): the
  ``KH x KW`` weights in registers and the taps of a pixel unrolled at
  constant offsets from one base address; only border pixels, found at
  compile time per row and column range, check every tap (a tap outside the
  image contributes nothing, TFLite's padding semantics); a small image
  (``plan.unrolls_small_image``) has every pixel unrolled, so those checks
  are settled at compile time.

In place (MCUNet, ``KernelChoice.inplace``): in NHWC an output element of channel
c lands on an input byte of channel c (both at index = c mod C), so with the
output at the input's address only channel c is at risk. The row kernel
writes output row i after the ring holds every input row up to i, and
gathers only later rows, so it writes straight over the input. So does the
tap kernel where every input pixel is last read by an output that comes no
later in row-major order (``plan.writes_over_input``, checked at compile
time: strided layers); otherwise it writes the channel to a scratch buffer of
OH x OW bytes and copies it over the channel afterwards. Written with TVM's TIR IRBuilder because the
loop structure (rings, register blocking, split border ranges) is not a TE
compute.

The package: :mod:`.plan` (compile-time plans: ring or taps, ring size and
width, scratch, writing over the input, the taps' words and lanes,
interior ranges, output pairs per iteration, the compact-form policy),
:mod:`.channel` (what both kernels share), :mod:`.ring` and :mod:`.taps`
(the two kernels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tvm import tirx

from ...ops import Conv2D
from .plan import ZP_TAPS_SLACK, compact_choice, row_buffer_shape
from .ring import row_kernel
from .taps import tap_kernel

if TYPE_CHECKING:
    from ..choice import KernelChoice

__all__ = ["ZP_TAPS_SLACK", "compact_choice", "depthwise_conv2d"]


def depthwise_conv2d(op: Conv2D, choice: KernelChoice) -> tirx.PrimFunc:
    """The depthwise kernel for ``op`` as ``choice`` says: the row kernel where
    :func:`~.plan.row_buffer_shape` allows, else tap by tap; in place or not.

    ``choice.compact`` (``--optimize size``): the row kernel computes one pair of
    outputs per loop iteration also for 3x3 kernels (which are fastest with
    two pairs per iteration and a separate tail pair: about twice the code);
    the tap kernel keeps small images' pixels in loops.
    """
    if choice.inplace and op.windows:
        raise ValueError("an in-place depthwise conv reads a whole buffer, not a window")
    if row_buffer_shape(op, choice):
        return row_kernel(op, choice)
    return tap_kernel(op, choice)
