"""Depthwise conv2d (NHWC, int8), out of place or in place, with fused requantisation.

Two kernels, both channel by channel with the input zero point folded into
one per-channel constant (``bias - zp * sum(w)``):

- stride 1, and stride 2 with 5x5 or larger kernels (:func:`_row_kernel`,
  ``Conv2D.row_buffer_shape``): the channel's input rows pass through a ring
  of rows padded with the zero point (an argument: the planner places it in
  the arena), so every output is an interior one, and SMLAD multiplies pairs
  of taps at once (an int16 ring for wide rows: neighbouring taps, no
  widening; else int8: taps (t, t + 2) after SXTB16);
- otherwise (3x3 stride 2, dilated, small images; :func:`_tap_kernel`): the
  ``KH x KW`` weights in registers and the taps of a pixel unrolled at
  constant offsets from one base address; only border pixels, found at
  compile time per row and column range, check every tap (a tap outside the
  image contributes nothing, TFLite's padding semantics); a small image
  (``Conv2D.unrolls_small_image``) has every pixel unrolled, so those checks
  are settled at compile time.

In place (MCUNet, ``Conv2D.inplace``): in NHWC an output element of channel
c lands on an input byte of channel c (both at index = c mod C), so with the
output at the input's address only channel c is at risk. The row kernel
writes output row i after the ring holds every input row up to i, and
gathers only later rows, so it writes straight over the input. So does the
tap kernel where every input pixel is last read by an output that comes no
later in row-major order (``Conv2D.writes_over_input``, checked at compile
time: strided layers); otherwise it writes the channel to a scratch buffer of
OH x OW bytes and copies it over the channel afterwards. Written with TVM's TIR IRBuilder because the
loop structure (rings, register blocking, split border ranges) is not a TE
compute.
"""

from __future__ import annotations

import dataclasses
import math

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D
from .common import NO_PRESCHEDULE, OUT, SCRATCH, pack_halves
from .requant import channel_requantizer, clamp_to_int8, requant_args


def _i32(v: int):
    return tirx.const(v, "int32")


def _folded_bias(bias_k, taps: list, zp: int):
    """``bias - zp * sum(w)``: the input zero point folded out of every tap of a channel
    (``bias_k`` and ``taps`` as the kernel uses them, see :func:`_scaled`)."""
    total = taps[0]
    for v in taps[1:]:
        total = total + v
    return T.bind(bias_k - _i32(zp) * total)


def _scaled(value, doubled: bool):
    """A weight or bias as the kernel uses it: doubled (a weight still fits a 16-bit lane) where the
    requantisation takes ``2 acc`` (``requant.fast_requantize``): no doubling per output."""
    return T.bind(value * _i32(2) if doubled else value)


def _interior(n_out: int, stride: int, dil: int, k: int, pad: int, size: int) -> tuple[int, int]:
    """[lo, hi): output positions whose window lies inside ``size`` input positions."""
    inside = [o for o in range(n_out) if o * stride - pad >= 0 and o * stride - pad + (k - 1) * dil < size]
    if not inside:
        return 0, 0
    return inside[0], inside[-1] + 1


#: a small image's border pixel starts from the folded bias (outside taps: one multiply by the zero
#: point each) unless its outside taps outnumber its inside ones by this many (measured on the M7)
ZP_TAPS_SLACK = 4

#: PrimFunc attribute of a depthwise kernel generated in its compact form (``--optimize size``)
COMPACT = "mcunet.compact"


def _one_pair_per_iteration(op: Conv2D, compact: bool) -> bool:
    """Output pairs per loop iteration of the row kernel: two for 3x3 kernels (measured fastest),
    one for 5x5 and larger (also measured fastest: fewer registers live; half the code) or compact."""
    return compact or min(op.kernel) >= 5


