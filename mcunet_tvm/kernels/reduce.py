"""Mean over H and W (global average pooling) and MEAN/SUM over any axes, TFLite int8 semantics.

``out = clamp(requant(sum(x) - zp_in * count, m, s) + zp_out)`` where the
multiplier ``m, s`` already folds in ``1 / count`` (TF Lite's
``QuantizedMeanOrSum``), so there is no division at run time.

Channels in groups of four (:func:`_mean_lanes`) are summed as halfword
lanes: one word load and two ``SXTAB16`` add four inputs to four 16-bit sums
(exact while ``128 x H x W`` fits a lane); otherwise one channel at a time.

Any other reduction (:class:`~mcunet_tvm.ops.Reduce`) is :func:`reduce`: the input seen as
alternating groups of kept and reduced dimensions (adjacent ones merged), one int32 sum per
output over compile-time strides.
"""

from __future__ import annotations

import math

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import INT_RANGE, Mean, Reduce
from .common import OUT, arg, finish
from .requant import clamp_to_int8, requantize, requantize_const

#: pixels a 16-bit lane can sum exactly (|x| <= 128)
MAX_LANE_PIXELS = 32767 // 128
#: pixel loops up to this long are unrolled
UNROLL_PIXELS = 64


def mean(op: Mean) -> tirx.PrimFunc:
    n, h, w, c = op.in_shape
    if n == 1 and c % 4 == 0 and h * w <= MAX_LANE_PIXELS:
        return _mean_lanes(op)
    x = arg(0, op.in_shape, "int8", "x")
    rh = te.reduce_axis((0, h), name="rh")
    rw = te.reduce_axis((0, w), name="rw")
    acc = te.compute((n, c), lambda b, k: te.sum(x[b, rh, rw, k].astype("int32"), axis=[rh, rw]), name="acc")
    offset = tirx.const(op.in_zp * h * w, "int32")

    def body(*idx):
        b, k = idx[0], idx[-1]
        value = requantize(acc[b, k] - offset, tirx.const(op.multiplier, "int32"), tirx.const(op.shift, "int32"))
        return clamp_to_int8(value + tirx.const(op.out_zp, "int32"), -128, 127)

    out = te.compute(op.out_shape, body, name=OUT)
    return finish([x, out], local_blocks=("acc",))


def _mean_lanes(op: Mean) -> tirx.PrimFunc:
    """Four channels at a time: lanes (0, 2) and (1, 3) of each pixel's word summed by SXTAB16."""
    _, h, w, c = op.in_shape
    pixels = h * w
    bound = 255 * pixels  # |sum - zp * count|
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((pixels * c,), "int8"))
            out = T.arg(OUT, T.buffer((c,), "int8"))
            sums = T.alloc_buffer((2,), "int32")
            with T.serial(0, c // 4) as g:
                T.buffer_store(sums, tirx.const(0, "int32"), [0])
                T.buffer_store(sums, tirx.const(0, "int32"), [1])

                def add_pixel(p):
                    word = T.bind(T.call_extern("int32", "mcunet_read_s8x4", T.address_of(x[p * c + g * 4])))
                    T.buffer_store(sums, T.call_extern("int32", "mcunet_sxtab16", sums[0], word), [0])
                    T.buffer_store(sums, T.call_extern("int32", "mcunet_sxtab16_ror8", sums[1], word), [1])

                if pixels <= UNROLL_PIXELS:
                    for p in range(pixels):
                        add_pixel(p)
                else:
                    with T.serial(0, pixels) as p:
                        add_pixel(p)
                lanes = [T.bind(sums[0]), T.bind(sums[1])]
                for k in range(4):  # channel k: lane register k % 2, bottom (k < 2) or top half
                    v = lanes[k % 2]
                    total = v.astype("int16").astype("int32") if k < 2 else v >> tirx.const(16, "int32")
                    value = requantize_const(total - tirx.const(op.in_zp * pixels, "int32"), op.multiplier,
                                             op.shift, bound, op.out_zp)
                    T.buffer_store(out, clamp_to_int8(value, -128, 127), [g * 4 + k])
    return builder.get()


def reduce_groups(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple[int, int, bool]]:
    """``shape`` as merged groups, outermost first: (extent, stride in the input, reduced).

    Dimensions of size 1 are dropped and adjacent dimensions that are both kept or both reduced
    merge, so a (2, 3, 4, 2) tensor summed over axes 1, 2, 3 is two groups (2, kept; 24, reduced).
    """
    merged: list[list] = []
    for d, size in enumerate(shape):
        if size == 1:
            continue
        reduced = d in axes
        if merged and merged[-1][1] == reduced:
            merged[-1][0] *= size
        else:
            merged.append([size, reduced])
    strides = [math.prod(e for e, _ in merged[k + 1 :]) for k in range(len(merged))]
    return [(extent, stride, reduced) for (extent, reduced), stride in zip(merged, strides, strict=True)]


def reduce(op: Reduce) -> tirx.PrimFunc:
    """MEAN or SUM over ``op.axes``: for each output (the kept groups in order) an int32 sum over the
    reduced groups, then ``sum - in_zp * count`` requantised (compile-time constants) and clamped to
    ``op.dtype`` (int8, or int16 for 16x8 models)."""
    groups = reduce_groups(tuple(op.in_shape), tuple(op.axes))
    kept = [(e, s) for e, s, r in groups if not r]
    summed = [(e, s) for e, s, r in groups if r]
    count = op.count
    offset = tirx.const(op.in_zp * count, "int32")
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(op.in_shape),), op.dtype))
            out = T.arg(OUT, T.buffer((math.prod(op.out_shape),), op.dtype))
            acc = T.alloc_buffer((1,), "int32")
            lo, hi = INT_RANGE[op.dtype]
            span = hi - lo

            def output(k: int, out_index, in_index) -> None:
                if k < len(kept):
                    with T.serial(0, kept[k][0]) as i:
                        output(k + 1, out_index * kept[k][0] + i, in_index + i * kept[k][1])
                    return
                T.buffer_store(acc, tirx.const(0, "int32"), [0])
                total(0, in_index)
                value = requantize_const(acc[0] - offset, op.multiplier, op.shift, span * count, op.out_zp)
                clamped = (clamp_to_int8(value, lo, hi) if op.dtype == "int8"
                           else tirx.min(tirx.max(value, tirx.const(lo, "int32")), tirx.const(hi, "int32"))
                           .astype(op.dtype))
                T.buffer_store(out, clamped, [out_index])

            def total(k: int, in_index) -> None:
                if k < len(summed):
                    with T.serial(0, summed[k][0]) as j:
                        total(k + 1, in_index + j * summed[k][1])
                    return
                T.buffer_store(acc, acc[0] + x[in_index].astype("int32"), [0])

            output(0, tirx.const(0, "int32"), tirx.const(0, "int32"))
    return builder.get()
