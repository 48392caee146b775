"""Depthwise conv2d (NHWC, int8), out of place or in place, with fused requantisation.

Two kernels, both channel by channel with the input zero point folded into
one per-channel constant (``bias - zp * sum(w)``):

- stride 1, and stride 2 with 5x5 or larger kernels (:func:`~.ring.row_kernel`,
  ``Conv2D.row_buffer_shape``): the channel's input rows pass through a ring
  of rows padded with the zero point (an argument: the planner places it in
  the arena), so every output is an interior one, and SMLAD multiplies pairs
  of taps at once (an int16 ring for wide rows: neighbouring taps, no
  widening; else int8: taps (t, t + 2) after SXTB16);
- otherwise (3x3 stride 2, dilated, small images; :func:`~.taps.tap_kernel`): the
  ``KH x KW`` weights in registers and the taps of a pixel unrolled at
  constant offsets from one base address; only border pixels, found at
  compile time per row and column range, check every tap (a tap outside the
  image contributes nothing, TFLite's padding semantics); a small image
  (``Conv2D.unrolls_small_image``) has every pixel unrolled, so those checks
  are settled at compile time.

In place (MCUNet, ``Conv2D.inplace``): in NHWC an output element of channel
c lands on an input byte of channel c (both at index = c mod C), so with the
output at the input's address only channel c is at risk. The row kernel
writes output row i after the ring holds every input row up to i, and
gathers only later rows, so it writes straight over the input. So does the
tap kernel where every input pixel is last read by an output that comes no
later in row-major order (``Conv2D.writes_over_input``, checked at compile
time: strided layers); otherwise it writes the channel to a scratch buffer of
OH x OW bytes and copies it over the channel afterwards. Written with TVM's TIR IRBuilder because the
loop structure (rings, register blocking, split border ranges) is not a TE
compute.

The package: :mod:`.plan` (compile-time plans: the taps' words and lanes,
interior ranges, output pairs per iteration, the compact-form policy),
:mod:`.channel` (what both kernels share), :mod:`.ring` and :mod:`.taps`
(the two kernels).
"""

from __future__ import annotations

from tvm import tirx

from ...ops import Conv2D
from .channel import folded_bias as _folded_bias  # noqa: F401 (the former module's private name)
from .channel import i32 as _i32  # noqa: F401 (the former module's private name)
from .channel import scaled as _scaled  # noqa: F401 (the former module's private name)
from .plan import COMPACT, ZP_TAPS_SLACK, compact_op
from .plan import interior as _interior  # noqa: F401 (the former module's private name)
from .plan import one_pair_per_iteration as _one_pair_per_iteration  # noqa: F401 (the former module's private name)
from .plan import row_plan as _row_plan  # noqa: F401 (the former module's private name)
from .ring import row_kernel as _row_kernel
from .taps import tap_kernel as _tap_kernel

__all__ = ["COMPACT", "ZP_TAPS_SLACK", "compact_form", "depthwise_conv2d"]


def compact_form(func: tirx.PrimFunc, op: Conv2D) -> tirx.PrimFunc | None:
    """The compact form of depthwise kernel ``func`` (``op``) if it has one and ``func`` is not it:
    3x3 row kernels with one output pair per iteration; small images with their pixels in loops
    (:func:`~.plan.compact_op`)."""
    compact = compact_op(func, op)
    return depthwise_conv2d(compact, compact=True) if compact is not None else None


def depthwise_conv2d(op: Conv2D, compact: bool = False) -> tirx.PrimFunc:
    """The depthwise kernel for ``op``: the row kernel where ``op.row_buffer_shape()`` allows, else tap by tap.

    ``compact`` (``--optimize size``): the row kernel computes one pair of
    outputs per loop iteration also for 3x3 kernels (which are fastest with
    two pairs per iteration and a separate tail pair: about twice the code);
    the tap kernel keeps small images' pixels in loops.
    """
    if op.inplace and op.windows:
        raise ValueError("an in-place depthwise conv reads a whole buffer, not a window")
    if op.row_buffer_shape():
        return _row_kernel(op, compact)
    return _tap_kernel(op, compact)
