"""TIR kernel generators: one integer operator descriptor in, one PrimFunc out.

Every kernel is destination-passing: activation inputs, then the op's
constant arguments (``OpDesc.const_args``), then the output buffer. The
descriptor is attached as the ``mcunet.op`` attribute.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence

import numpy as np
from tvm import tirx

from ..ops import Add, Conv2D, Dense, InputRows, Insert, Mean, OpDesc, Pad, Pool2D, Softmax, op_from_prim_func
from .common import scalar_args
from .conv2d import conv2d
from .dense import dense
from .depthwise import compact_form
from .elementwise import add, add_rescale_table, input_rows, insert, pad
from .helium import fold_input_zero_point
from .pool import pool2d
from .reduce import mean
from .requant import pack_fast_requant
from .simd import (
    SimdConfig,
    channel_records,
    doubled_input,
    flat_window,
    pack_records,
    pair_weights,
    paired_weights,
    record_pairs,
    shape_generic,
    simd_kernel,
    simd_supported,
    staged_input_bytes,
)
from .softmax import softmax

__all__ = [
    "SimdConfig",
    "can_run_inplace",
    "kernel_consts",
    "kernel_schedule",
    "kernel_scratch_bytes",
    "make_kernel",
    "output_overlap",
    "pointwise_conv",
    "scalar_args",
    "shared_kernel",
    "simd_kernel",
    "simd_supported",
]

_GENERATORS: dict[type[OpDesc], Callable[..., tirx.PrimFunc]] = {
    Conv2D: conv2d,
    Dense: dense,
    Add: add,
    Pad: pad,
    Insert: insert,
    InputRows: input_rows,
    Pool2D: pool2d,
    Mean: mean,
    Softmax: softmax,
}


def kernel_schedule(func: tirx.PrimFunc | None) -> SimdConfig | None:
    """The SIMD schedule a kernel was generated with (None: the plain TIR kernel)."""
    if func is None or func.attrs is None or "mcunet.schedule" not in func.attrs:
        return None
    kind, _, knobs = str(func.attrs["mcunet.schedule"]).partition(":")
    return SimdConfig(**json.loads(knobs)) if kind == "simd" else None


def output_overlap(op: OpDesc, schedule: SimdConfig | None = None) -> tuple[tuple[int, int], ...]:
    """(input index, max offset delta) pairs where the output may overwrite a dying input.

    The deltas follow from each kernel's loop order (see ``Step.overlap`` in the
    planner): an element-wise kernel reads element i before writing element i,
    so its output may start exactly at its input (delta 0); a pointwise
    convolution reads a whole input pixel for every output channel of that
    pixel, so output pixel p must end before input pixel p begins. A SIMD
    kernel (``schedule``) works on tiles of pixels: every output pixel of a
    tile must end before the tile's first input pixel begins.
    """
    if isinstance(op, Add):
        return ((0, 0), (1, 0))
    if isinstance(op, Conv2D) and pointwise_conv(op):
        if schedule and schedule.order == "channels":
            return ()  # every pixel is read again for every channel tile: no overlap
        tile = schedule.pixels if schedule else 1
        if tile > 1 and op.windows:
            return ()  # a windowed SIMD kernel tiles rows of the window: claim no overlap
        pixels = op.in_shape[0] * op.in_shape[1] * op.in_shape[2]
        return ((0, _pointwise_delta(pixels, op.in_shape[3], op.out_shape[3], tile)),)
    return ()


def _pointwise_delta(pixels: int, cin: int, cout: int, tile: int) -> int:
    """Largest output-minus-input offset such that no tile overwrites input it has yet to read."""
    full = pixels - pixels % tile
    tiles = [(p, tile) for p in range(0, full, tile)] + [(p, 1) for p in range(full, pixels)]
    # output of tile [p, p + n) ends at delta + (p + n) * cout; its input starts at p * cin
    return min(p * (cin - cout) - n * cout for p, n in tiles)


def can_run_inplace(op: OpDesc, input_dies: bool) -> bool:
    """Whether ``op`` may take the in-place kernel variant (output over its dying input)."""
    return (
        isinstance(op, Conv2D)
        and op.depthwise
        and not op.inplace
        and not op.windows
        and input_dies
        and op.out_bytes <= math.prod(op.in_shape)
    )


def pointwise_conv(op: Conv2D) -> bool:
    """A 1x1, stride-1, unpadded, non-depthwise convolution."""
    return (
        not op.depthwise
        and op.kernel == (1, 1)
        and op.strides == (1, 1)
        and not any(op.padding)
    )


def kernel_consts(
    op: OpDesc, consts: Sequence[np.ndarray], schedule: SimdConfig | None = None
) -> list[tuple[str, np.ndarray]]:
    """The constant arrays a kernel takes, as (name, values), from the op's semantic constants.

    Programs keep TFLite's constants (``OpDesc.const_args``: what the reference
    and the exporter read); this is the compile-time packing the kernels are
    written for. A conv/dense layer with ``fast_requant`` takes its shifts as
    (exponent, rounding + zero point) pairs (``requant.pack_fast_requant``);
    a staged SIMD kernel (``schedule``) takes its weights in channel-pair order
    (``simd.pair_weights``), and all of them in one array of channel-pair
    records where it can (``simd.channel_records``); a Helium kernel its bias
    with the input zero point folded in; an ADD its rescaling table
    (``elementwise.add_rescale_table``).
    """
    named = list(zip(op.const_args, consts, strict=True))
    if isinstance(op, Add) and (table := add_rescale_table(op)) is not None:
        return [("table", table)]
    if isinstance(op, (Conv2D, Dense)) and op.fast_requant:
        named[3] = ("rq", pack_fast_requant(consts[3], op.out_zp))
    weights = consts[0] if consts else None
    if flat_window(op) and staged_input_bytes(op, schedule):  # the window is one segment (OHWI: contiguous)
        weights = weights.reshape(weights.shape[0], 1, 1, -1)
    if channel_records(op, schedule):
        return [(named[0][0], pack_records(weights, consts[1], consts[2], named[3][1],
                                           doubled_input(op, schedule), record_pairs(schedule)))]
    if paired_weights(op, schedule):
        named[0] = (named[0][0], pair_weights(weights))
    if schedule is not None and schedule.helium:  # the MVE kernel multiplies raw inputs
        named[1] = (named[1][0], fold_input_zero_point(consts[1], consts[0], op.in_zp))
    return named


def kernel_scratch_bytes(op: OpDesc, schedule: SimdConfig | None = None) -> int:
    """Arena scratch the kernel of ``op`` takes (argument ``p8_scratch``), live during its step only.

    The depthwise row ring or in-place channel buffer (``OpDesc.scratch_bytes``),
    or a SIMD kernel's widened input windows (``simd.staged_input_bytes``).
    """
    return op.scratch_bytes() or staged_input_bytes(op, schedule)


def shared_kernel(func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    """The shape-generic form of kernel ``func`` (layer sizes as run-time arguments), if it has one.

    SIMD pointwise convolutions (``SimdConfig.shared``); for 3x3 depthwise row
    kernels, which layers rarely share, the compact form (``depthwise.compact_form``:
    one output pair per iteration, about half the code). None for every other
    kernel. (Depthwise kernels stay specialised: with the channel count, the
    NHWC stride of every gathered byte, at run time they measured 13-58 % slower.)
    """
    op = op_from_prim_func(func)
    schedule = kernel_schedule(func)
    if schedule is not None and not schedule.shared:
        shared = dataclasses.replace(schedule, shared=True)
        return simd_kernel(op, shared) if shape_generic(op, shared) else None
    return compact_form(func, op) if isinstance(op, Conv2D) else None


def make_kernel(op: OpDesc) -> tirx.PrimFunc:
    """The TIR PrimFunc computing ``op``."""
    return _GENERATORS[type(op)](op)
