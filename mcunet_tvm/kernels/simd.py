"""SIMD micro-kernels for int8 convolution and dense layers on Cortex-M DSP cores.

The reduction of a convolution in NHWC runs, for one kernel row, over a
contiguous segment of ``KW * C`` input bytes (the pixels under the kernel row
and all their channels) against a contiguous segment of the OHWI weights. The
micro-kernel loads four bytes of each as a word and widens them with
``SXTAB16``/``SXTB16`` (the input zero point is added in the same
instruction), then ``SMLAD`` performs two multiply-accumulates at once. A tile
of ``pixels x channels`` outputs shares every widened input word among its
channels and every widened weight word among its pixels.

Both operands go through the same lane split (bytes 0 and 2, bytes 1 and 3),
so the products pair up correctly without reordering the weights in flash.
Tiles whose window crosses the image border fall back to scalar taps with
TFLite's zero-point padding for that kernel row only; the segment tail
(``KW * C`` not a multiple of 4) is scalar too. Requantisation is fused.

In pixel order the tile's input windows are widened once into arena scratch
(:func:`staged_input_bytes`), the tile's pixels interleaved word by word, and
the weights come in channel-pair order (:func:`pair_weights`, packed at compile
time): per staged word, one weight load and two widenings give the lanes of two
output channels, so a 4x2 tile's word step keeps eight accumulators, two
weights and one input word live, and GCC keeps them in registers.
With ``SimdConfig.shared`` (``--optimize size``) a 1x1 kernel takes the layer's
sizes, zero point and activation bounds as scalar arguments so layers share
it (:func:`shape_generic`); with ``SimdConfig.helium`` the op runs the Helium
kernel of :mod:`.helium` instead (MVE cores).

The kernels are TIR written with TVM's IRBuilder; the primitives are
``call_extern``\\ s to ``mcunet_simd.h``, which maps them to GCC's ACLE
intrinsics on DSP cores and to portable C elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D, Dense, OpDesc
from .common import NO_PRESCHEDULE, OUT, SCRATCH, ScalarArgs, pack_halves
from .helium import helium_kernel, helium_supported, helium_tile
from .requant import channel_requantizer, clamp_to_int8, fast_requantize, requant_args


@dataclass(frozen=True)
class SimdConfig:
    """Schedule knobs of a SIMD kernel (what ``--tune`` searches)."""

    pixels: int = 2  # output pixels per tile
    channels: int = 2  # output channels per tile
    #: "pixels": tiles of pixels outermost (a pixel's input is read once, output may overlap it);
    #: "channels": tiles of channels outermost (requantisation constants, and short weight
    #: rows, are loaded and widened once per channel tile instead of once per pixel tile)
    order: str = "pixels"
    #: take the layer's sizes at run time so that layers share the kernel's code (smaller flash,
    #: a few percent more instructions: see :func:`shape_generic`)
    shared: bool = False
    #: Helium (MVE) vector kernel instead of the DSP one (``kernels.helium``; cores with MVE)
    helium: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


#: the knob values the tuner may try
CONFIG_SPACE = tuple(
    SimdConfig(p, c, order) for order in ("pixels", "channels") for p in (1, 2, 4) for c in (1, 2, 4) if p * c <= 8
)
#: rows of at most this many words are unrolled
UNROLL_WORDS = 4
#: doubled staging (:func:`doubled_input`) where outputs outnumber staged words by this factor
DOUBLE_MIN_RATIO = 2
#: staged windows of at most this many words (all kernel rows) are unrolled
UNROLL_WINDOW_WORDS = 12
#: most weight words kept widened in registers across a channel tile ("channels" order, 1-row kernels)
HOIST_WORDS = 4


def simd_supported(op: OpDesc) -> bool:
    """Ops with a SIMD micro-kernel: non-depthwise conv2d (batch 1, no dilation) and dense."""
    if isinstance(op, Dense):
        return True
    return (
        isinstance(op, Conv2D)
        and not op.depthwise
        and not op.inplace
        and op.in_shape[0] == 1
        and op.dilation == (1, 1)
    )


def default_config(op: OpDesc) -> SimdConfig:
    """The untuned choice: 4 pixels x 2 channels, pixel-outer (a pointwise output may overlap its input).

    Measured on the Cortex-M7 (``scripts/bench_speed.py``), 4x2 tiles are the
    fastest for 1x1 convolutions of every width: eight accumulators, and each
    weight word is widened once for four pixels.
    """
    if isinstance(op, Dense) and op.in_shape[0] == 1:
        return SimdConfig(pixels=1, channels=4)
    return SimdConfig(pixels=4, channels=2)


def helium_config(op: OpDesc, cfg: SimdConfig | None = None) -> SimdConfig | None:
    """The Helium schedule for ``op`` on an MVE core (None: no Helium kernel; the DSP one runs).

    The tile comes from ``cfg`` (a tuned DSP schedule) or 2x2, clipped to the
    accumulators ``VMLADAVA`` can use (:func:`~mcunet_tvm.kernels.helium.helium_tile`).
    """
    if not helium_supported(op):
        return None
    pixels, channels = helium_tile(op, *((cfg.pixels, cfg.channels) if cfg else (2, 2)))
    return SimdConfig(pixels=pixels, channels=channels, helium=True)


def config_space(op: OpDesc) -> list[SimdConfig]:
    """The schedules the tuner may try for ``op``.

    Pointwise convolutions keep the pixel-outer order: with channels outermost
    every input pixel is read again by every channel tile, so the output could
    no longer share memory with the input and the arena would grow.
    """
    pointwise = isinstance(op, Conv2D) and op.kernel == (1, 1) and op.strides == (1, 1) and not any(op.padding)
    space = [c for c in CONFIG_SPACE if not (pointwise and c.order == "channels")]
    if isinstance(op, Dense) and op.in_shape[0] == 1:
        space = [c for c in space if c.pixels == 1]
    return space


#: stage the input of a pixel tile (widened once) when at least this many channel tiles reuse it
STAGE_MIN_REUSE = 3


def flat_window(op: OpDesc) -> bool:
    """Whether a staged kernel stages the whole ``KH x KW x C`` window as one segment.

    Kernel rows whose ``KW * C`` bytes are not whole words (few input
    channels, e.g. a 3x3 stem over RGB) leave zero lanes at the end of every
    row; one segment for the window packs them: 9 staged words become 7 for
    3x3x3, so the tile does 2/9 fewer word steps (the staging splices words
    that straddle two kernel rows).
    """
    if not isinstance(op, Conv2D):
        return False
    g = _Geometry.of(op)
    whole = -(-(g.kh * g.kw * g.c) // 4)
    return g.kh > 1 and whole < g.kh * -(-(g.kw * g.c) // 4) and whole <= UNROLL_WINDOW_WORDS


def staged_rows(op: OpDesc) -> tuple[int, int]:
    """(segments, words per segment) a staged kernel widens per pixel: one per kernel row, or one
    for the whole window (:func:`flat_window`)."""
    g = _Geometry.of(op)
    if flat_window(op):
        return 1, -(-(g.kh * g.kw * g.c) // 4)
    return g.kh, -(-(g.kw * g.c) // 4)


def staged_input_bytes(op: OpDesc, cfg: SimdConfig | None) -> int:
    """Arena scratch of a SIMD kernel that widens each pixel tile's input window once (0: none).

    In pixel order every channel tile of a pixel tile reads the same input
    windows. Widening them once per pixel tile (im2col into halfword pairs:
    per pixel and kernel row, ``ceil(KW*C/4)`` pairs of words, zeros for the
    padding and the segment tail) turns the load-and-widen of every channel
    tile into two loads per word and leaves the MAC loop without border cases.
    """
    if cfg is None or cfg.order != "pixels" or cfg.helium or not simd_supported(op):
        return 0
    g = _Geometry.of(op)
    if -(-g.oc // cfg.channels) < STAGE_MIN_REUSE:
        return 0
    rows, words = staged_rows(op)
    return cfg.pixels * rows * words * 8


def _i32(v: int):
    return tirx.const(v, "int32")


def _call(name: str, *args):
    return T.call_extern("int32", name, *args)


def simd_kernel(op: OpDesc, cfg: SimdConfig | None = None) -> tirx.PrimFunc:
    """The SIMD PrimFunc for ``op`` (see :func:`simd_supported`) with schedule ``cfg``."""
    cfg = cfg or default_config(op)
    if cfg.helium:
        func = helium_kernel(op, cfg.pixels, cfg.channels)
    else:
        func = _build(op, _Geometry.of(op), cfg, generic=shape_generic(op, cfg))
    return func.with_attr("mcunet.op", op.to_json()).with_attr("mcunet.schedule", "simd:" + cfg.to_json())


def shape_generic(op: OpDesc, cfg: SimdConfig) -> bool:
    """Whether the kernel takes the layer's sizes at run time, so layers share its code.

    Pointwise convolutions over a whole image (the most numerous layers) take
    their pixel and output-channel counts, input zero point and activation
    range as scalar arguments, and so does a reduction longer than
    ``UNROLL_WORDS`` words (it runs in a loop anyway); short reductions stay
    unrolled and compiled in. Layers with equal remaining code share one kernel.
    """
    return (
        cfg.shared
        and not cfg.helium
        and isinstance(op, Conv2D)
        and cfg.order == "pixels"
        and op.kernel == (1, 1)
        and op.strides == (1, 1)
        and not any(op.padding)
        and not op.windows
    )


def _generic_reduction(g: _Geometry) -> bool:
    """A reduction of an even number of words, longer than the unrolling limit: it runs as a loop
    over word pairs anyway, so its length may be a run-time value (with channel-pair weights,
    whose rows sit at constant offsets from one another)."""
    return g.kw * g.c % 8 == 0 and g.kw * g.c // 4 > UNROLL_WORDS


def doubled_input(op: OpDesc, cfg: SimdConfig | None) -> bool:
    """Whether a staged kernel stages ``2 (x - zp)`` (and starts from ``2 bias``).

    The accumulator then holds twice the sum, which the fast requantisation
    needs anyway (SMMLAR of ``2 acc``): one SADD16 per staged word instead of
    one shift per output. Chosen where outputs outnumber staged words (per
    pixel: ``oc`` against ``2 KH ceil(KW C / 4)``, with a margin: measured), and only for layers whose
    accumulator bound lets the fast form run (``Conv2D.fast_requant``).
    Shape-generic kernels keep one form for every layer.
    """
    if not (op.fast_requant and staged_input_bytes(op, cfg)) or cfg.shared:
        return False
    g = _Geometry.of(op)
    rows, words = staged_rows(op)
    return g.oc > DOUBLE_MIN_RATIO * 2 * rows * words


def paired_weights(op: OpDesc, cfg: SimdConfig | None) -> bool:
    """Whether the kernel takes its weights in channel-pair order (:func:`pair_weights`).

    Staged kernels with an even channel tile do: one weight word then holds
    the lanes of two output channels for one staged input word, so a word step
    keeps two widened weights live instead of four, and the widened input word
    of each pixel is loaded right where it is used. The eight accumulators of
    a 4x2 tile, two weights, one input word and two pointers fit the core's
    registers without spilling.
    """
    return bool(staged_input_bytes(op, cfg)) and cfg is not None and cfg.channels % 2 == 0


def pair_weights(weights: np.ndarray) -> np.ndarray:
    """OHWI int8 weights in channel-pair order, each kernel row padded to whole words.

    For channels ``2g, 2g + 1`` and word ``q`` of a kernel row (bytes b0..b3,
    zeros past the row), word A = ``[2g:b0, 2g+1:b0, 2g:b2, 2g+1:b2]`` and word
    B = ``[2g:b1, 2g+1:b1, 2g:b3, 2g+1:b3]`` follow each other: ``SXTB16`` of A
    is channel 2g's half for the staged lanes 0/2 of the input, ``SXTB16 ROR 8``
    channel 2g+1's; B pairs with lanes 1/3. An odd last channel is paired with zeros.
    """
    oc, kh = weights.shape[0], weights.shape[1] if weights.ndim == 4 else 1
    rows = weights.reshape(oc, kh, -1)
    words = -(-rows.shape[2] // 4)
    padded = np.zeros((oc + oc % 2, kh, words * 4), np.int8)
    padded[:oc, :, : rows.shape[2]] = rows
    # [group, pair member, row, word, byte] -> [group, row, word, half (byte parity), lane (byte // 2), member]
    lanes = padded.reshape(-1, 2, kh, words, 2, 2).transpose(0, 2, 3, 5, 4, 1)
    return np.ascontiguousarray(lanes).reshape(-1)


#: int32 words of a channel pair's constants in a record: bias of both channels, their
#: multipliers, then (exponent, rounding) of each (:func:`channel_records`)
RECORD_CONST_WORDS = 8


def channel_records(op: OpDesc, cfg: SimdConfig | None) -> bool:
    """Whether the kernel takes one array of channel-pair records instead of four constant arrays.

    A record holds everything a channel tile needs (:func:`record_pairs`
    channel pairs): its pair-ordered weights (:func:`pair_weights`; with two
    pairs, their words for one staged word side by side: one LDRD), then the
    biases (doubled with the staged input, :func:`doubled_input`),
    multipliers and fast requantisation constants. One pointer then walks the
    records: the tile's loop keeps no bias, multiplier and shift pointers (nor
    an index into them) live beside the accumulators, which GCC otherwise
    spills (measured: 141 to 125 instructions per 4x2 tile of a 1x1 layer
    with 8 input channels).
    Channel-pair kernels of layers with the fast requantisation take them;
    shape-generic kernels keep the separate arrays (their layers share code, not constants).
    """
    return paired_weights(op, cfg) and op.fast_requant and not cfg.shared


def record_pairs(cfg: SimdConfig) -> int:
    """Channel pairs per record: those of a channel tile (1 or 2)."""
    return 2 if cfg.channels >= 4 else 1


def record_words(weight_words: int, group: int = 1) -> int:
    """int32 words of one record of ``group`` channel pairs whose weights take ``weight_words`` words each."""
    return group * (weight_words + RECORD_CONST_WORDS)


def pack_records(weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, rq: np.ndarray,
                 doubled: bool, group: int = 1) -> np.ndarray:
    """Records (int32) of ``group`` channel pairs for :func:`channel_records` kernels.

    ``rq`` is ``requant.pack_fast_requant``'s (exponent, rounding) per channel;
    ``doubled`` doubles the biases (the kernel accumulates ``2 acc``). Missing
    channels (an odd count, a last partial group) are zeros. A record: the
    group's weight words, pair by pair for each word position, then per
    channel its bias, per channel its multiplier, per channel (exponent, rounding).
    """
    oc = bias.shape[0]
    records = -(-oc // (2 * group))
    pairs = records * group
    words = np.zeros((pairs, pair_weights(weights[:2]).size // 4), np.int32)
    words[: (oc + 1) // 2] = pair_weights(weights).view("<i4").reshape((oc + 1) // 2, -1)
    words = words.reshape(records, group, -1).transpose(0, 2, 1).reshape(records, -1)

    def per_channel(v: np.ndarray, per: int) -> np.ndarray:
        out = np.zeros((pairs * 2, per), np.int64)
        out[:oc] = np.asarray(v, np.int64).reshape(oc, per)
        return out.reshape(records, 2 * group * per)

    consts = np.concatenate([per_channel(np.asarray(bias, np.int64) * (2 if doubled else 1), 1),
                             per_channel(mult, 1), per_channel(rq, 2)], axis=1)
    return np.ascontiguousarray(np.concatenate([words, consts.astype(np.int32)], axis=1)).reshape(-1)


@dataclass(frozen=True)
class _Geometry:
    """A convolution as the micro-kernel sees it (dense and pointwise conv are 1-row images)."""

    h: int
    w: int
    c: int
    oh: int
    ow: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    buf_w: int  # row length of the input buffer (a patch window may be wider than the op's input)
    r0: int  # window origin in the buffer
    c0: int
    in_bytes: int

    @staticmethod
    def of(op: OpDesc) -> _Geometry:
        if isinstance(op, Dense):
            n, k = op.in_shape
            return _Geometry(1, n, k, 1, n, op.out_shape[-1], 1, 1, 1, 1, 0, 0, n, 0, 0, n * k)
        assert isinstance(op, Conv2D)
        _, h, w, c = op.in_shape
        _, oh, ow, oc = op.out_shape
        win = op.window(0)
        buf = op.input_buffer_shape(0, op.in_shape)
        pointwise = op.kernel == (1, 1) and op.strides == (1, 1) and not any(op.padding)
        if pointwise and not win:  # every pixel is independent: tile the flattened image
            return _Geometry(1, h * w, c, 1, oh * ow, oc, 1, 1, 1, 1, 0, 0, h * w, 0, 0, h * w * c)
        r0, c0 = (win[0], win[1]) if win else (0, 0)
        return _Geometry(h, w, c, oh, ow, oc, *op.kernel, *op.strides, op.padding[0], op.padding[1],
                         buf[2], r0, c0, math.prod(buf))


def _build(op: OpDesc, g: _Geometry, cfg: SimdConfig, generic: bool = False) -> tirx.PrimFunc:
    neg = (-op.in_zp) & 0xFFFF
    offset = ((neg << 16) | neg) - (1 << 32) if neg & 0x8000 else (neg << 16) | neg
    tail = g.kw * g.c % 4  # bytes of the last, partial word of a kernel row (always compiled in)
    padded = any(op.padding) if isinstance(op, Conv2D) else False
    tp_max, tc_max = cfg.pixels, cfg.channels
    scalars = ScalarArgs(generic)
    pairs = paired_weights(op, cfg)
    records = channel_records(op, cfg)

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            if generic:  # a flattened pointwise layer: sizes, zero point, activation range at run time
                pixels, channels = scalars("pixels", g.ow), scalars("channels", g.oc)
                cin = scalars("cin", g.c) if _generic_reduction(g) and pairs else g.c
                g = dataclasses.replace(g, w=pixels, ow=pixels, buf_w=pixels, oc=channels, c=cin,
                                        in_bytes=pixels * cin)
            zp = scalars("x_zp", op.in_zp)
            offset = scalars("x_offset", offset) if generic else _i32(offset)
            act_min = scalars("act_min", op.act_min) if op.act_min > -128 else -128
            act_max = scalars("act_max", op.act_max) if op.act_max < 127 else 127
            flat = staged_input_bytes(op, cfg) > 0 and flat_window(op)
            kh_s = 1 if flat else g.kh  # staged segments per pixel: kernel rows, or the whole window
            seg = g.kh * g.kw * g.c if flat else g.kw * g.c
            tail = seg % 4 if flat else tail
            row_words = seg // 4 + (1 if tail else 0)  # staged words per pixel and segment
            x = T.arg("p0_x", T.buffer((g.in_bytes,), "int8"))
            w_bytes = (g.oc + 1) // 2 * kh_s * row_words * 8 if pairs else g.oc * kh_s * seg
            # channel-pair records (int32 words: the pair's weights, then its constants), or the
            # weights and three constant arrays
            weight_words = kh_s * row_words * 2  # per channel pair
            group = record_pairs(cfg) if records else 1  # channel pairs per record
            rec_words = record_words(weight_words, group)
            pair_stride = weight_words * 4  # without records: bytes from one pair's weights to the next
            if records:
                wt = T.arg("p1_w", T.buffer((-(-g.oc // (2 * group)) * rec_words,), "int32"))
            else:
                wt = T.arg("p1_w", T.buffer((w_bytes,), "int8"))
                bias = T.arg("p2_bias", T.buffer((g.oc,), "int32"))
                mult = T.arg("p3_mult", T.buffer((g.oc,), "int32"))
                rq_shape, rq_name = requant_args(g.oc, op.fast_requant)
                rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
            staged = None
            if staged_input_bytes(op, cfg):
                staged = T.arg(SCRATCH, T.buffer((cfg.pixels * kh_s * row_words * 2,), "int32"))
            doubled = staged is not None and doubled_input(op, cfg)

            def scaled(v):
                """Doubled kernels stage 2 (x - zp) and start from 2 bias."""
                return v * _i32(2) if doubled else v

            def record_word(o0, t: int, what: int):
                """The constant ``what`` (0 bias, 1 multiplier, 2 exponent, 3 rounding) of channel
                ``o0 + t`` in its record (``o0`` a multiple of the record's channels)."""
                local = t % (2 * group)
                at = {0: local, 1: 2 * group + local, 2: 4 * group + 2 * local, 3: 4 * group + 2 * local + 1}[what]
                return (tirx.floordiv(o0, 2 * group) + t // (2 * group)) * rec_words + group * weight_words + at

            def channel_bias(o0, t: int):
                if records:  # doubled at compile time where the kernel is
                    return T.bind(wt[record_word(o0, t, 0)])
                return T.bind(scaled(bias[o0 + t]))

            def requantizer(o0, t: int):
                """Output channel ``o0 + t`` 's requantisation, its constants bound once."""
                if records:
                    m, e, r = (T.bind(wt[record_word(o0, t, k)]) for k in (1, 2, 3))
                    return lambda acc: fast_requantize(acc, m, e, r, doubled)
                return channel_requantizer(op, mult, rq, o0 + t, T.bind, doubled)

            out = T.arg(OUT, T.buffer((g.oh * g.ow * g.oc,), "int8"))
            acc = T.alloc_buffer((tp_max * tc_max,), "int32")
            wreg = T.alloc_buffer((2,), "int32") if pairs and tc_max == 2 else None  # a pair's widened weights
            # a run-time channel count: the tile's output rows are reached by adding it to a cursor
            # (one register) instead of keeping one offset per pixel live across the channel loop
            cursor = T.alloc_buffer((1,), "int32") if not isinstance(g.oc, int) else None

            def x_index(ih, iw):
                return ((ih + g.r0) * g.buf_w + iw + g.c0) * g.c

            def weight_word(o, ki, q):
                """Byte offset of weight word q of kernel row ki of output channel o (OHWI)."""
                return (o * kh_s + ki) * seg + q * 4

            def widen_weights(o0, tc, ki, q):
                """(lanes 0/2, lanes 1/3) of weight word q of each channel of the tile."""
                lanes = []
                for t in range(tc):
                    v = T.bind(_call("mcunet_read_s8x4", T.address_of(wt[weight_word(o0 + t, ki, q)])))
                    lanes.append((T.bind(_call("mcunet_sxtb16", v)), T.bind(_call("mcunet_sxtb16_ror8", v))))
                return lanes

            def widen_input(v):
                return _call("mcunet_sxtab16", offset, v), _call("mcunet_sxtab16_ror8", offset, v)

            def word_step(lanes, q, tp, tc, wlanes):
                """One word of the segment: each pixel's widened input (``lanes``), two SMLADs per output."""
                xl = [lanes(p, q) for p in range(tp)]
                for t in range(tc):
                    w02, w13 = wlanes[t]
                    for p in range(tp):
                        idx = p * tc_max + t
                        a = _call("mcunet_smlad", xl[p][0], w02, acc[idx])
                        if w13 is not None:
                            a = _call("mcunet_smlad", xl[p][1], w13, a)
                        T.buffer_store(acc, a, [idx])

            def words_loop(lanes, o0, tp, tc, ki, words):
                """Words 0 .. words - 1 of kernel row ki: unrolled when short, else two per iteration."""
                if isinstance(words, int) and words <= UNROLL_WORDS:  # short rows: straight-line code
                    for q in range(words):
                        word_step(lanes, q, tp, tc, widen_weights(o0, tc, ki, q))
                    return
                with T.serial(0, words // 2) as qq:
                    for half in range(2):
                        word_step(lanes, qq * 2 + half, tp, tc, widen_weights(o0, tc, ki, qq * 2 + half))
                if isinstance(words, int) and words % 2:  # (a run-time length is even)
                    word_step(lanes, words - 1, tp, tc, widen_weights(o0, tc, ki, words - 1))

            def simd_row(ih, iw0, o0, tp, tc, ki, hoisted):
                """The whole kernel row in words: SXTAB16/SXTB16 widening, SMLAD accumulation."""
                xb = [x_index(ih, iw0 + p * g.sw) for p in range(tp)]

                def lanes(p, q):
                    v = T.bind(_call("mcunet_read_s8x4", T.address_of(x[xb[p] + q * 4])))
                    lo, hi = widen_input(v)
                    return T.bind(lo), T.bind(hi)

                if hoisted is not None:
                    for q, wlanes in enumerate(hoisted):
                        word_step(lanes, q, tp, tc, wlanes)
                else:
                    words_loop(lanes, o0, tp, tc, ki, seg // 4)
                for r in range(seg - tail, seg) if tail else ():  # tail of the segment
                    for p in range(tp):
                        xv = x[xb[p] + r].astype("int32") - zp
                        for t in range(tc):
                            idx = p * tc_max + t
                            wv = wt[((o0 + t) * g.kh + ki) * seg + r].astype("int32")
                            T.buffer_store(acc, acc[idx] + xv * wv, [idx])

            def scalar_row(ih, iw0, o0, tp, tc, ki):
                """Border tiles: tap by tap, a tap outside the image contributes nothing."""
                with T.grid(g.kw, g.c) as (kj, ch):
                    for p in range(tp):
                        iw = iw0 + p * g.sw + kj
                        xv = tirx.if_then_else(
                            tirx.all(iw >= 0, iw < g.w),
                            x[x_index(ih, iw) + ch].astype("int32") - zp,
                            _i32(0),
                        )
                        for t in range(tc):
                            idx = p * tc_max + t
                            wv = wt[((o0 + t) * g.kh + ki) * seg + kj * g.c + ch].astype("int32")
                            T.buffer_store(acc, acc[idx] + xv * wv, [idx])

            def partial_weights(o0, tc, ki):
                """Lanes of the last, partial weight word of kernel row ki: 0 past the row (where a
                staged lane may hold anything, see ``window_word``)."""
                base, rest = seg - tail, tail
                lanes = []
                for t in range(tc):
                    row = ((o0 + t) * kh_s + ki) * seg + base
                    w = [wt[row + b].astype("int32") for b in range(rest)]
                    lo = T.bind(pack_halves(w[0], w[2] if rest == 3 else None))
                    lanes.append((lo, T.bind(pack_halves(w[1])) if rest >= 2 else None))
                return lanes

            def paired_step(o0, tp, tc, ki, q_run, q: int, fused: bool):
                """Word ``q_run + q`` of kernel row ki from channel-pair weights: per half, the tile's
                weights (one load, two widenings per channel pair), then each pixel's staged word.

                ``fused`` (:func:`fused_steps`), with a tile of one channel pair: each step is one
                asm block of ``mcunet_simd.h`` (``mcunet_widen_pair``; ``mcunet_smlad4d`` for two
                pixels, whose staged words are adjacent: one LDRD, or ``mcunet_smlad2`` for one: a
                load at a base register plus a constant offset and the instructions that use it),
                so GCC neither loads early nor spills, nor keeps an address per load. ``q_run``
                and a run-time ki go into the base, the compile-time rest into the offset.
                """
                ki_run, ki_c = (0, ki) if isinstance(ki, int) else (ki, 0)
                fused = fused and tc_max == 2 and tc == 2
                for h in range(2):
                    if h and tail == 1 and isinstance(q_run, int) and q == seg // 4:
                        continue  # the partial word's odd lanes are all zero
                    wv = []
                    for j in range((tc + 1) // 2):
                        # in elements of wt; w_off in bytes (spelled out when 0 so that it stays an
                        # int with a run-time row length)
                        if records:  # (pairs of a record side by side for each word position)
                            w_base = tirx.floordiv(o0, 2 * group) * rec_words + (ki_run * row_words + q_run) * 2 * group
                            w_off = (((ki_c * row_words + q) * 2 + h) * group + j) * 4
                        else:
                            w_base = tirx.floordiv(o0, 2) * pair_stride + (ki_run * row_words + q_run) * 8
                            w_off = j * pair_stride + (ki_c * row_words + q) * 8 + h * 4 if j or ki_c or q else h * 4
                        if fused:
                            T.evaluate(_call("mcunet_widen_pair", T.address_of(wreg[0]), T.address_of(wt[w_base]),
                                             w_off))
                            wv += [wreg[0], wreg[1]]
                            continue
                        if records:  # an aligned word of the record
                            v = T.bind(wt[w_base + w_off // 4])
                        else:
                            v = T.bind(_call("mcunet_read_s8x4", T.address_of(wt[w_base + w_off])))
                        wv.append(T.bind(_call("mcunet_sxtb16", v)))
                        if 2 * j + 1 < tc:
                            wv.append(T.bind(_call("mcunet_sxtb16_ror8", v)))
                    x_base = (ki_run * row_words + q_run) * tp_max * 2
                    for p in range(tp):
                        x_off = slot(p, ki_c, q, h) if ki_c or q else h * tp_max + p
                        if fused and p % 2 == 0 and p + 1 < tp:  # two pixels' words: one LDRD
                            T.evaluate(_call("mcunet_smlad4d", T.address_of(acc[p * tc_max]),
                                             T.address_of(staged[x_base]), x_off * 4, wv[0], wv[1]))
                            continue
                        if fused and p % 2:
                            continue
                        if fused:
                            T.evaluate(_call("mcunet_smlad2", T.address_of(acc[p * tc_max]),
                                             T.address_of(staged[x_base]), x_off * 4, wv[0], wv[1]))
                            continue
                        xv = T.bind(staged[x_base + x_off])
                        for t in range(tc):
                            idx = p * tc_max + t
                            T.buffer_store(acc, _call("mcunet_smlad", xv, wv[t], acc[idx]), [idx])

            def paired_row(o0, tp, tc, ki):
                """Kernel row ki, all its staged words (the partial one too: its weights are padded)."""
                if isinstance(row_words, int) and row_words <= (UNROLL_WINDOW_WORDS if flat else UNROLL_WORDS):
                    for q in range(row_words):  # straight-line
                        paired_step(o0, tp, tc, ki, 0, q, fused=fused_steps(kh_s, row_words))
                    return
                # words per iteration: two; four for one-pixel tiles of two pairs (dense layers: their
                # C steps leave registers for it, and the loop's overhead is a tenth of it)
                step = 4 if tp_max == 1 and tc_max == 4 and isinstance(row_words, int) else 2
                with T.serial(0, row_words // step) as qq:
                    for part in range(step):
                        paired_step(o0, tp, tc, ki, qq * step, part, fused=True)
                if isinstance(row_words, int):
                    for q in range(row_words - row_words % step, row_words):
                        paired_step(o0, tp, tc, ki, 0, q, fused=True)

            def staged_row(o0, tp, tc, ki):
                """Kernel row ki from the staged, widened windows: no border case, no scalar tail."""
                if pairs:
                    paired_row(o0, tp, tc, ki)
                    return

                def lanes(p, q):
                    return T.bind(staged[slot(p, ki, q, 0)]), T.bind(staged[slot(p, ki, q, 1)])

                words_loop(lanes, o0, tp, tc, ki, seg // 4)
                if tail:
                    word_step(lanes, seg // 4, tp, tc, partial_weights(o0, tc, ki))

            def slot(p, ki, q, h):
                """Staged word q, lanes h (0: bytes 0/2, 1: bytes 1/3) of kernel row ki of pixel p; the
                pixels of a tile interleave, so one step of the tile reads consecutive words (one
                base, constant offsets; two pixels at a time with LDRD)."""
                return ((ki * row_words + q) * 2 + h) * tp_max + p

            def stage_direct(ih, windows, ki):
                """Widen kernel row ``ki`` of the windows ``(pixel, column)`` (inside the image):
                whole words of all of them in one loop, then each partial word."""
                bases = [(p, x_index(ih, iw)) for p, iw in windows]

                def word(q):
                    for p, base in bases:
                        v = T.bind(_call("mcunet_read_s8x4", T.address_of(x[base + q * 4])))
                        lo, hi = widen_input(v)
                        if doubled:
                            lo, hi = T.bind(lo), T.bind(hi)
                            lo, hi = _call("mcunet_sadd16", lo, lo), _call("mcunet_sadd16", hi, hi)
                        T.buffer_store(staged, lo, [slot(p, ki, q, 0)])
                        T.buffer_store(staged, hi, [slot(p, ki, q, 1)])

                if isinstance(seg, int) and seg // 4 <= UNROLL_WORDS:
                    for q in range(seg // 4):
                        word(q)
                else:
                    with T.serial(0, seg // 4) as q:
                        word(q)
                rest = tail
                for p, base in bases if rest else ():
                    v = [scaled(x[base + seg - rest + b].astype("int32") - zp) for b in range(rest)]
                    T.buffer_store(staged, pack_halves(v[0], v[2] if rest == 3 else None), [slot(p, ki, seg // 4, 0)])
                    T.buffer_store(staged, pack_halves(v[1]) if rest >= 2 else _i32(0), [slot(p, ki, seg // 4, 1)])

            def stage_row(ih, iw, p, ki):
                """Widen kernel row ``ki`` of pixel ``p``'s window (it may cross the border)."""

                def direct():
                    stage_direct(ih, [(p, iw)], ki)

                def bytewise():  # the window crosses the left or right border: byte by byte
                    with T.serial(0, row_words) as q:
                        v = []
                        for b in range(4):
                            pos = q * 4 + b
                            col = iw + tirx.floordiv(pos, g.c)
                            valid = tirx.all(pos < seg, col >= 0, col < g.w)
                            load = scaled(x[x_index(ih, col) + tirx.floormod(pos, g.c)].astype("int32") - zp)
                            v.append(T.bind(tirx.if_then_else(valid, load, _i32(0))))
                        T.buffer_store(staged, pack_halves(v[0], v[2]), [slot(p, ki, q, 0)])
                        T.buffer_store(staged, pack_halves(v[1], v[3]), [slot(p, ki, q, 1)])

                if not padded:
                    direct()
                    return
                with T.If(tirx.all(ih >= 0, ih < g.h)):
                    with T.Then():
                        with T.If(tirx.all(iw >= 0, iw + g.kw <= g.w)):
                            with T.Then():
                                direct()
                            with T.Else():
                                bytewise()
                    with T.Else():  # a padding row
                        with T.serial(0, row_words) as q:
                            T.buffer_store(staged, _i32(0), [slot(p, ki, q, 0)])
                            T.buffer_store(staged, _i32(0), [slot(p, ki, q, 1)])

            def stage_flat(i, j0, tp):
                """Each pixel's whole window as one segment (:func:`flat_window`): inside the image
                word by word, spliced from the kernel rows (``window_word``); a window across the
                border byte by byte, every byte checked."""
                for p in range(tp):
                    ih0, iw0 = i * g.sh - g.pt, (j0 + p) * g.sw - g.pl
                    if not padded:
                        gather_window(p, ih0, iw0, False)
                        continue
                    with T.If(tirx.all(ih0 >= 0, ih0 + g.kh <= g.h, iw0 >= 0, iw0 + g.kw <= g.w)):
                        with T.Then():
                            gather_window(p, ih0, iw0, False)
                        with T.Else():
                            gather_window(p, ih0, iw0, True)

            def gather_window(p, ih0, iw0, checked: bool):
                """Pixel p's window from (ih0, iw0) into its staged words; ``checked``: it crosses the border."""

                def value(e):  # element e of the window (0 past it)
                    if e >= seg:
                        return _i32(0)
                    ki, rest = divmod(e, g.kw * g.c)
                    ih, iw = ih0 + ki, iw0 + rest // g.c
                    v = x[x_index(ih, iw) + rest % g.c].astype("int32")
                    if not checked:
                        return v
                    return tirx.if_then_else(tirx.all(ih >= 0, ih < g.h, iw >= 0, iw < g.w), v - zp, _i32(0))

                row_len = g.kw * g.c
                if not checked and row_len >= 4:  # inside: whole words of the kernel rows, spliced
                    for q in range(row_words):
                        lo, hi = widen_input(T.bind(window_word(ih0, iw0, q)))
                        for h, lanes in enumerate((lo, hi)):
                            lanes = T.bind(lanes)
                            T.buffer_store(staged, _call("mcunet_sadd16", lanes, lanes) if doubled else lanes,
                                           [slot(p, 0, q, h)])
                    return
                for q in range(row_words):
                    for h in range(2):
                        word = T.bind(pack_halves(value(4 * q + h), value(4 * q + h + 2)))
                        if not checked:  # the zero point of the (inside) bytes, both lanes at once
                            word = T.bind(_call("mcunet_sadd16", word, offset_of_lanes(4 * q + h)))
                        if doubled:
                            word = _call("mcunet_sadd16", word, word)
                        T.buffer_store(staged, word, [slot(p, 0, q, h)])

            def window_word(ih0, iw0, q):
                """Bytes 4q .. 4q + 3 of an inside window (kernel rows of at least 4 bytes, one after
                the other) as one word: a load, or two spliced (the end of one row, a load ending
                there shifted down, and the start of the next); bytes past the window are don't-cares
                (their weights are 0)."""
                row_len = g.kw * g.c

                def row_at(ki, b):
                    return T.address_of(x[x_index(ih0 + ki, iw0) + b])

                def load(ki, b):
                    return _call("mcunet_read_s8x4", row_at(ki, b))

                ki, b = divmod(4 * q, row_len)
                if b + 4 <= row_len:
                    return load(ki, b)
                first = row_len - b  # bytes left in row ki
                tail_part = tirx.Cast("uint32", load(ki, row_len - 4)) >> tirx.const(8 * (4 - first), "uint32")
                if ki + 1 >= g.kh:  # the window's last bytes
                    return tirx.Cast("int32", tail_part)
                head = tirx.Cast("uint32", load(ki + 1, 0)) << tirx.const(8 * first, "uint32")
                return tirx.Cast("int32", tail_part | head)

            def offset_of_lanes(e):
                """``-zp`` in the lanes holding window elements ``e`` and ``e + 2`` (0 past the window)."""
                lo = (-op.in_zp) & 0xFFFF if e < seg else 0
                hi = (-op.in_zp) & 0xFFFF if e + 2 < seg else 0
                v = (hi << 16) | lo
                return _i32(v - (1 << 32) if v & 0x80000000 else v)

            def stage_tile(i, j0, tp):
                """Widen the tile's input windows once (im2col), for all its channel tiles."""
                if flat:
                    stage_flat(i, j0, tp)
                    return
                if not padded and g.kh == 1:  # every window inside the image: all pixels in one loop
                    stage_direct(i * g.sh, [(p, (j0 + p) * g.sw) for p in range(tp)], 0)
                    return
                for p in range(tp):
                    iw = (j0 + p) * g.sw - g.pl
                    if g.kh == 1:
                        stage_row(i * g.sh - g.pt, iw, p, 0)
                        continue
                    with T.serial(0, g.kh) as ki:
                        stage_row(i * g.sh - g.pt + ki, iw, p, ki)

            def channel_setup(o0, tc):
                """Per channel tile: bias, requantisation constants, and (short rows) widened weights."""
                biases = [channel_bias(o0, t) for t in range(tc)]
                requants = None
                if not (staged is not None and cfg.order == "pixels"):  # (staged pixel tiles: after the MACs)
                    requants = [requantizer(o0, t) for t in range(tc)]
                hoisted = None
                if cfg.order == "channels" and g.kh == 1 and 0 < (seg // 4) * tc <= HOIST_WORDS:
                    hoisted = [widen_weights(o0, tc, 0, q) for q in range(seg // 4)]
                return biases, requants, hoisted

            def tile(i, j0, o0, tp: int, tc: int, setup):
                biases, requants, hoisted = setup
                for p in range(tp):
                    for t in range(tc):
                        T.buffer_store(acc, biases[t], [p * tc_max + t])
                if staged is not None:
                    if kh_s == 1 or (isinstance(row_words, int) and kh_s * row_words <= UNROLL_WINDOW_WORDS):
                        for ki in range(kh_s):  # straight-line: no loop counter live beside the accumulators
                            staged_row(o0, tp, tc, ki)
                    else:
                        with T.serial(0, kh_s) as ki:
                            staged_row(o0, tp, tc, ki)
                    # requantisation constants loaded after the MACs: not live (or spilled) beside the accumulators
                    if cfg.order == "pixels" and cursor is None:  # channel by channel, constants loaded late
                        store_by_channel(i, j0, o0, tp, tc)
                    else:
                        store_outputs(i, j0, o0, tp, tc, [requantizer(o0, t) for t in range(tc)]
                                      if cfg.order == "pixels" else requants)
                    return
                with T.serial(0, g.kh) as ki:
                    ih = i * g.sh + ki - g.pt
                    iw0 = j0 * g.sw - g.pl
                    if not padded:
                        simd_row(ih, iw0, o0, tp, tc, ki, hoisted)
                    else:
                        with T.If(tirx.all(ih >= 0, ih < g.h)):
                            with T.Then():
                                inside = tirx.all(iw0 >= 0, iw0 + (tp - 1) * g.sw + g.kw <= g.w)
                                with T.If(inside):
                                    with T.Then():
                                        simd_row(ih, iw0, o0, tp, tc, ki, hoisted)
                                    with T.Else():
                                        scalar_row(ih, iw0, o0, tp, tc, ki)
                store_outputs(i, j0, o0, tp, tc, requants)

            def store_by_channel(i, j0, o0, tp, tc):
                """The tile's outputs channel by channel, each channel's constants loaded just before
                its outputs: accumulators already stored free the registers the next channel needs."""
                for t in range(tc):
                    requant = requantizer(o0, t)
                    for p in range(tp):
                        value = requant(acc[p * tc_max + t])
                        T.buffer_store(out, clamp_to_int8(value, act_min, act_max),
                                       [(i * g.ow + j0 + p) * g.oc + o0 + t])

            def store_outputs(i, j0, o0, tp, tc, requants):
                if cursor is not None:
                    T.buffer_store(cursor, (i * g.ow + j0) * g.oc + o0, [0])
                for p in range(tp):
                    if cursor is not None and p:
                        T.buffer_store(cursor, cursor[0] + g.oc, [0])
                    for t in range(tc):
                        value = requants[t](acc[p * tc_max + t])
                        at = cursor[0] + t if cursor is not None else (i * g.ow + j0 + p) * g.oc + o0 + t
                        T.buffer_store(out, clamp_to_int8(value, act_min, act_max), [at])

            def pixel_tiles(body):
                """``body(i, j0, tp)`` over every pixel tile, remainder pixels one by one."""
                with T.serial(0, g.oh) as i:
                    full = g.ow // tp_max
                    if not isinstance(full, int) or full:
                        with T.serial(0, full) as jt:
                            body(i, jt * tp_max, tp_max)
                    if not isinstance(full, int) or g.ow % tp_max:
                        with T.serial(full * tp_max, g.ow) as j:
                            body(i, j, 1)

            def channel_tiles(body):
                """``body(o0, tc)`` over every channel tile, remainder channels one by one."""
                full = g.oc // tc_max
                if not isinstance(full, int) or full:
                    with T.serial(0, full) as ot:
                        body(ot * tc_max, tc_max)
                rest = (g.oc if isinstance(full, int) else op.out_shape[-1]) % tc_max  # a class property
                if rest and pairs:  # one partial tile: it starts a channel pair
                    body(full * tc_max, rest)
                elif rest:
                    with T.serial(full * tc_max, g.oc) as o:
                        body(o, 1)

            if cfg.order == "channels":
                def per_channel_tile(o0, tc):
                    setup = channel_setup(o0, tc)
                    pixel_tiles(lambda i, j0, tp: tile(i, j0, o0, tp, tc, setup))

                channel_tiles(per_channel_tile)
            else:
                def per_pixel_tile(i, j0, tp):
                    if staged is not None:
                        stage_tile(i, j0, tp)
                    channel_tiles(lambda o0, tc: tile(i, j0, o0, tp, tc, channel_setup(o0, tc)))

                pixel_tiles(per_pixel_tile)
    func = scalars.attach(builder.get())
    return func.with_attr(NO_PRESCHEDULE, True) if straight_line_tile(op, cfg) else func


#: tiles reading at most this many staged words per pixel stay C (measured: the asm steps' tied
#: accumulators cost register moves that a tile this short does not win back)
FUSED_MIN_WORDS = 2


def fused_steps(kh: int, row_words: int) -> bool:
    """Whether a staged channel-pair tile runs its word steps as asm blocks (``paired_step``):
    measured 9-10 % fewer instructions on looped rows (LDRD of two pixels), 0.5-4 % on unrolled
    windows of 3 or more words, 13 % more on 1x1 layers of 8 input channels (2 words)."""
    return kh * row_words > FUSED_MIN_WORDS


def straight_line_tile(op: OpDesc, cfg: SimdConfig) -> bool:
    """Whether a tile of the kernel is straight-line code: staged, every kernel row unrolled
    (at most ``UNROLL_WORDS`` words) and the window's rows unrolled too. Such kernels compile
    without GCC's pre-allocation scheduling (``common.NO_PRESCHEDULE``): measured 2-5 % fewer
    instructions on them; kernels with looped rows (fused asm steps) measured 2 % more."""
    if not staged_input_bytes(op, cfg) or shape_generic(op, cfg):
        return False
    rows, row_words = staged_rows(op)
    if flat_window(op):  # one segment, unrolled up to the window limit
        return True
    return row_words <= UNROLL_WORDS and (rows == 1 or rows * row_words <= UNROLL_WINDOW_WORDS)
