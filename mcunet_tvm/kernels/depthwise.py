"""Depthwise conv2d (NHWC, int8), out of place or in place, with fused requantisation.

Channel by channel, with the channel's ``KH x KW`` weights held in registers
(bound once per channel) and the taps of a pixel unrolled at constant offsets
from one base address. Pixels whose window lies inside the image take the
fast path: no bounds checks, and the input zero point folded into one
per-channel constant (``bias - zp * sum(w)``), so a tap costs a load and a
multiply-accumulate. Only the border pixels, found at compile time per row
and column range, check every tap (a tap outside the image contributes
nothing, TFLite's padding semantics).

In place (MCUNet, ``Conv2D.inplace``): a channel's outputs go to a scratch
buffer of OH x OW bytes (an argument: the planner places it in the arena),
then are copied over that channel. In NHWC an output element of channel c
lands on an input byte of channel c (both at index = c mod C), so with the
output at the input's address only already consumed input is overwritten.
Written with TVM's TIR IRBuilder because the loop structure (per-channel
register blocking, split border ranges) is not a TE compute.
"""

from __future__ import annotations

import math

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D
from .common import OUT, SCRATCH
from .requant import bind_requantizer, clamp_to_int8


def _i32(v: int):
    return tirx.const(v, "int32")


def _interior(n_out: int, stride: int, dil: int, k: int, pad: int, size: int) -> tuple[int, int]:
    """[lo, hi): output positions whose window lies inside ``size`` input positions."""
    inside = [o for o in range(n_out) if o * stride - pad >= 0 and o * stride - pad + (k - 1) * dil < size]
    if not inside:
        return 0, 0
    return inside[0], inside[-1] + 1


def depthwise_conv2d(op: Conv2D) -> tirx.PrimFunc:
    if op.inplace and op.windows:
        raise ValueError("an in-place depthwise conv reads a whole buffer, not a window")
    _, h, w, c = op.in_shape
    _, oh, ow, _ = op.out_shape
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]
    win = op.window(0)
    buf = op.input_buffer_shape(0, op.in_shape)
    r0, c0 = (win[0], win[1]) if win else (0, 0)
    bw = buf[2]
    taps = [(ki, kj) for ki in range(kh) for kj in range(kw)]
    row_lo, row_hi = _interior(oh, sh, dh, kh, pt, h)
    col_lo, col_hi = _interior(ow, sw, dw, kw, pl, w)
    zp = op.in_zp

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(buf),), "int8"))
            weight = T.arg("p1_w", T.buffer((kh * kw * c,), "int8"))
            bias = T.arg("p2_bias", T.buffer((c,), "int32"))
            mult = T.arg("p3_mult", T.buffer((c,), "int32"))
            shift = T.arg("p4_shift", T.buffer((c,), "int32"))
            scratch = T.arg(SCRATCH, T.buffer((oh * ow,), "int8")) if op.inplace else None
            out = T.arg(OUT, T.buffer((oh * ow * c,), "int8"))
            acc = T.alloc_buffer((2,), "int32")

            with T.serial(0, c) as k:
                wk = [T.bind(weight[(ki * kw + kj) * c + k].astype("int32")) for ki, kj in taps]
                fast_base = None
                if row_hi > row_lo and col_hi > col_lo:  # some pixel takes the fast path
                    wsum = wk[0]
                    for v in wk[1:]:
                        wsum = wsum + v
                    fast_base = T.bind(bias[k] - _i32(zp) * wsum)
                requant = bind_requantizer(mult[k], shift[k], T.bind, op.fast_requant)

                def store(i, j, value):
                    q = clamp_to_int8(requant(value) + _i32(op.out_zp), op.act_min, op.act_max)
                    if op.inplace:
                        T.buffer_store(scratch, q, [i * ow + j])
                    else:
                        T.buffer_store(out, q, [(i * ow + j) * c + k])

                # taps pair up into halfwords: SMLABB / SMLABT pick the weight from the bottom / top
                # half, so a 3x3 channel's nine weights live in five registers
                packed = [
                    T.bind((wk[t] & _i32(0xFFFF)) | (wk[t + 1] << _i32(16))) if t + 1 < len(wk) else wk[t]
                    for t in range(0, len(wk), 2)
                ]

                def fast(i, j, pixels: int = 1):
                    """``pixels`` neighbouring outputs at once (their windows share input loads)."""
                    for p in range(pixels):
                        base = ((i * sh - pt + r0) * bw + (j + p) * sw - pl + c0) * c + k
                        total = fast_base
                        for t, (ki, kj) in enumerate(taps):
                            xv = x[base + (ki * dh * bw + kj * dw) * c].astype("int32")
                            name = "mcunet_smlabb" if t % 2 == 0 else "mcunet_smlabt"
                            total = T.call_extern("int32", name, xv, packed[t // 2], total)
                        # through the accumulator buffer, so each output is requantised on its own
                        T.buffer_store(acc, total, [p])
                    for p in range(pixels):
                        store(i, j + p, acc[p])

                def checked(i, j):
                    T.buffer_store(acc, bias[k], [0])
                    for (ki, kj), wv in zip(taps, wk, strict=True):
                        ih = i * sh - pt + ki * dh
                        iw = j * sw - pl + kj * dw
                        tap = tirx.if_then_else(
                            tirx.all(ih >= 0, ih < h, iw >= 0, iw < w),
                            (x[((ih + r0) * bw + iw + c0) * c + k].astype("int32") - _i32(zp)) * wv,
                            _i32(0),
                        )
                        T.buffer_store(acc, acc[0] + tap, [0])
                    store(i, j, acc[0])

                def row(i, interior_row: bool):
                    ranges = [(0, col_lo, False), (col_lo, col_hi, True), (col_hi, ow, False)]
                    if not interior_row:
                        ranges = [(0, ow, False)]
                    for lo, hi, inside in ranges:
                        if inside and hi - lo >= 2:  # interior: pairs of pixels, then an odd one
                            with T.serial(0, (hi - lo) // 2) as jp:
                                fast(i, lo + 2 * jp, pixels=2)
                            lo = hi - (hi - lo) % 2
                        if hi > lo:
                            with T.serial(lo, hi) as j:
                                (fast if inside else checked)(i, j)

                for lo, hi, inside in [(0, row_lo, False), (row_lo, row_hi, True), (row_hi, oh, False)]:
                    if hi > lo:
                        with T.serial(lo, hi) as i:
                            row(i, inside)
                if op.inplace:
                    with T.serial(0, oh * ow) as p:
                        T.buffer_store(out, scratch[p], [p * c + k])
    return builder.get().with_attr("mcunet.op", op.to_json())