def compact_form(func: tirx.PrimFunc, op: Conv2D) -> tirx.PrimFunc | None:
    """The compact form of depthwise kernel ``func`` (``op``) if it has one and ``func`` is not it:
    3x3 row kernels with one output pair per iteration; small images with their pixels in loops."""
    if not op.depthwise or (func.attrs is not None and COMPACT in func.attrs):
        return None
    if op.unrolls_small_image():  # a small image: the ring where it applies, else the pixels in loops
        return depthwise_conv2d(dataclasses.replace(op, unroll_small_image=False), compact=True)
    if not op.row_buffer_shape():
        return None
    return depthwise_conv2d(op, compact=True) if not _one_pair_per_iteration(op, False) else None


def depthwise_conv2d(op: Conv2D, compact: bool = False) -> tirx.PrimFunc:
    """The depthwise kernel for ``op``: the row kernel where ``op.row_buffer_shape()`` allows, else tap by tap.

    ``compact`` (``--optimize size``): the row kernel computes one pair of
    outputs per loop iteration also for 3x3 kernels (which are fastest with
    two pairs per iteration and a separate tail pair: about twice the code);
    the tap kernel keeps small images' pixels in loops.
    """
    if op.inplace and op.windows:
        raise ValueError("an in-place depthwise conv reads a whole buffer, not a window")
    if op.row_buffer_shape():
        return _row_kernel(op, compact)
    return _tap_kernel(op, compact)


