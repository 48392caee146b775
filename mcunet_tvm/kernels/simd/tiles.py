"""The loop nest of a SIMD kernel: pixel tiles and channel tiles in the schedule's order, and one tile.

A tile of ``pixels x channels`` outputs starts its accumulators from the
biases, runs the reduction kernel row by kernel row (from the staged windows,
or straight from the image with scalar border rows) and requantises and
stores its outputs. Remainder pixels run one by one; remainder channels as
one partial tile where the weights come in channel pairs (it starts a pair),
else one by one.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from .config import HOIST_WORDS, UNROLL_WINDOW_WORDS
from .context import SimdContext, channel_tile_sizes, pixel_tile_sizes
from .epilogue import Requantizer, channel_bias, init_accumulators, requantizer, store_by_channel, store_outputs
from .geometry import Index
from .staging import stage_tile
from .steps import scalar_row, simd_row, staged_row, widen_weights

#: per channel tile: (biases, requantisers or None, hoisted widened weights or None)
Setup = tuple[list, list[Requantizer] | None, list | None]


def channel_setup(ctx: SimdContext, o0: Index, tc: int) -> Setup:
    """Per channel tile: bias, requantisation constants, and (short rows) widened weights."""
    biases = [channel_bias(ctx, o0, t) for t in range(tc)]
    requants = None
    if not (ctx.staged is not None and ctx.cfg.order == "pixels"):  # (staged pixel tiles: after the MACs)
        requants = [requantizer(ctx, o0, t) for t in range(tc)]
    hoisted = None
    if ctx.cfg.order == "channels" and ctx.g.kh == 1 and 0 < (ctx.seg // 4) * tc <= HOIST_WORDS:
        hoisted = [widen_weights(ctx, o0, tc, 0, q) for q in range(ctx.seg // 4)]
    return biases, requants, hoisted


def _staged_tile(ctx: SimdContext, i: Index, j0: Index, o0: Index, tp: int, tc: int,
                 requants: list[Requantizer] | None) -> None:
    """The reduction over the staged windows, then the outputs."""
    kh_s, row_words = ctx.kh_s, ctx.row_words
    if kh_s == 1 or (isinstance(row_words, int) and kh_s * row_words <= UNROLL_WINDOW_WORDS):
        for ki in range(kh_s):  # straight-line: no loop counter live beside the accumulators
            staged_row(ctx, o0, tp, tc, ki)
    else:
        with T.serial(0, kh_s) as ki:
            staged_row(ctx, o0, tp, tc, ki)
    # requantisation constants loaded after the MACs: not live (or spilled) beside the accumulators
    if ctx.cfg.order == "pixels" and ctx.cursor is None:  # channel by channel, constants loaded late
        store_by_channel(ctx, i, j0, o0, tp, tc)
    else:
        store_outputs(ctx, i, j0, o0, tp, tc, [requantizer(ctx, o0, t) for t in range(tc)]
                      if ctx.cfg.order == "pixels" else requants)


def _direct_tile(ctx: SimdContext, i: Index, j0: Index, o0: Index, tp: int, tc: int,
                 requants: list[Requantizer] | None, hoisted: list | None) -> None:
    """The reduction straight from the image, border rows tap by tap, then the outputs."""
    g = ctx.g
    with T.serial(0, g.kh) as ki:
        ih = i * g.sh + ki - g.pt
        iw0 = j0 * g.sw - g.pl
        if not ctx.padded:
            simd_row(ctx, ih, iw0, o0, tp, tc, ki, hoisted)
        else:
            with T.If(tirx.all(ih >= 0, ih < g.h)):
                with T.Then():
                    inside = tirx.all(iw0 >= 0, iw0 + (tp - 1) * g.sw + g.kw <= g.w)
                    with T.If(inside):
                        with T.Then():
                            simd_row(ctx, ih, iw0, o0, tp, tc, ki, hoisted)
                        with T.Else():
                            scalar_row(ctx, ih, iw0, o0, tp, tc, ki)
    store_outputs(ctx, i, j0, o0, tp, tc, requants)


def tile(ctx: SimdContext, i: Index, j0: Index, o0: Index, tp: int, tc: int, setup: Setup) -> None:
    """The ``tp x tc`` outputs from pixel ``(i, j0)`` and channel ``o0``."""
    biases, requants, hoisted = setup
    init_accumulators(ctx, tp, tc, biases)
    if ctx.staged is not None:
        _staged_tile(ctx, i, j0, o0, tp, tc, requants)
    else:
        _direct_tile(ctx, i, j0, o0, tp, tc, requants, hoisted)


def pixel_tiles(ctx: SimdContext, body: Callable) -> None:
    """``body(i, j0, tp)`` over every pixel tile, remainder pixels one by one."""
    g, tp_max = ctx.g, ctx.tp_max
    has_full, has_rest = pixel_tile_sizes(g, tp_max)
    full = g.ow // tp_max
    with T.serial(0, g.oh) as i:
        if has_full:
            with T.serial(0, full) as jt:
                body(i, jt * tp_max, tp_max)
        if has_rest:
            with T.serial(full * tp_max, g.ow) as j:
                body(i, j, 1)


def channel_tiles(ctx: SimdContext, body: Callable) -> None:
    """``body(o0, tc)`` over every channel tile, remainder channels one by one."""
    g, tc_max = ctx.g, ctx.tc_max
    has_full, partial, singles = channel_tile_sizes(g, tc_max, ctx.op.out_shape[-1], ctx.pairs)
    full = g.oc // tc_max
    if has_full:
        with T.serial(0, full) as ot:
            body(ot * tc_max, tc_max)
    if partial:  # one partial tile: it starts a channel pair
        body(full * tc_max, partial)
    elif singles:
        with T.serial(full * tc_max, g.oc) as o:
            body(o, 1)


def emit_tiles(ctx: SimdContext) -> None:
    """Every tile, in the schedule's order (pixel order: each pixel tile's input staged first)."""
    if ctx.cfg.order == "channels":
        def per_channel_tile(o0, tc):
            setup = channel_setup(ctx, o0, tc)
            pixel_tiles(ctx, lambda i, j0, tp: tile(ctx, i, j0, o0, tp, tc, setup))

        channel_tiles(ctx, per_channel_tile)
        return

    def per_pixel_tile(i, j0, tp):
        if ctx.staged is not None:
            stage_tile(ctx, i, j0, tp)
        channel_tiles(ctx, lambda o0, tc: tile(ctx, i, j0, o0, tp, tc, channel_setup(ctx, o0, tc)))

    pixel_tiles(ctx, per_pixel_tile)
