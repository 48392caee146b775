"""The integer operator set: one descriptor per operator kind.

A descriptor carries every *static* parameter a kernel and the host
reference need (shapes, strides, zero points, fixed-point constants that are
scalars). Per-channel arrays (weights, bias, multipliers, shifts) are not part
of the descriptor: they travel as constant arguments of the kernel call, in
the order given by :attr:`OpDesc.const_args`.

Descriptors are attached to each generated TIR kernel as the JSON attribute
``mcunet.op`` (``mcunet_tvm.kernels.choice``), so the integer Relax module is
self-describing: the memory planner, the host reference and the C emitter
all read the same facts from it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

Shape = tuple[int, ...]


@functools.lru_cache(maxsize=256)
def _outputs_lag_inputs(hw, out_hw, kernel, strides, dilation, pad_tl) -> bool:
    """Whether, in row-major order, the last output reading each input pixel has an index <= the pixel's."""
    (h, w), (oh, ow) = hw, out_hw
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    last_reader = np.full(h * w, -1, np.int64)
    for ki in range(kernel[0]):
        for kj in range(kernel[1]):
            r = i * strides[0] - pad_tl[0] + ki * dilation[0]
            c = j * strides[1] - pad_tl[1] + kj * dilation[1]
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            np.maximum.at(last_reader, (r * w + c)[inside], (i * ow + j)[inside])
    return bool(np.all(last_reader <= np.arange(h * w)))


#: output width from which the row depthwise kernel keeps its ring as int16 (``Conv2D.ring_lane_bytes``)
WIDE_RING_MIN_WIDTH = 8
#: depthwise outputs per channel up to which the tap kernel runs every pixel unrolled (its border
#: taps outside the image dropped at compile time) instead of the row kernel's ring ...
SMALL_IMAGE_OUTPUTS = 25
#: ... when outputs x taps stay within this many (the unrolled code: about 10 bytes a tap)
SMALL_IMAGE_TAPS = 625


def _prod(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True)
class OpDesc:
    """Base class: an integer operator with NHWC int8 activations."""

    kind: ClassVar[str] = ""
    #: names of the constant (flash) arguments, after the activation inputs
    const_args: ClassVar[tuple[str, ...]] = ()
    #: number of activation inputs
    num_inputs: ClassVar[int] = 1

    in_shape: Shape
    out_shape: Shape
    #: quantisation provenance (float scales of the activation inputs and the
    #: output). Kernels never read them; exporters and reports do.
    in_scales: tuple[float, ...] = ()
    out_scale: float = 0.0
    #: per activation input, ``(row0, col0, buffer_h, buffer_w)`` when the op reads a window
    #: of a larger NHWC buffer (patch-based inference); empty: each input is a whole buffer
    windows: tuple[tuple[int, ...], ...] = ()

    def window(self, i: int) -> tuple[int, ...]:
        """The window of activation input ``i``, or ``()`` for a whole buffer."""
        return self.windows[i] if i < len(self.windows) else ()

    def input_buffer_shape(self, i: int, shape: Shape) -> Shape:
        """Shape of the buffer behind input ``i`` whose logical shape is ``shape``."""
        win = self.window(i)
        return (shape[0], win[2], win[3], shape[3]) if win else shape

    def macs(self) -> int:
        return 0

    def scratch_bytes(self) -> int:
        """Bytes of scratch memory the kernel needs while it runs (placed in the arena)."""
        return 0

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **asdict(self)}, sort_keys=True)

    @property
    def out_bytes(self) -> int:
        return _prod(self.out_shape)


