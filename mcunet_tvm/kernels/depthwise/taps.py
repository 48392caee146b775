"""The tap-by-tap depthwise kernel (3x3 stride 2, dilated, other strides, small images).

Per channel, the ``KH x KW`` weights sit in registers as halfword pairs (so
SMLABB / SMLABT pick a weight from the bottom or top half: a 3x3 channel's
nine weights in five registers) and the taps of a pixel are unrolled at
constant offsets from one base address. Rows and columns are split at
compile time (:func:`~.plan.interior`) into interior ranges, whose pixels run
in pairs from the folded bias with no check, and border ranges, whose pixels
check every tap (a tap outside the image contributes nothing, TFLite's
padding semantics). A small image (``plan.unrolls_small_image``) has every
pixel unrolled, so those checks are settled at compile time. In place, the
outputs go to a channel scratch and are copied over the channel afterwards
unless they may go straight over the input (``plan.writes_over_input``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ...ops import Conv2D
from ..common import OUT, SCRATCH, pack_halves
from ..requant import channel_requantizer, clamp_to_int8
from .channel import ConstArgs, Expr, Geometry, Index, KernelBase, folded_bias, i32, scaled
from .plan import ZP_TAPS_SLACK, interior, scratch_bytes, unrolls_small_image

if TYPE_CHECKING:
    from ..choice import KernelChoice


@dataclass
class TapKernel(KernelBase):
    """What the tap kernel's emitters share: :class:`~.channel.KernelBase`, the plan, the scratch."""

    taps: list[tuple[int, int]]  # (ki, kj) in row-major order
    rows: tuple[int, int]  # interior output rows [lo, hi)
    cols: tuple[int, int]  # interior output columns [lo, hi)
    small: bool  # every pixel unrolled
    scratch: Any  # in place: the channel's outputs before they are copied over the input (or None)


@dataclass
class TapChannel:
    """Channel k's values, bound once per channel."""

    k: Any
    wk: list  # the weights (doubled where the requantisation takes 2 acc), row-major
    bias_k: Any
    fast_base: Any  # the folded bias (None if no pixel takes the fast path)
    requant: Callable
    packed: list  # the weights as halfword pairs


def _channel(kt: TapKernel, k: Index) -> TapChannel:
    """Bind channel k's weights, bias, folded bias, requantisation and weight pairs."""
    op, g, doubled = kt.op, kt.g, kt.fast
    wk = [scaled(kt.args.weight[(ki * g.kw + kj) * g.c + k].astype("int32"), doubled) for ki, kj in kt.taps]
    bias_k = scaled(kt.args.bias[k], doubled)
    fast_base = None
    (row_lo, row_hi), (col_lo, col_hi) = kt.rows, kt.cols
    if kt.small or (row_hi > row_lo and col_hi > col_lo):  # some pixel takes the fast path
        fast_base = folded_bias(bias_k, wk, op.in_zp)
    requant = channel_requantizer(op, kt.fast, kt.args.mult, kt.args.rq, k, T.bind, doubled)
    # taps pair up into halfwords: SMLABB / SMLABT pick the weight from the bottom / top
    # half, so a 3x3 channel's nine weights live in five registers
    packed = [
        T.bind(pack_halves(wk[t], wk[t + 1])) if t + 1 < len(wk) else wk[t]
        for t in range(0, len(wk), 2)
    ]
    return TapChannel(k, wk, bias_k, fast_base, requant, packed)


def _store(kt: TapKernel, ch: TapChannel, i: Index, j: Index, value: Expr) -> None:
    """Output (i, j) of the channel, requantised (to the channel scratch in place)."""
    q = clamp_to_int8(ch.requant(value), kt.op.act_min, kt.op.act_max)
    if kt.scratch is not None:
        T.buffer_store(kt.scratch, q, [i * kt.g.ow + j])
    else:
        T.buffer_store(kt.out, q, [(i * kt.g.ow + j) * kt.g.c + ch.k])


