"""Word steps of the reduction in C (``call_extern`` primitives): widening and SMLAD accumulation.

A word step takes one input word of each pixel of the tile (four int8
bytes, widened into lanes 0/2 and 1/3 with SXTAB16, which adds the zero
point) and one weight word of each channel (widened with SXTB16), and adds
two SMLADs per output to the tile's accumulators. Unstaged kernels read the
input straight from the image (:func:`simd_row`; border tiles tap by tap,
:func:`scalar_row`); staged kernels without channel-pair weights read the
staged words (:func:`staged_row`; with channel pairs: :mod:`.paired`).
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..common import pack_halves
from .config import UNROLL_WORDS
from .context import SimdContext, call, i32
from .geometry import Index
from .paired import paired_row

#: ``lanes(p, q)``: (lanes 0/2, lanes 1/3) of word q of pixel p, widened
Lanes = Callable[[int, object], tuple]


def widen_weights(ctx: SimdContext, o0: Index, tc: int, ki: Index, q: Index) -> list[tuple]:
    """(lanes 0/2, lanes 1/3) of weight word q of each channel of the tile."""
    lanes = []
    for t in range(tc):
        v = T.bind(call("mcunet_read_s8x4", T.address_of(ctx.wt[ctx.weight_word(o0 + t, ki, q)])))
        lanes.append((T.bind(call("mcunet_sxtb16", v)), T.bind(call("mcunet_sxtb16_ror8", v))))
    return lanes


def word_step(ctx: SimdContext, lanes: Lanes, q: Index, tp: int, tc: int, wlanes: list[tuple]) -> None:
    """One word of the segment: each pixel's widened input (``lanes``), two SMLADs per output."""
    acc = ctx.acc
    xl = [lanes(p, q) for p in range(tp)]
    for t in range(tc):
        w02, w13 = wlanes[t]
        for p in range(tp):
            idx = p * ctx.tc_max + t
            a = call("mcunet_smlad", xl[p][0], w02, acc[idx])
            if w13 is not None:
                a = call("mcunet_smlad", xl[p][1], w13, a)
            T.buffer_store(acc, a, [idx])


def words_loop(ctx: SimdContext, lanes: Lanes, o0: Index, tp: int, tc: int, ki: Index, words: Index) -> None:
    """Words 0 .. words - 1 of kernel row ki: unrolled when short, else two per iteration."""
    if isinstance(words, int) and words <= UNROLL_WORDS:  # short rows: straight-line code
        for q in range(words):
            word_step(ctx, lanes, q, tp, tc, widen_weights(ctx, o0, tc, ki, q))
        return
    with T.serial(0, words // 2) as qq:
        for half in range(2):
            word_step(ctx, lanes, qq * 2 + half, tp, tc, widen_weights(ctx, o0, tc, ki, qq * 2 + half))
    if isinstance(words, int) and words % 2:  # (a run-time length is even)
        word_step(ctx, lanes, words - 1, tp, tc, widen_weights(ctx, o0, tc, ki, words - 1))


def simd_row(ctx: SimdContext, ih: Index, iw0: Index, o0: Index, tp: int, tc: int, ki: Index,
             hoisted: list | None) -> None:
    """The whole kernel row in words: SXTAB16/SXTB16 widening, SMLAD accumulation."""
    g, x, wt, acc, seg, tail = ctx.g, ctx.x, ctx.wt, ctx.acc, ctx.seg, ctx.tail
    xb = [ctx.x_index(ih, iw0 + p * g.sw) for p in range(tp)]

    def lanes(p, q):
        v = T.bind(call("mcunet_read_s8x4", T.address_of(x[xb[p] + q * 4])))
        lo, hi = ctx.widen_input(v)
        return T.bind(lo), T.bind(hi)

    if hoisted is not None:
        for q, wlanes in enumerate(hoisted):
            word_step(ctx, lanes, q, tp, tc, wlanes)
    else:
        words_loop(ctx, lanes, o0, tp, tc, ki, seg // 4)
    for r in range(seg - tail, seg) if tail else ():  # tail of the segment
        for p in range(tp):
            xv = x[xb[p] + r].astype("int32") - ctx.zp
            for t in range(tc):
                idx = p * ctx.tc_max + t
                wv = wt[((o0 + t) * g.kh + ki) * seg + r].astype("int32")
                T.buffer_store(acc, acc[idx] + xv * wv, [idx])


def scalar_row(ctx: SimdContext, ih: Index, iw0: Index, o0: Index, tp: int, tc: int, ki: Index) -> None:
    """Border tiles: tap by tap, a tap outside the image contributes nothing."""
    g, acc = ctx.g, ctx.acc
    with T.grid(g.kw, g.c) as (kj, ch):
        for p in range(tp):
            iw = iw0 + p * g.sw + kj
            xv = tirx.if_then_else(
                tirx.all(iw >= 0, iw < g.w),
                ctx.x[ctx.x_index(ih, iw) + ch].astype("int32") - ctx.zp,
                i32(0),
            )
            for t in range(tc):
                idx = p * ctx.tc_max + t
                wv = ctx.wt[((o0 + t) * g.kh + ki) * ctx.seg + kj * g.c + ch].astype("int32")
                T.buffer_store(acc, acc[idx] + xv * wv, [idx])


def partial_weights(ctx: SimdContext, o0: Index, tc: int, ki: Index) -> list[tuple]:
    """Lanes of the last, partial weight word of kernel row ki: 0 past the row (where a
    staged lane may hold anything, see :func:`~.staging.window_word`)."""
    base, rest = ctx.seg - ctx.tail, ctx.tail
    lanes = []
    for t in range(tc):
        row = ((o0 + t) * ctx.kh_s + ki) * ctx.seg + base
        w = [ctx.wt[row + b].astype("int32") for b in range(rest)]
        lo = T.bind(pack_halves(w[0], w[2] if rest == 3 else None))
        lanes.append((lo, T.bind(pack_halves(w[1])) if rest >= 2 else None))
    return lanes


def staged_row(ctx: SimdContext, o0: Index, tp: int, tc: int, ki: Index) -> None:
    """Kernel row ki from the staged, widened windows: no border case, no scalar tail."""
    if ctx.pairs:
        paired_row(ctx, o0, tp, tc, ki)
        return

    def lanes(p, q):
        return T.bind(ctx.staged[ctx.slot(p, ki, q, 0)]), T.bind(ctx.staged[ctx.slot(p, ki, q, 1)])

    words_loop(ctx, lanes, o0, tp, tc, ki, ctx.seg // 4)
    if ctx.tail:
        word_step(ctx, lanes, ctx.seg // 4, tp, tc, partial_weights(ctx, o0, tc, ki))
