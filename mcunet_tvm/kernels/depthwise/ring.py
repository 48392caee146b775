"""The ring-of-rows depthwise kernel (stride 1, and stride 2 with 5x5 or larger kernels).

For channel k, input rows are gathered from NHWC into a ring of KH slots
padded with the input zero point, so every output pixel is an interior
one; each row is written to two slots KH apart, so a window's rows are
contiguous. Wide rows keep the ring as int16 (``plan.ring_lane_bytes``):
a word is then two neighbouring inputs, so SMLAD multiplies a pair of taps
with a packed weight pair without widening (a 3x3 kernel row of two
neighbouring stride-1 outputs: two loads and four multiply-accumulates
for six MACs); narrow ones as int8, a word widened with SXTB16 into the
tap pairs (t, t + 2). Stride 2: each output reads its own words. The
input zero point is folded into one per-channel constant (padding holds
the zero point, so it contributes nothing). Which word and lane each tap
comes from is planned at compile time (:func:`~.plan.row_plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ...ops import Conv2D
from ..common import NO_PRESCHEDULE, OUT, SCRATCH, pack_halves
from ..requant import channel_requantizer, clamp_to_int8
from .channel import ConstArgs, Expr, Geometry, Index, KernelBase, folded_bias, i32, scaled
from .plan import PlanItem, one_pair_per_iteration, ring_lane_bytes, row_buffer_shape, row_plan, scratch_bytes

if TYPE_CHECKING:
    from ..choice import KernelChoice


@dataclass
class RingKernel(KernelBase):
    """What the ring kernel's emitters share: :class:`~.channel.KernelBase`, the ring's layout and plans."""

    lane_bytes: int  # bytes per ring element (``plan.ring_lane_bytes``)
    row_len: int  # elements per ring row
    row_words: int  # words per ring row
    ring_type: str
    plans: list[list[PlanItem]]  # per output of a pair: its taps' words and lanes
    one_pair: bool  # one output pair per loop iteration (:func:`~.plan.one_pair_per_iteration`)
    ring: Any
    zp_lane: Any  # the zero point as a ring element


@dataclass
class RingChannel:
    """Channel k's values, bound once per channel, and its weight registers (bound on first use)."""

    k: Any
    wk: list[list]  # [ki][kj] weights (doubled where the requantisation takes 2 acc)
    base: Any  # the folded bias
    requant: Callable
    pairs: list[tuple[int, int]]  # the weight pairs the plans multiply
    packed: dict[tuple[int, int, int], Any] = field(default_factory=dict)


def _channel(rk: RingKernel, k: Index) -> RingChannel:
    """Bind channel k's weights, folded bias and requantisation."""
    op, g, doubled = rk.op, rk.g, rk.fast
    wk = [[scaled(rk.args.weight[(ki * g.kw + kj) * g.c + k].astype("int32"), doubled) for kj in range(g.kw)]
          for ki in range(g.kh)]
    base = folded_bias(scaled(rk.args.bias[k], doubled), [v for row in wk for v in row], op.in_zp)
    requant = channel_requantizer(op, rk.fast, rk.args.mult, rk.args.rq, k, T.bind, doubled)
    # the weight pairs the plans multiply; a lone tap takes its weight from the half of one
    pairs = sorted({(lo, hi) for plan in rk.plans for _, _, lo, hi in plan if lo >= 0 and hi >= 0})
    return RingChannel(k, wk, base, requant, pairs)


def weight_reg(ch: RingChannel, ki: int, lo: int, hi: int) -> Expr:
    """Taps (lo, hi) of kernel row ki in the bottom / top half of a register (-1: weight 0)."""
    if (ki, lo, hi) not in ch.packed:
        ch.packed[(ki, lo, hi)] = T.bind(pack_halves(ch.wk[ki][lo] if lo >= 0 else i32(0),
                                                     ch.wk[ki][hi] if hi >= 0 else None))
    return ch.packed[(ki, lo, hi)]


def lone_weight(ch: RingChannel, ki: int, t: int) -> tuple[Any, bool]:
    """(register, top half?) holding weight t of kernel row ki."""
    for lo, hi in ch.pairs:
        if t in (lo, hi):
            return weight_reg(ch, ki, lo, hi), t == hi
    return weight_reg(ch, ki, t, -1), False


