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
kernel of :mod:`mcunet_tvm.kernels.helium` instead (MVE cores).

The kernels are TIR written with TVM's IRBuilder; the primitives are
``call_extern``\\ s to ``mcunet_simd.h``, which maps them to GCC's ACLE
intrinsics on DSP cores and to portable C elsewhere.

The package splits the generator by concern: :mod:`.config` (the schedule
knobs and the tuner's space), :mod:`.schedule` (what a kernel does for an op
and a schedule: staging, doubling, channel pairs, records, fused steps),
:mod:`.layout` (the constant packing and the offsets the kernels read it at),
:mod:`.geometry` and :mod:`.context` (the state the emitters share, declared
as the PrimFunc's parameters), and the emitters: :mod:`.staging` (im2col of a
pixel tile's windows), :mod:`.steps` and :mod:`.paired` (word steps),
:mod:`.epilogue` (requantisation and stores), :mod:`.tiles` (the loop nest)
and :mod:`.build` (the PrimFunc).
"""

from __future__ import annotations

from .build import build as _build  # noqa: F401 (the former module's private name)
from .build import simd_kernel
from .config import (
    CONFIG_SPACE,
    DOUBLE_MIN_RATIO,
    FUSED_MIN_WORDS,
    HOIST_WORDS,
    STAGE_MIN_REUSE,
    UNROLL_WINDOW_WORDS,
    UNROLL_WORDS,
    SimdConfig,
    config_space,
    default_config,
    helium_config,
    simd_supported,
)
from .context import call as _call  # noqa: F401 (the former module's private name)
from .context import i32 as _i32  # noqa: F401 (the former module's private name)
from .geometry import Geometry as _Geometry  # noqa: F401 (the former module's private name)
from .layout import RECORD_CONST_WORDS, pack_records, pair_weights, record_words
from .schedule import (
    channel_records,
    doubled_input,
    flat_window,
    fused_steps,
    paired_weights,
    record_pairs,
    shape_generic,
    staged_input_bytes,
    staged_rows,
    straight_line_tile,
)
from .schedule import generic_reduction as _generic_reduction  # noqa: F401 (the former module's private name)

__all__ = [
    "CONFIG_SPACE",
    "DOUBLE_MIN_RATIO",
    "FUSED_MIN_WORDS",
    "HOIST_WORDS",
    "RECORD_CONST_WORDS",
    "STAGE_MIN_REUSE",
    "UNROLL_WINDOW_WORDS",
    "UNROLL_WORDS",
    "SimdConfig",
    "channel_records",
    "config_space",
    "default_config",
    "doubled_input",
    "flat_window",
    "fused_steps",
    "helium_config",
    "pack_records",
    "pair_weights",
    "paired_weights",
    "record_pairs",
    "record_words",
    "shape_generic",
    "simd_kernel",
    "simd_supported",
    "staged_input_bytes",
    "staged_rows",
    "straight_line_tile",
]