@dataclass(frozen=True)
class Conv2D(OpDesc):
    """conv2d / depthwise conv2d + bias + per-channel requantise + clamp.

    Weights are OHWI for a regular convolution and (KH, KW, C) for a
    depthwise one (depth multiplier 1). ``padding`` is (top, left, bottom,
    right); padded taps contribute zero (i.e. the input zero point).
    """

    kind: ClassVar[str] = "conv2d"
    const_args: ClassVar[tuple[str, ...]] = ("weight", "bias", "multiplier", "shift")

    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    depthwise: bool = False
    in_zp: int = 0
    out_zp: int = 0
    act_min: int = -128
    act_max: int = 127
    weight_scales: tuple[float, ...] = ()
    #: every shift is a right shift and no int8 input can drive |acc| to 2^30: the kernel may use
    #: the shorter, equal rounding of ``kernels.requant`` (set by LowerQDQToInteger from the constants)
    fast_requant: bool = False
    #: depthwise only: the output overwrites the input channel by channel
    #: (``passes/inplace_depthwise.py``); a tap-by-tap kernel keeps one channel in a temporary
    #: unless its outputs may go straight over the input (:meth:`writes_over_input`)
    inplace: bool = False
    #: depthwise only: an image of at most ``SMALL_IMAGE_OUTPUTS`` outputs a channel runs tap by tap
    #: with every pixel unrolled (False: the row kernel's ring where it applies, less code: what
    #: ``--optimize size`` picks, ``kernels.depthwise.compact_form``)
    unroll_small_image: bool = True
    #: depthwise row kernel only: its ring may hold int16 (``ring_lane_bytes``); False where that
    #: would raise the arena's peak (``aot.ring_width``: memory first)
    wide_ring: bool = True

    def macs(self) -> int:
        kh, kw = self.kernel
        cin = 1 if self.depthwise else self.in_shape[3]
        return _prod(self.out_shape) * kh * kw * cin

    def row_buffer_shape(self) -> tuple[int, int] | None:
        """(rows, bytes per row) of the row depthwise kernel's ring of padded input rows (stride 1 or 2).

        ``2 x KH`` rows (each input row is stored twice, KH rows apart, so the
        KH rows of any window are contiguous) of one channel, padded with the
        zero point, plus slack so the last outputs of a row may read whole
        words; rows are whole words of :meth:`ring_lane_bytes` elements.
        ``None``: the kernel works tap by tap (dilated, 3x3 stride 2, other
        strides, or padding too large for the window).
        """
        kh, kw = self.kernel
        pt, pl, pb, pr = self.padding
        # stride 2 only pays for its row gathers with 5x5 and larger kernels (measured on the M7)
        strides_ok = self.strides == (1, 1) or (self.strides == (2, 2) and min(kh, kw) >= 5)
        if not (self.depthwise and strides_ok and self.dilation == (1, 1)
                and max(pt, pb) < kh and max(pl, pr) < kw and pt <= kh - self.strides[0]):
            return None
        if self.unrolls_small_image():
            return None  # the tap kernel, fully unrolled
        lanes = self.ring_lane_bytes()
        return 2 * kh, -(-(self.in_shape[2] + pl + pr + 4) * lanes // 4) * 4

    def unrolls_small_image(self) -> bool:
        """Depthwise: whether the tap kernel runs the image with every pixel unrolled (at most
        ``SMALL_IMAGE_OUTPUTS`` outputs and ``SMALL_IMAGE_TAPS`` taps a channel; 14-29 % fewer
        instructions than the ring on MCUNet's 3x3 and 5x5 outputs, where per-row work dominates)."""
        outputs = self.out_shape[1] * self.out_shape[2]
        return (self.depthwise and self.unroll_small_image and outputs <= SMALL_IMAGE_OUTPUTS
                and outputs * self.kernel[0] * self.kernel[1] <= SMALL_IMAGE_TAPS)

    def ring_lane_bytes(self) -> int:
        """Bytes per element of the row depthwise kernel's ring: int16 for outputs at least
        ``WIDE_RING_MIN_WIDTH`` wide (taps paired without widening: 5-7 % fewer instructions
        measured on MobileNetV2 layers of 18 to 72 columns), int8 for narrower ones (the int16
        ring measured 20 % more instructions on 5-column layers, where per-row work dominates)."""
        return 2 if self.wide_ring and self.out_shape[2] >= WIDE_RING_MIN_WIDTH else 1

    def scratch_bytes(self) -> int:
        """Row depthwise kernels: their ring of rows; other in-place depthwise kernels: one output
        channel, unless they may write straight over the input (:meth:`writes_over_input`)."""
        rows = self.row_buffer_shape()
        if rows:
            return rows[0] * rows[1]
        return self.out_shape[1] * self.out_shape[2] if self.inplace and not self.writes_over_input() else 0

    def writes_over_input(self) -> bool:
        """In-place tap-by-tap depthwise: whether each output may be stored straight over the input.

        In place, output pixel ``p`` of channel c lands on input pixel ``p``
        (flat row-major indices) of channel c. Computed in row-major order, that
        is safe iff every input pixel ``p`` is last read by an output at most
        ``p`` (an output reads its window before it is stored). Strided layers
        shrink the image, so outputs lag behind the rows they read (checked
        tap by tap at compile time).
        """
        if not (self.inplace and self.depthwise) or self.row_buffer_shape():
            return False
        return _outputs_lag_inputs(self.in_shape[1:3], self.out_shape[1:3], self.kernel, self.strides,
                                   self.dilation, self.padding[:2])


@dataclass(frozen=True)
class Dense(OpDesc):
    """Fully connected: (N, In) x (Out, In)^T + bias, requantise, clamp."""

    kind: ClassVar[str] = "dense"
    const_args: ClassVar[tuple[str, ...]] = ("weight", "bias", "multiplier", "shift")

    in_zp: int = 0
    out_zp: int = 0
    act_min: int = -128
    act_max: int = 127
    weight_scales: tuple[float, ...] = ()
    #: every shift is a right shift and no int8 input can drive |acc| to 2^30: the kernel may use
    #: the shorter, equal rounding of ``kernels.requant`` (set by LowerQDQToInteger from the constants)
    fast_requant: bool = False

    def macs(self) -> int:
        return _prod(self.out_shape) * self.in_shape[-1]


@dataclass(frozen=True)
class Add(OpDesc):
    """Element-wise add of two int8 tensors with different scales (TFLite)."""

    kind: ClassVar[str] = "add"
    num_inputs: ClassVar[int] = 2

    in1_zp: int = 0
    in1_multiplier: int = 0
    in1_shift: int = 0
    in2_zp: int = 0
    in2_multiplier: int = 0
    in2_shift: int = 0
    left_shift: int = 20
    out_zp: int = 0
    out_multiplier: int = 0
    out_shift: int = 0
    act_min: int = -128
    act_max: int = 127


@dataclass(frozen=True)
class Pool2D(OpDesc):
    """Average or max pooling, NHWC, same scale in and out."""

    kind: ClassVar[str] = "pool2d"

    mode: str = "avg"  # "avg" | "max"
    pool: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    act_min: int = -128
    act_max: int = 127


@dataclass(frozen=True)
class Mean(OpDesc):
    """Mean over H and W (global average pooling) with requantisation."""

    kind: ClassVar[str] = "mean"

    in_zp: int = 0
    out_zp: int = 0
    multiplier: int = 0
    shift: int = 0


@dataclass(frozen=True)
class Softmax(OpDesc):
    """Softmax over the last axis, int8 in, int8 out (scale 1/256, zp -128)."""

    kind: ClassVar[str] = "softmax"

    input_multiplier: int = 0
    input_left_shift: int = 0
    diff_min: int = 0


@dataclass(frozen=True)
class Pad(OpDesc):
    """Constant padding of an NHWC tensor with ``value`` (the zero point)."""

    kind: ClassVar[str] = "pad"

    pads: tuple[tuple[int, int], ...] = ()
    value: int = 0


@dataclass(frozen=True)
class Insert(OpDesc):
    """Copy a patch into rows/cols ``offset`` of a larger NHWC tensor (patch-based inference).

    Inputs: the patch and, unless ``first``, the tensor being assembled, whose
    storage the output takes over (only the patch's region is written).
    """

    kind: ClassVar[str] = "insert"

    offset: tuple[int, int] = (0, 0)
    first: bool = False

    @property
    def num_inputs(self) -> int:  # type: ignore[override]
        return 1 if self.first else 2


@dataclass(frozen=True)
class InputRows(OpDesc):
    """Rows ``row0 .. row0 + rows`` of the model input (patch-based inference with a streamed input).

    As a kernel it copies the rows; when the program streams its input
    (``Program.stream_input``) the entry point instead asks the application
    for them (``mcunet_read_input_rows``), so the whole input never sits in SRAM.
    """

    kind: ClassVar[str] = "input_rows"

    row0: int = 0


@dataclass(frozen=True)
class Reshape(OpDesc):
    """A view with a new shape: no data moves (the planner aliases it)."""

    kind: ClassVar[str] = "reshape"


OP_KINDS: dict[str, type[OpDesc]] = {
    cls.kind: cls for cls in (Conv2D, Dense, Add, Pool2D, Mean, Softmax, Pad, Insert, InputRows, Reshape)
}


def _tuplify(value):
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


@functools.lru_cache(maxsize=4096)
def op_from_json(text: str) -> OpDesc:
    """Inverse of :meth:`OpDesc.to_json` (descriptors are immutable: parsed once per text)."""
    data = json.loads(text)
    cls = OP_KINDS[data.pop("kind")]
    names = {f.name for f in fields(cls)}
    return cls(**{k: _tuplify(v) for k, v in data.items() if k in names})