def pad_ring(rk: RingKernel) -> None:
    """Padding columns and slack hold the zero point for the whole call."""
    g = rk.g
    for slot in range(2 * g.kh):
        with T.serial(0, g.pl) as q:
            T.buffer_store(rk.ring, rk.zp_lane, [slot * rk.row_len + q])
        with T.serial(g.pl + g.w, rk.row_len) as q:
            T.buffer_store(rk.ring, rk.zp_lane, [slot * rk.row_len + q])


def load_row(rk: RingKernel, ch: RingChannel, r: Index, slot: Index) -> None:
    """Input row r of channel k into ``slot`` and ``slot + KH`` (the zero point outside the image)."""
    g, ring = rk.g, rk.ring
    dst = slot * rk.row_len + g.pl
    twin = (slot + g.kh) * rk.row_len + g.pl
    if isinstance(r, int) and not 0 <= r < g.h:
        with T.serial(0, g.w) as q:
            T.buffer_store(ring, rk.zp_lane, [dst + q])
            T.buffer_store(ring, rk.zp_lane, [twin + q])
        return

    def gather(q):
        v = T.bind(rk.args.x[g.x_index(r, q, ch.k)].astype(rk.ring_type))
        T.buffer_store(ring, v, [dst + q])
        T.buffer_store(ring, v, [twin + q])

    if g.w >= 4:  # four inputs per iteration: a quarter of the loop overhead
        with T.serial(0, g.w // 4) as qq:
            for u in range(4):
                gather(qq * 4 + u)
    for q in range(g.w - g.w % 4, g.w):
        gather(q)


def mac(rk: RingKernel, ch: RingChannel, ki: int, p: int, word: Expr, lo: int, hi: int) -> None:
    """Taps lo / hi (bottom / top half of ``word``) of kernel row ki into output p."""
    acc = rk.acc
    if lo >= 0 and hi >= 0:
        value = T.call_extern("int32", "mcunet_smlad", word, weight_reg(ch, ki, lo, hi), acc[p])
    else:
        reg, top = lone_weight(ch, ki, max(lo, hi))
        name = "mcunet_smla" + ("t" if hi >= 0 else "b") + ("t" if top else "b")
        value = T.call_extern("int32", name, word, reg, acc[p])
    T.buffer_store(acc, value, [p])


def _kernel_row(rk: RingKernel, ch: RingChannel, row: Index, at: Index, ki: int, count: int) -> None:
    """Kernel row ki of ``count`` outputs: each ring word read once, each lane widened once."""
    lane_bytes = rk.lane_bytes
    words, lanes = {}, {}
    for p in range(count):
        for word, lane, lo, hi in rk.plans[p]:
            if word not in words:  # (an aligned word of the int16 ring)
                addr = T.address_of(rk.ring[((row + word) * 4 + at) // lane_bytes])
                read = "mcunet_read_s16x2" if lane_bytes == 2 else "mcunet_read_s8x4"
                words[word] = T.bind(T.call_extern("int32", read, addr))
            if (word, lane) not in lanes:
                lanes[(word, lane)] = words[word] if lane_bytes == 2 else T.bind(
                    T.call_extern("int32", "mcunet_sxtb16_ror8" if lane else "mcunet_sxtb16", words[word]))
            mac(rk, ch, ki, p, lanes[(word, lane)], lo, hi)


def _store(rk: RingKernel, ch: RingChannel, i: Index, j: Index, value: Expr) -> None:
    """Output (i, j) of the channel, requantised."""
    g = rk.g
    q = clamp_to_int8(ch.requant(value), rk.op.act_min, rk.op.act_max)
    T.buffer_store(rk.out, q, [(i * g.ow + j) * g.c + ch.k])


def outputs(rk: RingKernel, ch: RingChannel, i: Index, j: Index, rows: list, count: int) -> None:
    """``count`` (1 or 2) outputs of row i from column j (even); ``rows[ki]`` = ring words.

    The pair's words start at element ``j * stride``: stride 1 outputs share them."""
    g = rk.g
    for p in range(count):
        T.buffer_store(rk.acc, ch.base, [p])
    at = j * g.sh * rk.lane_bytes  # bytes
    for ki in range(g.kh):
        _kernel_row(rk, ch, rows[ki], at, ki, count)
    for p in range(count):
        _store(rk, ch, i, j + p, rk.acc[p])


def _add_rows(rk: RingKernel, ch: RingChannel, i: Index, inside: bool) -> None:
    """The input rows output row i adds to the window (past the image: zero point rows)."""
    g, stride = rk.g, rk.g.sh
    for u in range(stride):
        r = i * stride - g.pt + g.kh - stride + u
        slot = tirx.floormod(i * stride + g.kh - stride + u, g.kh)
        if inside:
            load_row(rk, ch, r, slot)
        else:
            with T.If(r < g.h):
                with T.Then():
                    load_row(rk, ch, r, slot)
                with T.Else():
                    load_row(rk, ch, g.h, slot)  # any row past the image: zeros


def output_row(rk: RingKernel, ch: RingChannel, i: Index, inside: bool) -> None:
    """Output row i: its new input rows into the ring, then its outputs pair by pair."""
    g, ow = rk.g, rk.g.ow
    _add_rows(rk, ch, i, inside)
    # the window's rows, oldest first, are contiguous from slot (i * stride) mod KH
    first = T.bind(tirx.floormod(i * g.sh, g.kh) * i32(rk.row_words))
    rows = [first + ki * rk.row_words for ki in range(g.kh)]
    if rk.one_pair and ow >= 2:  # one pair per iteration: one copy of the pair's code
        with T.serial(0, ow // 2) as jp:
            outputs(rk, ch, i, jp * 2, rows, 2)
    if not rk.one_pair and ow >= 4:  # two pairs per iteration: half the loop overhead
        with T.serial(0, ow // 4) as jq:
            outputs(rk, ch, i, jq * 4, rows, 2)
            outputs(rk, ch, i, jq * 4 + 2, rows, 2)
    if not rk.one_pair and ow % 4 >= 2:
        outputs(rk, ch, i, ow - ow % 4, rows, 2)
    if ow % 2:
        outputs(rk, ch, i, ow - 1, rows, 1)


def channel_body(rk: RingKernel, k: Index) -> None:
    """Channel k: the rows above output row 0 into the ring, then every output row."""
    g, stride = rk.g, rk.g.sh
    ch = _channel(rk, k)
    # output row i reads input rows i*stride - pt + ki; row r lives in slot (r + pt) mod KH
    for r in range(-g.pt, -g.pt + g.kh - stride):  # the rows above output row 0
        load_row(rk, ch, r, (r + g.pt) % g.kh)
    last_in = (g.h + g.pt - g.kh) // stride + 1  # output rows from here on load some padding rows
    for lo, hi, inside in [(0, min(last_in, g.oh), True), (max(last_in, 0), g.oh, False)]:
        if hi <= lo:
            continue
        with T.serial(lo, hi) as i:
            output_row(rk, ch, i, inside)


def row_kernel(op: Conv2D, choice: KernelChoice) -> tirx.PrimFunc:
    """Depthwise, stride 1 or 2: each channel through a ring of padded input rows (TinyEngine's plane).

    See the module docstring for the ring's layout; ``choice.compact``: one output pair per loop iteration.
    """
    g = Geometry.of(op)
    _, row_bytes = row_buffer_shape(op, choice)
    lane_bytes = ring_lane_bytes(op, choice)
    ring_type = "int16" if lane_bytes == 2 else "int8"
    # output p of a pair starts at element p * stride of the pair's words
    plans = [row_plan(g.kw, p * g.sh, lane_bytes) for p in range(2)]

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            args = ConstArgs.declare(g, choice.fast_requant)
            ring = T.arg(SCRATCH, T.buffer((scratch_bytes(op, choice) // lane_bytes,), ring_type))
            out = T.arg(OUT, T.buffer((g.oh * g.ow * g.c,), "int8"))
            acc = T.alloc_buffer((2,), "int32")
            rk = RingKernel(op, choice.fast_requant, g, args, out, acc, lane_bytes=lane_bytes,
                            row_len=row_bytes // lane_bytes, row_words=row_bytes // 4, ring_type=ring_type,
                            plans=plans, one_pair=one_pair_per_iteration(op, choice.compact), ring=ring,
                            zp_lane=tirx.const(op.in_zp, ring_type))
            pad_ring(rk)
            with T.serial(0, g.c) as k:
                channel_body(rk, k)
    # straight-line multiply-accumulates over many live registers: no pre-allocation scheduling
    # (measured 2-4 % fewer instructions; the tap kernel measured 15-20 % more without it)
    return builder.get().with_attr(NO_PRESCHEDULE, True)