def _smla(t: int, xv: Expr, ch: TapChannel, total: Expr) -> Expr:
    """Tap t's multiply-accumulate: its weight from the bottom (even t) or top half of a pair."""
    name = "mcunet_smlabb" if t % 2 == 0 else "mcunet_smlabt"
    return T.call_extern("int32", name, xv, ch.packed[t // 2], total)


def fast(kt: TapKernel, ch: TapChannel, i: Index, j: Index, pixels: int = 1) -> None:
    """``pixels`` neighbouring interior outputs at once (their windows share input loads)."""
    g, x = kt.g, kt.args.x
    for p in range(pixels):
        base = ((i * g.sh - g.pt + g.r0) * g.bw + (j + p) * g.sw - g.pl + g.c0) * g.c + ch.k
        total = ch.fast_base
        for t, (ki, kj) in enumerate(kt.taps):
            xv = x[base + (ki * g.dh * g.bw + kj * g.dw) * g.c].astype("int32")
            total = _smla(t, xv, ch, total)
        # through the accumulator buffer, so each output is requantised on its own
        T.buffer_store(kt.acc, total, [p])
    for p in range(pixels):
        _store(kt, ch, i, j + p, kt.acc[p])


def _checked_from_folded(kt: TapKernel, ch: TapChannel, i: int, j: int, inside: list[bool]) -> None:
    """A small image's border pixel (i, j known) from the folded bias: a tap outside the image
    multiplies the zero point (what padding holds): one instruction, no load."""
    g, x = kt.g, kt.args.x
    total = ch.fast_base
    for t, (ki, kj) in enumerate(kt.taps):
        ih, iw = i * g.sh - g.pt + ki * g.dh, j * g.sw - g.pl + kj * g.dw
        xv = x[g.x_index(ih, iw, ch.k)].astype("int32") if inside[t] else i32(kt.op.in_zp)
        total = _smla(t, xv, ch, total)
    T.buffer_store(kt.acc, total, [0])
    _store(kt, ch, i, j, kt.acc[0])


def checked(kt: TapKernel, ch: TapChannel, i: Index, j: Index) -> None:
    """A border output, tap by tap, each tap checked (with i, j known the checks fold away:
    outside taps cost nothing)."""
    g, x, acc = kt.g, kt.args.x, kt.acc
    inside = [kt.small and 0 <= i * g.sh - g.pt + ki * g.dh < g.h and 0 <= j * g.sw - g.pl + kj * g.dw < g.w
              for ki, kj in kt.taps]
    if kt.small and len(kt.taps) - sum(inside) < sum(inside) + ZP_TAPS_SLACK:  # few taps outside
        _checked_from_folded(kt, ch, i, j, inside)
        return
    T.buffer_store(acc, ch.bias_k, [0])
    for (ki, kj), wv in zip(kt.taps, ch.wk, strict=True):
        ih = i * g.sh - g.pt + ki * g.dh
        iw = j * g.sw - g.pl + kj * g.dw
        tap = tirx.if_then_else(
            tirx.all(ih >= 0, ih < g.h, iw >= 0, iw < g.w),
            (x[g.x_index(ih, iw, ch.k)].astype("int32") - i32(kt.op.in_zp)) * wv,
            i32(0),
        )
        T.buffer_store(acc, acc[0] + tap, [0])
    _store(kt, ch, i, j, acc[0])


def span(kt: TapKernel, lo: int, hi: int, body: Callable) -> None:
    """``body`` over [lo, hi): unrolled in small images, where a border pixel's taps
    outside the image are then dropped at compile time instead of checked."""
    if kt.small:
        for v in range(lo, hi):
            body(v)
        return
    with T.serial(lo, hi) as v:
        body(v)


def output_row(kt: TapKernel, ch: TapChannel, i: Index, interior_row: bool) -> None:
    """Output row i: border columns checked, interior ones in pairs (then an odd one) unchecked."""
    col_lo, col_hi = kt.cols
    ranges = [(0, col_lo, False), (col_lo, col_hi, True), (col_hi, kt.g.ow, False)]
    if not interior_row:
        ranges = [(0, kt.g.ow, False)]
    for lo, hi, inside in ranges:
        if inside and hi - lo >= 2:  # interior: pairs of pixels, then an odd one
            span(kt, 0, (hi - lo) // 2, lambda jp, lo=lo: fast(kt, ch, i, lo + 2 * jp, pixels=2))
            lo = hi - (hi - lo) % 2
        if hi > lo:
            span(kt, lo, hi, lambda j, inside=inside: (fast if inside else checked)(kt, ch, i, j))


def channel_body(kt: TapKernel, k: Index) -> None:
    """Channel k: its row ranges (border, interior, border), then the scratch copy in place."""
    ch = _channel(kt, k)
    row_lo, row_hi = kt.rows
    for lo, hi, inside in [(0, row_lo, False), (row_lo, row_hi, True), (row_hi, kt.g.oh, False)]:
        if hi > lo:
            span(kt, lo, hi, lambda i, inside=inside: output_row(kt, ch, i, inside))
    if kt.scratch is not None:
        with T.serial(0, kt.g.oh * kt.g.ow) as p:
            T.buffer_store(kt.out, kt.scratch[p], [p * kt.g.c + k])


def tap_kernel(op: Conv2D, choice: KernelChoice) -> tirx.PrimFunc:
    """Tap by tap in NHWC (3x3 stride 2, dilated, other strides, small images), border pixels
    checked (small images: every pixel unrolled, the checks decided at compile time)."""
    g = Geometry.of(op)
    taps = [(ki, kj) for ki in range(g.kh) for kj in range(g.kw)]
    rows = interior(g.oh, g.sh, g.dh, g.kh, g.pt, g.h)
    cols = interior(g.ow, g.sw, g.dw, g.kw, g.pl, g.w)
    small = unrolls_small_image(op, choice) and not choice.compact  # every pixel unrolled

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            args = ConstArgs.declare(g, choice.fast_requant)
            # in place, outputs go through a channel temporary unless they may be stored over the input
            scratch = T.arg(SCRATCH, T.buffer((g.oh * g.ow,), "int8")) if scratch_bytes(op, choice) else None
            out = T.arg(OUT, T.buffer((g.oh * g.ow * g.c,), "int8"))
            pairs = rows[1] > rows[0] and cols[1] - cols[0] >= 2  # interior pixels run in pairs
            acc = T.alloc_buffer((2 if pairs else 1,), "int32")  # exactly what is indexed
            kt = TapKernel(op, choice.fast_requant, g, args, out, acc, taps=taps, rows=rows, cols=cols, small=small,
                           scratch=scratch)
            with T.serial(0, g.c) as k:
                channel_body(kt, k)
    return builder.get()
