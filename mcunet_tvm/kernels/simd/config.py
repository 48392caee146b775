"""The schedule knobs of a SIMD kernel (:class:`SimdConfig`), the space the tuner searches, the
ops that have a SIMD kernel, and the measured limits the emitters unroll and stage by."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ...ops import Conv2D, Dense, OpDesc
from ..helium import helium_supported, helium_tile


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
    #: a few percent more instructions: see :func:`~.schedule.shape_generic`)
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
#: doubled staging (:func:`~.schedule.doubled_input`) where outputs outnumber staged words by this factor
DOUBLE_MIN_RATIO = 2
#: staged windows of at most this many words (all kernel rows) are unrolled
UNROLL_WINDOW_WORDS = 12
#: most weight words kept widened in registers across a channel tile ("channels" order, 1-row kernels)
HOIST_WORDS = 4
#: stage the input of a pixel tile (widened once) when at least this many channel tiles reuse it
STAGE_MIN_REUSE = 3
#: tiles reading at most this many staged words per pixel stay C (measured: the asm steps' tied
#: accumulators cost register moves that a tile this short does not win back)
FUSED_MIN_WORDS = 2


def simd_supported(op: OpDesc) -> bool:
    """Ops with a SIMD micro-kernel: non-depthwise conv2d (batch 1, no dilation) and dense."""
    if isinstance(op, Dense):
        return True
    return (
        isinstance(op, Conv2D)
        and not op.depthwise
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