def _tap_kernel(op: Conv2D, compact: bool = False) -> tirx.PrimFunc:
    """Tap by tap in NHWC (3x3 stride 2, dilated, other strides, small images), border pixels
    checked (small images: every pixel unrolled, the checks decided at compile time)."""
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
    small = op.unrolls_small_image() and not compact  # every pixel unrolled

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(buf),), "int8"))
            weight = T.arg("p1_w", T.buffer((kh * kw * c,), "int8"))
            bias = T.arg("p2_bias", T.buffer((c,), "int32"))
            mult = T.arg("p3_mult", T.buffer((c,), "int32"))
            rq_shape, rq_name = requant_args(c, op.fast_requant)
            rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
            # in place, outputs go through a channel temporary unless they may be stored over the input
            scratch = T.arg(SCRATCH, T.buffer((oh * ow,), "int8")) if op.scratch_bytes() else None
            out = T.arg(OUT, T.buffer((oh * ow * c,), "int8"))
            acc = T.alloc_buffer((2,), "int32")

            doubled = op.fast_requant
            with T.serial(0, c) as k:
                wk = [_scaled(weight[(ki * kw + kj) * c + k].astype("int32"), doubled) for ki, kj in taps]
                bias_k = _scaled(bias[k], doubled)
                fast_base = None
                if small or (row_hi > row_lo and col_hi > col_lo):  # some pixel takes the fast path
                    fast_base = _folded_bias(bias_k, wk, zp)
                requant = channel_requantizer(op, mult, rq, k, T.bind, doubled)

                def store(i, j, value):
                    q = clamp_to_int8(requant(value), op.act_min, op.act_max)
                    if scratch is not None:
                        T.buffer_store(scratch, q, [i * ow + j])
                    else:
                        T.buffer_store(out, q, [(i * ow + j) * c + k])

                # taps pair up into halfwords: SMLABB / SMLABT pick the weight from the bottom / top
                # half, so a 3x3 channel's nine weights live in five registers
                packed = [
                    T.bind(pack_halves(wk[t], wk[t + 1])) if t + 1 < len(wk) else wk[t]
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
                    inside = [small and 0 <= i * sh - pt + ki * dh < h and 0 <= j * sw - pl + kj * dw < w
                              for ki, kj in taps]
                    if small and len(taps) - sum(inside) < sum(inside) + ZP_TAPS_SLACK:
                        # i, j known, few taps outside: from the folded bias, a tap outside the image
                        # multiplies the zero point (what padding holds): one instruction, no load
                        total = fast_base
                        for t, (ki, kj) in enumerate(taps):
                            ih, iw = i * sh - pt + ki * dh, j * sw - pl + kj * dw
                            xv = x[((ih + r0) * bw + iw + c0) * c + k].astype("int32") if inside[t] else _i32(zp)
                            name = "mcunet_smlabb" if t % 2 == 0 else "mcunet_smlabt"
                            total = T.call_extern("int32", name, xv, packed[t // 2], total)
                        T.buffer_store(acc, total, [0])
                        store(i, j, acc[0])
                        return
                    # otherwise tap by tap, checked (with i, j known the checks fold away: outside taps
                    # cost nothing)
                    T.buffer_store(acc, bias_k, [0])
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

                def span(lo: int, hi: int, body):
                    """``body`` over [lo, hi): unrolled in small images, where a border pixel's taps
                    outside the image are then dropped at compile time instead of checked."""
                    if small:
                        for v in range(lo, hi):
                            body(v)
                        return
                    with T.serial(lo, hi) as v:
                        body(v)

                def row(i, interior_row: bool):
                    ranges = [(0, col_lo, False), (col_lo, col_hi, True), (col_hi, ow, False)]
                    if not interior_row:
                        ranges = [(0, ow, False)]
                    for lo, hi, inside in ranges:
                        if inside and hi - lo >= 2:  # interior: pairs of pixels, then an odd one
                            span(0, (hi - lo) // 2, lambda jp, lo=lo: fast(i, lo + 2 * jp, pixels=2))
                            lo = hi - (hi - lo) % 2
                        if hi > lo:
                            span(lo, hi, lambda j, inside=inside: (fast if inside else checked)(i, j))

                for lo, hi, inside in [(0, row_lo, False), (row_lo, row_hi, True), (row_hi, oh, False)]:
                    if hi > lo:
                        span(lo, hi, lambda i, inside=inside: row(i, inside))
                if scratch is not None:
                    with T.serial(0, oh * ow) as p:
                        T.buffer_store(out, scratch[p], [p * c + k])
    func = builder.get().with_attr("mcunet.op", op.to_json())
    return func.with_attr(COMPACT, True) if compact else func


def _row_plan(kw: int, first: int, lane_bytes: int) -> list[tuple[int, int, int, int]]:
    """How an output whose first tap is element ``first`` of a ring segment takes its ``kw`` taps.

    Returns (word, lane register, tap in the bottom half or -1, tap in the top
    half or -1) items. An int16 ring (``lane_bytes`` 2) holds two taps per
    word, used as they are (lane register 0). An int8 ring holds four:
    SXTB16 puts bytes 0 / 2 of a word in the bottom / top halves of lane
    register 0 and, rotated, bytes 1 / 3 in lane register 1. Two taps in one
    lane register are one SMLAD against a weight pair; a lone tap is one
    16x16 multiply-accumulate (SMLAxy) against a half of a weight register.
    """
    per_word = 4 // lane_bytes
    halves: dict[tuple[int, int], list[int]] = {}
    for t in range(kw):
        pos = first + t
        lane, half = (pos % 2, (pos % 4) // 2) if lane_bytes == 1 else (0, pos % 2)
        halves.setdefault((pos // per_word, lane), [-1, -1])[half] = t
    return [(word, lane, lo, hi) for (word, lane), (lo, hi) in sorted(halves.items())]


def _row_kernel(op: Conv2D, compact: bool = False) -> tirx.PrimFunc:
    """Depthwise, stride 1 or 2: each channel through a ring of padded input rows (TinyEngine's plane).

    For channel k, input rows are gathered from NHWC into a ring of KH slots
    padded with the input zero point, so every output pixel is an interior
    one; each row is written to two slots KH apart, so a window's rows are
    contiguous. Wide rows keep the ring as int16 (``Conv2D.ring_lane_bytes``):
    a word is then two neighbouring inputs, so SMLAD multiplies a pair of taps
    with a packed weight pair without widening (a 3x3 kernel row of two
    neighbouring stride-1 outputs: two loads and four multiply-accumulates
    for six MACs); narrow ones as int8, a word widened with SXTB16 into the
    tap pairs (t, t + 2). Stride 2: each output reads its own words. The
    input zero point is folded into one per-channel constant (padding holds
    the zero point, so it contributes nothing).
    """
    _, h, w, c = op.in_shape
    _, oh, ow, _ = op.out_shape
    kh, kw = op.kernel
    stride = op.strides[0]
    pt, pl, _, _ = op.padding
    win = op.window(0)
    buf = op.input_buffer_shape(0, op.in_shape)
    r0, c0 = (win[0], win[1]) if win else (0, 0)
    bw = buf[2]
    _, row_bytes = op.row_buffer_shape()
    lane_bytes = op.ring_lane_bytes()
    row_len, row_words = row_bytes // lane_bytes, row_bytes // 4  # elements, words per ring row
    ring_type = "int16" if lane_bytes == 2 else "int8"
    zp = op.in_zp
    # output p of a pair starts at element p * stride of the pair's words
    plans = [_row_plan(kw, p * stride, lane_bytes) for p in range(2)]
    one_pair = _one_pair_per_iteration(op, compact)

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(buf),), "int8"))
            weight = T.arg("p1_w", T.buffer((kh * kw * c,), "int8"))
            bias = T.arg("p2_bias", T.buffer((c,), "int32"))
            mult = T.arg("p3_mult", T.buffer((c,), "int32"))
            rq_shape, rq_name = requant_args(c, op.fast_requant)
            rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
            ring = T.arg(SCRATCH, T.buffer((op.scratch_bytes() // lane_bytes,), ring_type))
            out = T.arg(OUT, T.buffer((oh * ow * c,), "int8"))
            acc = T.alloc_buffer((2,), "int32")
            zp_lane = tirx.const(zp, ring_type)

            # padding columns and slack hold the zero point for the whole call
            for slot in range(2 * kh):
                with T.serial(0, pl) as q:
                    T.buffer_store(ring, zp_lane, [slot * row_len + q])
                with T.serial(pl + w, row_len) as q:
                    T.buffer_store(ring, zp_lane, [slot * row_len + q])

            doubled = op.fast_requant
            with T.serial(0, c) as k:
                wk = [[_scaled(weight[(ki * kw + kj) * c + k].astype("int32"), doubled) for kj in range(kw)]
                      for ki in range(kh)]
                base = _folded_bias(_scaled(bias[k], doubled), [v for row in wk for v in row], zp)
                requant = channel_requantizer(op, mult, rq, k, T.bind, doubled)
                packed: dict[tuple[int, int, int], object] = {}

                def weight_reg(ki, lo, hi):
                    """Taps (lo, hi) of kernel row ki in the bottom / top half of a register (-1: weight 0)."""
                    if (ki, lo, hi) not in packed:
                        packed[(ki, lo, hi)] = T.bind(pack_halves(wk[ki][lo] if lo >= 0 else _i32(0),
                                                                  wk[ki][hi] if hi >= 0 else None))
                    return packed[(ki, lo, hi)]

                # the weight pairs the plans multiply; a lone tap takes its weight from the half of one
                pairs = sorted({(lo, hi) for plan in plans for _, _, lo, hi in plan if lo >= 0 and hi >= 0})

                def lone_weight(ki, t):
                    """(register, top half?) holding weight t of kernel row ki."""
                    for lo, hi in pairs:
                        if t in (lo, hi):
                            return weight_reg(ki, lo, hi), t == hi
                    return weight_reg(ki, t, -1), False

                def load_row(r, slot):
                    """Input row r of channel k into ``slot`` and ``slot + KH`` (the zero point outside the image)."""
                    dst = slot * row_len + pl
                    twin = (slot + kh) * row_len + pl
                    if isinstance(r, int) and not 0 <= r < h:
                        with T.serial(0, w) as q:
                            T.buffer_store(ring, zp_lane, [dst + q])
                            T.buffer_store(ring, zp_lane, [twin + q])
                        return

                    def gather(q):
                        v = T.bind(x[((r + r0) * bw + q + c0) * c + k].astype(ring_type))
                        T.buffer_store(ring, v, [dst + q])
                        T.buffer_store(ring, v, [twin + q])

                    if w >= 4:  # four inputs per iteration: a quarter of the loop overhead
                        with T.serial(0, w // 4) as qq:
                            for u in range(4):
                                gather(qq * 4 + u)
                    for q in range(w - w % 4, w):
                        gather(q)

                def store(i, j, value):
                    T.buffer_store(out, clamp_to_int8(requant(value), op.act_min, op.act_max), [(i * ow + j) * c + k])

                def outputs(i, j, rows, count):
                    """``count`` (1 or 2) outputs of row i from column j (even); ``rows[ki]`` = ring words.

                    The pair's words start at element ``j * stride``: stride 1 outputs share them."""
                    for p in range(count):
                        T.buffer_store(acc, base, [p])
                    at = j * stride * lane_bytes  # bytes
                    for ki in range(kh):
                        words, lanes = {}, {}
                        for p in range(count):
                            for word, lane, lo, hi in plans[p]:
                                if word not in words:  # (an aligned word of the int16 ring)
                                    addr = T.address_of(ring[((rows[ki] + word) * 4 + at) // lane_bytes])
                                    read = "mcunet_read_s16x2" if lane_bytes == 2 else "mcunet_read_s8x4"
                                    words[word] = T.bind(T.call_extern("int32", read, addr))
                                if (word, lane) not in lanes:
                                    lanes[(word, lane)] = words[word] if lane_bytes == 2 else T.bind(
                                        T.call_extern("int32", "mcunet_sxtb16_ror8" if lane else "mcunet_sxtb16",
                                                      words[word]))
                                mac(ki, p, lanes[(word, lane)], lo, hi)
                    for p in range(count):
                        store(i, j + p, acc[p])

                def mac(ki, p, word, lo, hi):
                    """Taps lo / hi (bottom / top half of ``word``) of kernel row ki into output p."""
                    if lo >= 0 and hi >= 0:
                        value = T.call_extern("int32", "mcunet_smlad", word, weight_reg(ki, lo, hi), acc[p])
                    else:
                        reg, top = lone_weight(ki, max(lo, hi))
                        name = "mcunet_smla" + ("t" if hi >= 0 else "b") + ("t" if top else "b")
                        value = T.call_extern("int32", name, word, reg, acc[p])
                    T.buffer_store(acc, value, [p])

                # output row i reads input rows i*stride - pt + ki; row r lives in slot (r + pt) mod KH
                for r in range(-pt, -pt + kh - stride):  # the rows above output row 0
                    load_row(r, (r + pt) % kh)
                last_in = (h + pt - kh) // stride + 1  # output rows from here on load some padding rows
                for lo, hi, inside in [(0, min(last_in, oh), True), (max(last_in, 0), oh, False)]:
                    if hi <= lo:
                        continue
                    with T.serial(lo, hi) as i:
                        for u in range(stride):  # the rows this output row adds to the window
                            r = i * stride - pt + kh - stride + u
                            slot = tirx.floormod(i * stride + kh - stride + u, kh)
                            if inside:
                                load_row(r, slot)
                            else:
                                with T.If(r < h):
                                    with T.Then():
                                        load_row(r, slot)
                                    with T.Else():
                                        load_row(h, slot)  # any row past the image: zeros
                        # the window's rows, oldest first, are contiguous from slot (i * stride) mod KH
                        first = T.bind(tirx.floormod(i * stride, kh) * _i32(row_words))
                        rows = [first + ki * row_words for ki in range(kh)]
                        if one_pair and ow >= 2:  # one pair per iteration: one copy of the pair's code
                            with T.serial(0, ow // 2) as jp:
                                outputs(i, jp * 2, rows, 2)
                        if not one_pair and ow >= 4:  # two pairs per iteration: half the loop overhead
                            with T.serial(0, ow // 4) as jq:
                                outputs(i, jq * 4, rows, 2)
                                outputs(i, jq * 4 + 2, rows, 2)
                        if not one_pair and ow % 4 >= 2:
                            outputs(i, ow - ow % 4, rows, 2)
                        if ow % 2:
                            outputs(i, ow - 1, rows, 1)
    # straight-line multiply-accumulates over many live registers: no pre-allocation scheduling
    # (measured 2-4 % fewer instructions; the tap kernel measured 15-20 % more without it)
    func = builder.get().with_attr("mcunet.op", op.to_json()).with_attr(NO_PRESCHEDULE, True)
    return func.with_attr(COMPACT, True) if compact else func
