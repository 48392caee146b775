"""Word steps from channel-pair weights (:func:`~.layout.pair_weights`) over the staged input.

Per staged word and half (lanes 0/2, then 1/3), one weight word holds the
lanes of two output channels: one load and two widenings give both, and each
pixel's staged word is loaded right where it is used, so a 4x2 tile keeps
eight accumulators, two weights and one input word live. With
:func:`~.schedule.fused_steps` (and looped rows) a step of a one-pair tile is
asm blocks of ``mcunet_simd.h`` (``mcunet_widen_pair``, ``mcunet_smlad4d``
for two adjacent pixels: one LDRD, ``mcunet_smlad2`` for one), so GCC neither
hoists the loads nor spills.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from .config import UNROLL_WINDOW_WORDS, UNROLL_WORDS
from .context import SimdContext, call
from .geometry import Index
from .schedule import fused_steps


def _weight_address(ctx: SimdContext, o0: Index, ki_run: Index, ki_c: int, q_run: Index, q: int, h: int,
                    j: int) -> tuple:
    """(base in elements of the weights, offset in bytes) of pair j's weight word for half h of
    word ``q_run + q`` of kernel row ``ki_run + ki_c`` (pairs of a record side by side for each
    word position); the offset is spelled out when 0 so that it stays an int with a run-time row length."""
    row_words = ctx.row_words
    if ctx.records:
        group = ctx.group
        w_base = tirx.floordiv(o0, 2 * group) * ctx.rec_words + (ki_run * row_words + q_run) * 2 * group
        w_off = (((ki_c * row_words + q) * 2 + h) * group + j) * 4
    else:
        w_base = tirx.floordiv(o0, 2) * ctx.pair_stride + (ki_run * row_words + q_run) * 8
        w_off = j * ctx.pair_stride + (ki_c * row_words + q) * 8 + h * 4 if j or ki_c or q else h * 4
    return w_base, w_off


def _pair_weight_lanes(ctx: SimdContext, o0: Index, tc: int, ki_run: Index, ki_c: int, q_run: Index, q: int, h: int,
                       fused: bool) -> list:
    """The tile's widened weights for half h of one staged word: one per channel."""
    wt, wv = ctx.wt, []
    for j in range((tc + 1) // 2):
        w_base, w_off = _weight_address(ctx, o0, ki_run, ki_c, q_run, q, h, j)
        if fused:
            T.evaluate(call("mcunet_widen_pair", T.address_of(ctx.wreg[0]), T.address_of(wt[w_base]), w_off))
            wv += [ctx.wreg[0], ctx.wreg[1]]
            continue
        if ctx.records:  # an aligned word of the record
            v = T.bind(wt[w_base + w_off // 4])
        else:
            v = T.bind(call("mcunet_read_s8x4", T.address_of(wt[w_base + w_off])))
        wv.append(T.bind(call("mcunet_sxtb16", v)))
        if 2 * j + 1 < tc:
            wv.append(T.bind(call("mcunet_sxtb16_ror8", v)))
    return wv


def _paired_macs(ctx: SimdContext, tp: int, tc: int, ki_run: Index, ki_c: int, q_run: Index, q: int, h: int,
                 fused: bool,
                 wv: list) -> None:
    """Each pixel's staged word (half h) times the tile's weights ``wv`` into the accumulators."""
    acc, staged, tp_max, tc_max = ctx.acc, ctx.staged, ctx.tp_max, ctx.tc_max
    x_base = (ki_run * ctx.row_words + q_run) * tp_max * 2
    for p in range(tp):
        x_off = ctx.slot(p, ki_c, q, h) if ki_c or q else h * tp_max + p
        if fused and p % 2 == 0 and p + 1 < tp:  # two pixels' words: one LDRD
            T.evaluate(call("mcunet_smlad4d", T.address_of(acc[p * tc_max]),
                            T.address_of(staged[x_base]), x_off * 4, wv[0], wv[1]))
            continue
        if fused and p % 2:
            continue
        if fused:
            T.evaluate(call("mcunet_smlad2", T.address_of(acc[p * tc_max]),
                            T.address_of(staged[x_base]), x_off * 4, wv[0], wv[1]))
            continue
        xv = T.bind(staged[x_base + x_off])
        for t in range(tc):
            idx = p * tc_max + t
            T.buffer_store(acc, call("mcunet_smlad", xv, wv[t], acc[idx]), [idx])


def paired_step(ctx: SimdContext, o0: Index, tp: int, tc: int, ki: Index, q_run: Index, q: int, fused: bool) -> None:
    """Word ``q_run + q`` of kernel row ki from channel-pair weights: per half, the tile's
    weights (one load, two widenings per channel pair), then each pixel's staged word.

    ``fused`` (:func:`~.schedule.fused_steps`), with a tile of one channel pair: each step is one
    asm block of ``mcunet_simd.h`` (``mcunet_widen_pair``; ``mcunet_smlad4d`` for two
    pixels, whose staged words are adjacent: one LDRD, or ``mcunet_smlad2`` for one: a
    load at a base register plus a constant offset and the instructions that use it),
    so GCC neither loads early nor spills, nor keeps an address per load. ``q_run``
    and a run-time ki go into the base, the compile-time rest into the offset.
    """
    ki_run, ki_c = (0, ki) if isinstance(ki, int) else (ki, 0)
    fused = fused and ctx.tc_max == 2 and tc == 2
    for h in range(2):
        if h and ctx.tail == 1 and isinstance(q_run, int) and q == ctx.seg // 4:
            continue  # the partial word's odd lanes are all zero
        wv = _pair_weight_lanes(ctx, o0, tc, ki_run, ki_c, q_run, q, h, fused)
        _paired_macs(ctx, tp, tc, ki_run, ki_c, q_run, q, h, fused, wv)


def paired_row(ctx: SimdContext, o0: Index, tp: int, tc: int, ki: Index) -> None:
    """Kernel row ki, all its staged words (the partial one too: its weights are padded)."""
    row_words = ctx.row_words
    if isinstance(row_words, int) and row_words <= (UNROLL_WINDOW_WORDS if ctx.flat else UNROLL_WORDS):
        for q in range(row_words):  # straight-line
            paired_step(ctx, o0, tp, tc, ki, 0, q, fused=fused_steps(ctx.kh_s, row_words))
        return
    # words per iteration: two; four for one-pixel tiles of two pairs (dense layers: their
    # C steps leave registers for it, and the loop's overhead is a tenth of it)
    step = 4 if ctx.tp_max == 1 and ctx.tc_max == 4 and isinstance(row_words, int) else 2
    with T.serial(0, row_words // step) as qq:
        for part in range(step):
            paired_step(ctx, o0, tp, tc, ki, qq * step, part, fused=True)
    if isinstance(row_words, int):
        for q in range(row_words - row_words % step, row_words):
            paired_step(ctx, o0, tp, tc, ki, 0, q, fused=True)
