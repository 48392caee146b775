"""What a SIMD kernel does for one op and schedule: the decisions every emitter reads.

Pure predicates of ``(op, cfg)``: whether the pixel tile's input is staged
(widened once into arena scratch) and how (per kernel row or as one flat
window, doubled or not), whether the weights come in channel-pair order and
in channel-pair records, whether the kernel takes the layer's sizes at run
time, and whether its word steps are asm blocks or its tile straight-line
code. They also size the scratch and decide the constant packing
(``kernels.kernel_consts``), so the planner and the exporter agree with the kernel.
"""

from __future__ import annotations

from ...ops import Conv2D, OpDesc
from .config import (
    DOUBLE_MIN_RATIO,
    FUSED_MIN_WORDS,
    STAGE_MIN_REUSE,
    UNROLL_WINDOW_WORDS,
    UNROLL_WORDS,
    SimdConfig,
    simd_supported,
)
from .geometry import Geometry


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
    g = Geometry.of(op)
    whole = -(-(g.kh * g.kw * g.c) // 4)
    return g.kh > 1 and whole < g.kh * -(-(g.kw * g.c) // 4) and whole <= UNROLL_WINDOW_WORDS


def staged_rows(op: OpDesc) -> tuple[int, int]:
    """(segments, words per segment) a staged kernel widens per pixel: one per kernel row, or one
    for the whole window (:func:`flat_window`)."""
    g = Geometry.of(op)
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
    g = Geometry.of(op)
    if -(-g.oc // cfg.channels) < STAGE_MIN_REUSE:
        return 0
    rows, words = staged_rows(op)
    return cfg.pixels * rows * words * 8


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


def generic_reduction(g: Geometry) -> bool:
    """A reduction of an even number of words, longer than the unrolling limit: it runs as a loop
    over word pairs anyway, so its length may be a run-time value (with channel-pair weights,
    whose rows sit at constant offsets from one another)."""
    return g.kw * g.c % 8 == 0 and g.kw * g.c // 4 > UNROLL_WORDS


def doubled_input(op: OpDesc, cfg: SimdConfig | None, fast: bool) -> bool:
    """Whether a staged kernel stages ``2 (x - zp)`` (and starts from ``2 bias``).

    The accumulator then holds twice the sum, which the fast requantisation
    needs anyway (SMMLAR of ``2 acc``): one SADD16 per staged word instead of
    one shift per output. Chosen where outputs outnumber staged words (per
    pixel: ``oc`` against ``2 KH ceil(KW C / 4)``, with a margin: measured), and only for layers whose
    accumulator bound lets the fast form run (``fast``: ``KernelChoice.fast_requant``).
    Shape-generic kernels keep one form for every layer.
    """
    if not (fast and staged_input_bytes(op, cfg)) or cfg.shared:
        return False
    g = Geometry.of(op)
    rows, words = staged_rows(op)
    return g.oc > DOUBLE_MIN_RATIO * 2 * rows * words


def paired_weights(op: OpDesc, cfg: SimdConfig | None) -> bool:
    """Whether the kernel takes its weights in channel-pair order (:func:`~.layout.pair_weights`).

    Staged kernels with an even channel tile do: one weight word then holds
    the lanes of two output channels for one staged input word, so a word step
    keeps two widened weights live instead of four, and the widened input word
    of each pixel is loaded right where it is used. The eight accumulators of
    a 4x2 tile, two weights, one input word and two pointers fit the core's
    registers without spilling.
    """
    return bool(staged_input_bytes(op, cfg)) and cfg is not None and cfg.channels % 2 == 0


def channel_records(op: OpDesc, cfg: SimdConfig | None, fast: bool) -> bool:
    """Whether the kernel takes one array of channel-pair records instead of four constant arrays.

    A record holds everything a channel tile needs (:func:`record_pairs`
    channel pairs): its pair-ordered weights (:func:`~.layout.pair_weights`; with two
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
    return paired_weights(op, cfg) and fast and not cfg.shared


def record_pairs(cfg: SimdConfig) -> int:
    """Channel pairs per record: those of a channel tile (1 or 2)."""
    return 2 if cfg.channels >= 4 else 1


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
