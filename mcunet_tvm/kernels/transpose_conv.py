"""Integer TRANSPOSE_CONV (NHWC, int8, OHWI weights) as a gather, with fused requantisation.

TFLM scatters: input pixel ``y`` adds ``w[ky]`` times its value onto output ``y * s - pad + ky``.
Here every output sums what scatters into it, so each output is accumulated in one register and
requantised at once (no int32 scratch of the whole output). Output ``o`` receives tap ``ky`` of
input ``(o + pad - ky) / s`` where that divides evenly, so the outputs of one *phase*
``o = q * s + r`` all receive the same taps ``ky = k0 + s * t`` from inputs ``q + shift - t``
(:func:`phases`): the phases are split at compile time, each a loop nest with no modulo in it, and
the only run-time checks are whether an input row and column lie inside the image (dropped where
the bounds prove them). On DSP cores (``KernelChoice.dual_mac``) a word of four input channels is
widened once (``SXTAB16``, the zero point added in the same instruction) and multiplied by two
``SMLAD``s into each of a tile of :data:`TILE_CHANNELS` output channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import TransposeConv2D
from .common import NO_PRESCHEDULE, OUT, guarded, inside
from .requant import channel_requantizer, clamp_to_int8, requant_args

#: a dual-MAC kernel's channel words per tap up to this many are unrolled
UNROLL_WORDS = 8
#: output channels of a dual-MAC tile: each widened input word serves them all
TILE_CHANNELS = 4


@dataclass(frozen=True)
class Phase:
    """The outputs ``first + s * q`` (``q < count``) of one axis: they receive kernel taps
    ``tap0 + s * t`` (``t < taps``) from inputs ``q + shift - t``."""

    first: int
    count: int
    tap0: int
    taps: int
    shift: int


def phases(in_size: int, out_size: int, k: int, s: int, pad: int) -> list[Phase]:
    """The phases of one axis (inputs ``in_size``, outputs ``out_size``, ``k`` taps, stride ``s``, leading pad)."""
    result = []
    for r in range(min(s, out_size)):
        tap0 = (r + pad) % s
        result.append(Phase(r, -(-(out_size - r) // s), tap0, len(range(tap0, k, s)), (r + pad - tap0) // s))
    return result


def _i32(v: int) -> tirx.PrimExpr:
    return tirx.const(v, "int32")


def transpose_conv(op: TransposeConv2D, fast: bool, dual_mac: bool = False) -> tirx.PrimFunc:
    """The gather kernel of ``op`` (``fast``: the fast requantisation; ``dual_mac``: four input channels
    per step with SMLAD, the rest one by one, tiles of output channels sharing each widened input word)."""
    n, ih, iw, c = op.in_shape
    _, oh, ow, oc = op.out_shape
    kh, kw = op.kernel
    sh, sw = op.strides
    rows = phases(ih, oh, kh, sh, op.padding[0])
    cols = phases(iw, ow, kw, sw, op.padding[1])
    neg_zp = _i32(int(np.array([-op.in_zp, -op.in_zp], np.int16).view(np.int32)[0]))  # both halfwords -zp
    width = min(TILE_CHANNELS, oc) if dual_mac else 1  # output channels per tile (sharing each widened input word)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((n * ih * iw * c,), "int8"))
            w = T.arg("p1_w", T.buffer((oc * kh * kw * c,), "int8"))
            bias = T.arg("p2_bias", T.buffer((oc,), "int32"))
            mult = T.arg("p3_mult", T.buffer((oc,), "int32"))
            rq_shape, rq_name = requant_args(oc, fast)
            rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
            out = T.arg(OUT, T.buffer((n * oh * ow * oc,), "int8"))
            acc = T.alloc_buffer((width,), "int32")

            def pixel(b, py: Phase, qy, px: Phase, qx) -> None:
                """Every channel of output pixel (qy * sh + py.first, qx * sw + px.first), ``width`` at a time."""
                pixel_out = ((b * oh + qy * sh + py.first) * ow + qx * sw + px.first) * oc
                tiles = oc // width
                with T.serial(0, tiles) as kt:
                    channel_tile(b, py, qy, px, qx, pixel_out, kt * width, width)
                for k in range(tiles * width, oc):  # the channels after the last whole tile, one by one
                    channel_tile(b, py, qy, px, qx, pixel_out, _i32(k), 1)

            def channel_tile(b, py: Phase, qy, px: Phase, qx, pixel_out, k0, lanes: int) -> None:
                for j in range(lanes):
                    T.buffer_store(acc, bias[k0 + j], [j])
                if py.taps and px.taps:
                    with T.serial(0, py.taps) as t:
                        iy = qy + _i32(py.shift) - t
                        row = inside(iy, ih, py.shift - py.taps + 1, py.count - 1 + py.shift)
                        guarded(row, lambda: tap_row(b, py, t, iy, px, qx, k0, lanes))
                for j in range(lanes):
                    value = channel_requantizer(op, fast, mult, rq, k0 + j, T.bind)(acc[j])
                    T.buffer_store(out, clamp_to_int8(value, op.act_min, op.act_max), [pixel_out + k0 + j])

            def tap_row(b, py: Phase, t, iy, px: Phase, qx, k0, lanes: int) -> None:
                with T.serial(0, px.taps) as u:
                    ix = qx + _i32(px.shift) - u
                    col = inside(ix, iw, px.shift - px.taps + 1, px.count - 1 + px.shift)
                    tap = (py.tap0 + sh * t, px.tap0 + sw * u)
                    guarded(col, lambda: channels(((b * ih + iy) * iw + ix) * c, tap, k0, lanes))

            def channels(x_base, tap, k0, lanes: int) -> None:
                """One tap's products for channels ``k0 ..`` (input ``x_base``): words, then the rest one by one."""
                w_bases = [(((k0 + j) * kh + tap[0]) * kw + tap[1]) * c for j in range(lanes)]
                words = c // 4 if dual_mac else 0
                if 0 < words <= UNROLL_WORDS:
                    for g in range(words):
                        dual_step(x_base + 4 * g, [wb + 4 * g for wb in w_bases])
                elif words:
                    with T.serial(0, words) as g:
                        dual_step(x_base + 4 * g, [wb + 4 * g for wb in w_bases])
                if dual_mac:  # the tail of at most three channels, unrolled
                    for ch in range(4 * words, c):
                        single_step(x_base + ch, [wb + ch for wb in w_bases])
                elif c:
                    with T.serial(0, c) as ch:
                        single_step(x_base + ch, [wb + ch for wb in w_bases])

            def single_step(xi, w_indices) -> None:
                xv = x[xi].astype("int32") - _i32(op.in_zp)
                if len(w_indices) > 1:
                    xv = T.bind(xv)
                for j, wi in enumerate(w_indices):
                    T.buffer_store(acc, acc[j] + xv * w[wi].astype("int32"), [j])

            def dual_step(xi, w_indices) -> None:
                """Four input channels: (x - zp) widened once to halfword pairs (lanes 0/2, then 1/3), two
                SMLADs per output channel."""
                xv = T.bind(T.call_extern("int32", "mcunet_read_s8x4", T.address_of(x[xi])))
                xs = [T.bind(T.call_extern("int32", f"mcunet_sxtab16{r}", neg_zp, xv)) for r in ("", "_ror8")]
                for j, wi in enumerate(w_indices):
                    wv = T.bind(T.call_extern("int32", "mcunet_read_s8x4", T.address_of(w[wi])))
                    total = acc[j]
                    for half, r in zip(xs, ("", "_ror8"), strict=True):
                        wide = T.call_extern("int32", f"mcunet_sxtb16{r}", wv)
                        total = T.call_extern("int32", "mcunet_smlad", half, wide, total)
                    T.buffer_store(acc, total, [j])

            with T.serial(0, n) as b:
                for py in rows:
                    with T.serial(0, py.count) as qy:
                        for px in cols:
                            with T.serial(0, px.count) as qx:
                                pixel(b, py, qy, px, qx)
    func = builder.get()
    # unrolled words are straight-line MACs: GCC's early scheduling would hoist their loads and spill
    return func.with_attr(NO_PRESCHEDULE, True) if dual_mac and c // 4 <= UNROLL_WORDS else func
