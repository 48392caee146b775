"""The state every SIMD emitter reads: one :class:`SimdContext` per kernel, made by :func:`declare`.

:func:`declare` runs inside the IRBuilder's ``prim_func`` and declares the
kernel's parameters in their fixed order (the layer's run-time scalars of a
shape-generic kernel, the input, the weights or channel-pair records, the
constant arrays, the staging scratch, the output) and its local buffers (the
tile's accumulators, a channel pair's widened weights, an output cursor), and
records the reduction layout derived from the schedule (segments per pixel,
words per segment, the partial word).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ...ops import Conv2D, OpDesc
from ..common import OUT, SCRATCH, ScalarArgs
from ..requant import requant_args
from .config import SimdConfig
from .geometry import Expr, Geometry, Index
from .layout import record_word, record_words, staged_slot
from .schedule import (
    channel_records,
    doubled_input,
    flat_window,
    generic_reduction,
    paired_weights,
    record_pairs,
    staged_input_bytes,
)

#: a TIR buffer of the IRBuilder (or None where the kernel has none)
Buffer = tirx.Buffer | None


def i32(v: int) -> Expr:
    """An int32 constant."""
    return tirx.const(v, "int32")


def call(name: str, *args: Expr | int) -> Expr:
    """An int32 ``call_extern`` to a primitive of ``mcunet_simd.h``."""
    return T.call_extern("int32", name, *args)


@dataclass
class SimdContext:
    """What the emitters of one SIMD kernel share (what ``_build``'s closures captured)."""

    op: OpDesc
    fast: bool  # the fast requantisation (``KernelChoice.fast_requant``)
    g: Geometry  # (shape-generic kernels: some sizes are run-time variables)
    cfg: SimdConfig
    padded: bool  # some window crosses the image border
    pairs: bool  # weights in channel-pair order (:func:`~.schedule.paired_weights`)
    records: bool  # weights and constants in channel-pair records (:func:`~.schedule.channel_records`)
    flat: bool  # the whole window staged as one segment (:func:`~.schedule.flat_window`)
    kh_s: int  # staged segments per pixel: kernel rows, or 1 for the whole window
    seg: Index  # bytes per segment
    tail: int  # bytes of the segment's last, partial word
    row_words: Index  # staged words per pixel and segment
    group: int  # channel pairs per record
    weight_words: Index  # int32 words of one channel pair's weights
    rec_words: Index  # int32 words of one record
    pair_stride: Index  # without records: bytes from one pair's weights to the next
    doubled: bool  # staged 2 (x - zp) from 2 bias (:func:`~.schedule.doubled_input`)
    zp: Index  # the input zero point (compiled in, or a run-time scalar)
    offset: Expr  # -zp in both halfwords (SXTAB16's addend)
    act_min: Index  # (-128 / 127: no clamp to emit)
    act_max: Index
    x: Buffer
    wt: Buffer
    bias: Buffer
    mult: Buffer
    rq: Buffer
    staged: Buffer
    out: Buffer
    acc: Buffer
    wreg: Buffer  # a channel pair's widened weights (fused steps)
    cursor: Buffer  # the tile's output offset (a run-time channel count)
    #: a patch window's byte offset in the input buffer, a run-time scalar (patches that differ only in
    #: where their window lies share one kernel); None without a window
    origin: Expr | None = None

    @property
    def tp_max(self) -> int:
        return self.cfg.pixels

    @property
    def tc_max(self) -> int:
        return self.cfg.channels

    def scaled(self, v: Expr) -> Expr:
        """Doubled kernels stage 2 (x - zp) and start from 2 bias."""
        return v * i32(2) if self.doubled else v

    def x_index(self, ih: Index, iw: Index) -> Index:
        """Byte offset of pixel (ih, iw) of the op's input in the input buffer."""
        g = self.g
        if self.origin is not None:
            return (ih * g.buf_w + iw) * g.c + self.origin
        return ((ih + g.r0) * g.buf_w + iw + g.c0) * g.c

    def weight_word(self, o: Index, ki: Index, q: Index) -> Index:
        """Byte offset of weight word q of kernel row ki of output channel o (OHWI)."""
        return (o * self.kh_s + ki) * self.seg + q * 4

    def record_word(self, o0: Index, t: int, what: int) -> Index:
        """The constant ``what`` (0 bias, 1 multiplier, 2 exponent, 3 rounding) of channel
        ``o0 + t`` in its record (``o0`` a multiple of the record's channels)."""
        return record_word(o0, t, what, self.group, self.weight_words)

    def widen_input(self, v: Expr) -> tuple[Expr, Expr]:
        """(lanes 0/2, lanes 1/3) of input word ``v`` widened to halfwords, ``-zp`` added (SXTAB16)."""
        return call("mcunet_sxtab16", self.offset, v), call("mcunet_sxtab16_ror8", self.offset, v)

    def slot(self, p: Index, ki: Index, q: Index, h: Index) -> Index:
        """Staged word q, lanes h of kernel row ki of pixel p (:func:`~.layout.staged_slot`)."""
        return staged_slot(p, ki, q, h, self.row_words, self.tp_max)


def lanes_offset(in_zp: int) -> int:
    """``-zp`` in both halfwords of an int32 (SXTAB16 adds it while widening)."""
    neg = (-in_zp) & 0xFFFF
    return ((neg << 16) | neg) - (1 << 32) if neg & 0x8000 else (neg << 16) | neg


def _generic_geometry(g: Geometry, pairs: bool, scalars: ScalarArgs) -> Geometry:
    """A flattened pointwise layer with its pixel and channel counts (and a long reduction's
    length) as run-time scalars."""
    pixels, channels = scalars("pixels", g.ow), scalars("channels", g.oc)
    cin = scalars("cin", g.c) if generic_reduction(g) and pairs else g.c
    return dataclasses.replace(g, w=pixels, ow=pixels, buf_w=pixels, oc=channels, c=cin, in_bytes=pixels * cin)


def pixel_tile_sizes(g: Geometry, tp_max: int) -> tuple[bool, bool]:
    """Whether a row of ``g`` has full tiles of ``tp_max`` pixels, and remainder pixels (done one by one)."""
    full = g.ow // tp_max
    generic = not isinstance(full, int)
    return generic or full > 0, generic or g.ow % tp_max > 0


def channel_tile_sizes(g: Geometry, tc_max: int, out_channels: int, pairs: bool) -> tuple[bool, int, bool]:
    """Whether ``g`` has full tiles of ``tc_max`` channels; the channels of one partial tile (paired weights:
    it starts a channel pair), 0 if none; whether the remainder channels are done one by one."""
    full = g.oc // tc_max
    generic = not isinstance(full, int)
    rest = (g.oc if not generic else out_channels) % tc_max  # a class property
    return generic or full > 0, rest if rest and pairs else 0, bool(rest) and not pairs


def accumulator_words(g: Geometry, cfg: SimdConfig, out_channels: int, pairs: bool) -> int:
    """The accumulator words the tiles of ``g`` index: pixel ``p``, channel ``t`` is ``p * channels + t``."""
    full_p, single_p = pixel_tile_sizes(g, cfg.pixels)
    full_c, partial_c, single_c = channel_tile_sizes(g, cfg.channels, out_channels, pairs)
    pixels = [n for n, used in ((cfg.pixels, full_p), (1, single_p)) if used]
    channels = [n for n, used in ((cfg.channels, full_c), (partial_c, partial_c > 0), (1, single_c)) if used]
    return max((tp - 1) * cfg.channels + tc for tp in pixels for tc in channels)


def declare(op: OpDesc, g: Geometry, cfg: SimdConfig, fast: bool, generic: bool, scalars: ScalarArgs) -> SimdContext:
    """Declare the kernel's parameters and local buffers (inside ``T.prim_func``), in their order."""
    tail = g.kw * g.c % 4  # bytes of the last, partial word of a kernel row (always compiled in)
    pairs, records = paired_weights(op, cfg), channel_records(op, cfg, fast)
    if generic:  # a flattened pointwise layer: sizes, zero point, activation range at run time
        g = _generic_geometry(g, pairs, scalars)
    zp = scalars("x_zp", op.in_zp)
    offset = scalars("x_offset", lanes_offset(op.in_zp)) if generic else i32(lanes_offset(op.in_zp))
    act_min = scalars("act_min", op.act_min) if op.act_min > -128 else -128
    act_max = scalars("act_max", op.act_max) if op.act_max < 127 else 127
    origin = scalars.runtime("x_origin", (g.r0 * g.buf_w + g.c0) * g.c) if op.window(0) else None
    flat = staged_input_bytes(op, cfg) > 0 and flat_window(op)
    kh_s = 1 if flat else g.kh
    seg = g.kh * g.kw * g.c if flat else g.kw * g.c
    tail = seg % 4 if flat else tail
    row_words = seg // 4 + (1 if tail else 0)
    x = T.arg("p0_x", T.buffer((g.in_bytes,), "int8"))
    w_bytes = (g.oc + 1) // 2 * kh_s * row_words * 8 if pairs else g.oc * kh_s * seg
    weight_words = kh_s * row_words * 2
    group = record_pairs(cfg) if records else 1
    rec_words = record_words(weight_words, group)
    bias = mult = rq = None
    if records:
        wt = T.arg("p1_w", T.buffer((-(-g.oc // (2 * group)) * rec_words,), "int32"))
    else:
        wt = T.arg("p1_w", T.buffer((w_bytes,), "int8"))
        bias = T.arg("p2_bias", T.buffer((g.oc,), "int32"))
        mult = T.arg("p3_mult", T.buffer((g.oc,), "int32"))
        rq_shape, rq_name = requant_args(g.oc, fast)
        rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
    staged = None
    if staged_input_bytes(op, cfg):
        staged = T.arg(SCRATCH, T.buffer((cfg.pixels * kh_s * row_words * 2,), "int32"))
    out = T.arg(OUT, T.buffer((g.oh * g.ow * g.oc,), "int8"))
    acc = T.alloc_buffer((accumulator_words(g, cfg, op.out_shape[-1], pairs),), "int32")
    wreg = T.alloc_buffer((2,), "int32") if pairs and cfg.channels == 2 else None
    # a run-time channel count: the tile's output rows are reached by adding it to a cursor
    # (one register) instead of keeping one offset per pixel live across the channel loop
    cursor = T.alloc_buffer((1,), "int32") if not isinstance(g.oc, int) else None
    return SimdContext(
        op=op, fast=fast, g=g, cfg=cfg, padded=any(op.padding) if isinstance(op, Conv2D) else False, pairs=pairs,
        records=records, flat=flat, kh_s=kh_s, seg=seg, tail=tail, row_words=row_words, group=group,
        weight_words=weight_words, rec_words=rec_words, pair_stride=weight_words * 4,
        doubled=staged is not None and doubled_input(op, cfg, fast), zp=zp, offset=offset, act_min=act_min,
        act_max=act_max, x=x, wt=wt, bias=bias, mult=mult, rq=rq, staged=staged, out=out, acc=acc, wreg=wreg,
        cursor=cursor, origin=origin)
