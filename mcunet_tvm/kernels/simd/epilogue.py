"""The tile's prologue and epilogue: accumulators from the bias, fused requantisation, int8 stores.

Channel constants come from the separate bias / multiplier / shift arrays,
or from the channel-pair records (:func:`~.schedule.channel_records`: one
pointer walks them); staged pixel-order tiles load each channel's
requantisation constants only after the MACs, channel by channel
(:func:`store_by_channel`), so they are not live (or spilled) beside the
accumulators.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..requant import channel_requantizer, clamp_to_int8, fast_requantize
from .context import SimdContext
from .geometry import Expr, Index

#: a channel's requantisation of an accumulator, its constants bound
Requantizer = Callable[[object], object]


def channel_bias(ctx: SimdContext, o0: Index, t: int) -> Expr:
    """The bias of channel ``o0 + t``, bound (doubled with the staged input)."""
    if ctx.records:  # doubled at compile time where the kernel is
        return T.bind(ctx.wt[ctx.record_word(o0, t, 0)])
    return T.bind(ctx.scaled(ctx.bias[o0 + t]))


def requantizer(ctx: SimdContext, o0: Index, t: int) -> Requantizer:
    """Output channel ``o0 + t`` 's requantisation, its constants bound once."""
    if ctx.records:
        m, e, r = (T.bind(ctx.wt[ctx.record_word(o0, t, k)]) for k in (1, 2, 3))
        return lambda acc: fast_requantize(acc, m, e, r, ctx.doubled)
    return channel_requantizer(ctx.op, ctx.fast, ctx.mult, ctx.rq, o0 + t, T.bind, ctx.doubled)


def init_accumulators(ctx: SimdContext, tp: int, tc: int, biases: list) -> None:
    """Every accumulator of the tile starts from its channel's bias."""
    for p in range(tp):
        for t in range(tc):
            T.buffer_store(ctx.acc, biases[t], [p * ctx.tc_max + t])


def store_by_channel(ctx: SimdContext, i: Index, j0: Index, o0: Index, tp: int, tc: int) -> None:
    """The tile's outputs channel by channel, each channel's constants loaded just before
    its outputs: accumulators already stored free the registers the next channel needs."""
    g = ctx.g
    for t in range(tc):
        requant = requantizer(ctx, o0, t)
        for p in range(tp):
            value = requant(ctx.acc[p * ctx.tc_max + t])
            T.buffer_store(ctx.out, clamp_to_int8(value, ctx.act_min, ctx.act_max),
                           [(i * g.ow + j0 + p) * g.oc + o0 + t])


def store_outputs(ctx: SimdContext, i: Index, j0: Index, o0: Index, tp: int, tc: int,
                  requants: list[Requantizer]) -> None:
    """The tile's outputs pixel by pixel (a run-time channel count: through the output cursor)."""
    g, cursor = ctx.g, ctx.cursor
    if cursor is not None:
        T.buffer_store(cursor, (i * g.ow + j0) * g.oc + o0, [0])
    for p in range(tp):
        if cursor is not None and p:
            T.buffer_store(cursor, cursor[0] + g.oc, [0])
        for t in range(tc):
            value = requants[t](ctx.acc[p * ctx.tc_max + t])
            at = cursor[0] + t if cursor is not None else (i * g.ow + j0 + p) * g.oc + o0 + t
            T.buffer_store(ctx.out, clamp_to_int8(value, ctx.act_min, ctx.act_max), [at])
