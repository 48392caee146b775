"""The integer operator set: one descriptor per operator kind.

A descriptor carries every *static* parameter of what the model computes
(shapes, strides, zero points, fixed-point constants that are scalars): what
the host reference and an exporter need. How this compiler computes it (the
SIMD tile, the fast requantisation, in place, ring widths) is the layer's
``kernels.choice.KernelChoice``, not part of the descriptor. Per-channel
arrays (weights, bias, multipliers, shifts) are not part of the descriptor
either: they travel as constant arguments of the kernel call, in the order
given by :attr:`OpDesc.const_args`.

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

Shape = tuple[int, ...]

#: bytes per element of each activation element type
DTYPE_BYTES = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4}
#: the activation range of each integer activation element type
INT_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}


def _prod(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True)
class OpDesc:
    """Base class: an integer operator with NHWC int8 activations (other element types at a model's
    edges: :class:`Quantize` reads float32, :class:`Dequantize` writes float32, :class:`ArgMax`
    writes indices; 16x8 models: the ``*Int16`` operators and the ``dtype`` field of the
    element-type generic ones, :class:`Reduce`)."""

    kind: ClassVar[str] = ""
    #: element type of every activation input and of the output (``DTYPE_BYTES``)
    in_dtype: ClassVar[str] = "int8"
    out_dtype: ClassVar[str] = "int8"
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

    def to_json(self) -> str:
        return _to_json(self)

    @property
    def out_bytes(self) -> int:
        return _prod(self.out_shape) * DTYPE_BYTES[self.out_dtype]


def element_typed(cls: type[OpDesc]) -> type[OpDesc]:
    """An operator whose one element type (every activation input and the output) is its ``dtype`` field:
    int8, or int16 (16x8 models). The field is left out of the JSON when int8, so int8 descriptors, their
    kernel names and tuning keys are what they were."""
    cls.in_dtype = property(lambda self: self.dtype)  # type: ignore[assignment]
    cls.out_dtype = property(lambda self: self.dtype)  # type: ignore[assignment]
    return cls


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

    def macs(self) -> int:
        kh, kw = self.kernel
        cin = 1 if self.depthwise else self.in_shape[3]
        return _prod(self.out_shape) * kh * kw * cin


@dataclass(frozen=True)
class TransposeConv2D(OpDesc):
    """TRANSPOSE_CONV + bias + per-channel requantise + clamp (TFLM's int8 reference kernel).

    Input pixel (y, x) scatters ``w[:, ky, kx, :]`` times its values onto output pixel
    ``(y * sh - pad_top + ky, x * sw - pad_left + kx)``; contributions landing outside the output
    are dropped. Weights are OHWI; ``padding`` is (top, left), all TFLM reads (the output size is
    ``out_shape``, the model's constant output-shape tensor).
    """

    kind: ClassVar[str] = "transpose_conv2d"
    const_args: ClassVar[tuple[str, ...]] = ("weight", "bias", "multiplier", "shift")

    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    in_zp: int = 0
    out_zp: int = 0
    act_min: int = -128
    act_max: int = 127
    weight_scales: tuple[float, ...] = ()

    def taps(self, axis: int) -> int:
        """How many (input, kernel tap) pairs along ``axis`` (0 rows, 1 columns) land inside the output."""
        size, out, k, s, pad = (self.in_shape[1 + axis], self.out_shape[1 + axis], self.kernel[axis],
                                self.strides[axis], self.padding[axis])
        return sum(0 <= i * s - pad + t < out for i in range(size) for t in range(k))

    def macs(self) -> int:
        return self.in_shape[0] * self.taps(0) * self.taps(1) * self.in_shape[3] * self.out_shape[3]


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

    def macs(self) -> int:
        return _prod(self.out_shape) * self.in_shape[-1]


@dataclass(frozen=True)
class BatchMatmul(OpDesc):
    """BATCH_MATMUL of int8 ``lhs`` (``in_shape``) and ``rhs`` (``rhs_shape``), TFLM's reference kernel:
    per batch (batch dimensions broadcast as numpy does) ``sum_k (lhs - lhs_zp) * (rhs - rhs_zp)`` over
    the rows of ``lhs`` (columns with ``adj_x``) and the columns of ``rhs`` (rows with ``adj_y``),
    requantised by ``multiplier/shift``, ``+ out_zp``, clamped to int8. With ``const_rhs`` the right-hand
    operand is the constant argument ``rhs``, not an activation input."""

    kind: ClassVar[str] = "batch_matmul"

    rhs_shape: Shape = ()
    adj_x: bool = False
    adj_y: bool = False
    const_rhs: bool = True
    lhs_zp: int = 0
    rhs_zp: int = 0
    out_zp: int = 0
    multiplier: int = 0
    shift: int = 0

    @property
    def num_inputs(self) -> int:  # type: ignore[override]
        return 1 if self.const_rhs else 2

    @property
    def const_args(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("rhs",) if self.const_rhs else ()

    @property
    def depth(self) -> int:
        """The accumulation depth (columns of ``lhs``, rows with ``adj_x``)."""
        return self.in_shape[-2] if self.adj_x else self.in_shape[-1]

    def macs(self) -> int:
        return _prod(self.out_shape) * self.depth


@dataclass(frozen=True)
class _RescaledSum(OpDesc):
    """TFLite's ADD arithmetic (the fields of :class:`Add` and :class:`AddInt16`): each input ``x - zp``
    shifted left by ``left_shift`` and rescaled, the sum rescaled, ``+ out_zp``, clamped."""

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
class Add(_RescaledSum):
    """Element-wise add of two int8 tensors with different scales (TFLite)."""

    kind: ClassVar[str] = "add"


#: the element-wise binary functions of :class:`Binary` (TFLite ADD, SUB, MUL, MAXIMUM, MINIMUM)
BINARY_FUNCTIONS = ("add", "sub", "mul", "maximum", "minimum")


@element_typed
@dataclass(frozen=True)
class Binary(OpDesc):
    """An element-wise ADD, SUB, MUL, MAXIMUM or MINIMUM with TFLite (numpy) broadcasting, of int8 or (``dtype``
    int16: a 16x8 model, zero points 0, ADD/SUB with ``left_shift`` 15) of int16 tensors.

    ``in_shape`` and ``in2_shape`` are the shapes of operands 0 and 1 as the model has them:
    trailing dimensions align, a dimension of 1 (or a missing leading one) broadcasts to
    ``out_shape``. The operand ``const_operand`` (0 or 1; -1: none) is a constant tensor: it is the
    kernel's constant argument ``operand``, not an activation input, so ``num_inputs`` is 1.

    ADD/SUB: both operands rescaled to Q(``left_shift``) by ``in{1,2}_multiplier/shift``, summed or
    subtracted, requantised by ``out_multiplier/shift``. MUL: ``(a - zp1) * (b - zp2)`` requantised by
    ``out_multiplier/shift``. MAXIMUM/MINIMUM: the raw values (TFLM ignores the quantisation).
    Every result is clamped to ``[act_min, act_max]`` (the fused activation).
    """

    kind: ClassVar[str] = "binary"

    function: str = "add"
    in2_shape: Shape = ()
    const_operand: int = -1
    in1_zp: int = 0
    in1_multiplier: int = 0
    in1_shift: int = 0
    in2_zp: int = 0
    in2_multiplier: int = 0
    in2_shift: int = 0
    left_shift: int = 0
    out_zp: int = 0
    out_multiplier: int = 0
    out_shift: int = 0
    act_min: int = -128
    act_max: int = 127
    dtype: str = "int8"

    def __post_init__(self) -> None:
        if self.function not in BINARY_FUNCTIONS:
            raise ValueError(f"binary function {self.function!r} (expected one of {', '.join(BINARY_FUNCTIONS)})")
        if self.const_operand not in (-1, 0, 1):
            raise ValueError(f"const_operand {self.const_operand} (expected -1, 0 or 1)")

    @property
    def num_inputs(self) -> int:  # type: ignore[override]
        return 1 if self.const_operand >= 0 else 2

    @property
    def const_args(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("operand",) if self.const_operand >= 0 else ()

    @property
    def operand_shapes(self) -> tuple[Shape, Shape]:
        """The shapes of operands 0 and 1."""
        return tuple(self.in_shape), tuple(self.in2_shape)

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        """The shapes of the activation inputs, in order (the operands that are not constant)."""
        return tuple(s for i, s in enumerate(self.operand_shapes) if i != self.const_operand)


@dataclass(frozen=True)
class Prelu(OpDesc):
    """PRELU of an int8 tensor with a constant int8 ``alpha`` (the constant argument) of ``alpha_shape``,
    broadcast to ``in_shape`` as numpy does (TFLM's ``BroadcastPrelu4DSlow``): with ``v = x - in_zp``,
    ``v >= 0`` is requantised by ``pos_multiplier/shift`` (input to output scale), ``v < 0`` as
    ``v * (alpha - alpha_zp)`` by ``neg_multiplier/shift`` (input times alpha to output scale); then
    ``+ out_zp`` and the int8 clamp."""

    kind: ClassVar[str] = "prelu"
    const_args: ClassVar[tuple[str, ...]] = ("alpha",)

    alpha_shape: Shape = ()
    in_zp: int = 0
    alpha_zp: int = 0
    out_zp: int = 0
    pos_multiplier: int = 0
    pos_shift: int = 0
    neg_multiplier: int = 0
    neg_shift: int = 0

    @property
    def operand_shapes(self) -> tuple[Shape, Shape]:
        """The shapes of the input and of alpha."""
        return tuple(self.in_shape), tuple(self.alpha_shape)


@element_typed
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
    #: element type of the input(s) and the output (``element_typed``)
    dtype: str = "int8"


@dataclass(frozen=True)
class Mean(OpDesc):
    """Mean over H and W (global average pooling) with requantisation."""

    kind: ClassVar[str] = "mean"

    in_zp: int = 0
    out_zp: int = 0
    multiplier: int = 0
    shift: int = 0


@element_typed
@dataclass(frozen=True)
class Reduce(OpDesc):
    """MEAN or SUM (``function``) over ``axes`` of a tensor of any rank, TFLM's ``QuantizedMeanOrSum``:
    ``out = clamp(MultiplyByQuantizedMultiplier(sum - in_zp * count, multiplier, shift) + out_zp)``.

    ``count`` is the number of elements summed per output; a MEAN's ``multiplier/shift`` fold in
    ``1 / count``, a SUM's are the input-to-output scale ratio. ``out_shape`` keeps the reduced
    dimensions as 1 or drops them (``keep_dims``: the same bytes). (MEAN over H and W of an NHWC
    tensor is :class:`Mean`, the same arithmetic with its own kernel.)
    """

    kind: ClassVar[str] = "reduce"

    function: str = "mean"
    axes: tuple[int, ...] = ()
    in_zp: int = 0
    out_zp: int = 0
    multiplier: int = 0
    shift: int = 0
    #: element type of the input and the output (``element_typed``; int16: clamped to int16)
    dtype: str = "int8"

    @property
    def count(self) -> int:
        """The number of input elements summed into each output."""
        return _prod(tuple(self.in_shape[a] for a in self.axes))


@dataclass(frozen=True)
class Softmax(OpDesc):
    """Softmax over the last axis, int8 in, int8 out (scale 1/256, zp -128)."""

    kind: ClassVar[str] = "softmax"

    input_multiplier: int = 0
    input_left_shift: int = 0
    diff_min: int = 0


@dataclass(frozen=True)
class Conv2DInt16(OpDesc):
    """CONV_2D / DEPTHWISE_CONV_2D of a 16x8 model (TFLM's ``reference_integer_ops`` int16 kernels):
    int16 input (zero point 0), int8 weights, ``sum(x * w) + bias`` in int64 (``acc64``: an int64 bias,
    requantised by the 64-bit ``MultiplyByQuantizedMultiplier``) or in int32 (an int32 bias, the
    32-bit one), clamped to ``[act_min, act_max]`` in int16.

    Weights are OHWI, or (KH, KW, C * depth_multiplier) for a depthwise convolution (output channel
    ``o`` reads input channel ``o // depth_multiplier``). ``padding`` is (top, left, bottom, right);
    taps outside the image are skipped.
    """

    kind: ClassVar[str] = "conv2d_int16"
    in_dtype: ClassVar[str] = "int16"
    out_dtype: ClassVar[str] = "int16"
    const_args: ClassVar[tuple[str, ...]] = ("weight", "bias", "multiplier", "shift")

    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    depthwise: bool = False
    depth_multiplier: int = 1
    acc64: bool = True
    act_min: int = -32768
    act_max: int = 32767
    weight_scales: tuple[float, ...] = ()

    def macs(self) -> int:
        kh, kw = self.kernel
        cin = 1 if self.depthwise else self.in_shape[3]
        return _prod(self.out_shape) * kh * kw * cin


@dataclass(frozen=True)
class DenseInt16(OpDesc):
    """FULLY_CONNECTED of a 16x8 model: (N, In) int16 x (Out, In) int8 + bias, the accumulator and
    requantisation of :class:`Conv2DInt16` (``acc64``), clamped in int16."""

    kind: ClassVar[str] = "dense_int16"
    in_dtype: ClassVar[str] = "int16"
    out_dtype: ClassVar[str] = "int16"
    const_args: ClassVar[tuple[str, ...]] = ("weight", "bias", "multiplier", "shift")

    acc64: bool = True
    act_min: int = -32768
    act_max: int = 32767
    weight_scales: tuple[float, ...] = ()

    def macs(self) -> int:
        return _prod(self.out_shape) * self.in_shape[-1]


@dataclass(frozen=True)
class AddInt16(_RescaledSum):
    """ADD of two int16 tensors of one shape (16x8), TFLM's general path (:class:`Add`'s arithmetic with
    ``left_shift`` 15 and int16 bounds). Not an :class:`Add`: no kernel or pass of int8 ADD applies."""

    kind: ClassVar[str] = "add_int16"
    in_dtype: ClassVar[str] = "int16"
    out_dtype: ClassVar[str] = "int16"

    left_shift: int = 15
    act_min: int = -32768
    act_max: int = 32767


@dataclass(frozen=True)
class SoftmaxInt16(OpDesc):
    """SOFTMAX of a 16x8 model over the last axis (TFLM's ``SoftmaxInt16``): ``x - max`` rescaled
    by ``input_multiplier/input_left_shift`` onto the domain of a 513-entry exp table, the
    exponentials summed, ``1 / sum`` from a 513-entry ``1 / (1 + x)`` table, the products rounded
    to Q0.15 (output scale 1/32768, zero point 0). The tables are the constant arguments."""

    kind: ClassVar[str] = "softmax_int16"
    in_dtype: ClassVar[str] = "int16"
    out_dtype: ClassVar[str] = "int16"
    const_args: ClassVar[tuple[str, ...]] = ("exp_table", "reciprocal_table")

    input_multiplier: int = 0
    input_left_shift: int = 0


@element_typed
@dataclass(frozen=True)
class Pad(OpDesc):
    """Constant padding of an NHWC tensor with ``value`` (the zero point)."""

    kind: ClassVar[str] = "pad"

    pads: tuple[tuple[int, int], ...] = ()
    value: int = 0
    #: element type of the input(s) and the output (``element_typed``)
    dtype: str = "int8"


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
class Lut(OpDesc):
    """An element-wise int8 function given by its 256 values (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU,
    a standalone RELU/RELU6, an int8 QUANTIZE): ``out = table[uint8(x)]``.

    Every such TFLite operator maps each int8 input value to one int8 output value with fixed
    quantisation, so its table (computed at compile time by TFLM's arithmetic,
    ``reference/tflite_ops.py``) is the whole operator.
    """

    kind: ClassVar[str] = "lut"
    const_args: ClassVar[tuple[str, ...]] = ("table",)

    #: the TFLite operator the table computes (reports, export)
    function: str = ""


@element_typed
@dataclass(frozen=True)
class Transpose(OpDesc):
    """TRANSPOSE: output dimension ``d`` is input dimension ``perm[d]`` (any rank)."""

    kind: ClassVar[str] = "transpose"

    perm: tuple[int, ...] = ()
    #: element type of the input(s) and the output (``element_typed``)
    dtype: str = "int8"


@element_typed
@dataclass(frozen=True)
class Concat(OpDesc):
    """CONCATENATION of ``len(in_shapes)`` tensors of one quantisation along ``axis``."""

    kind: ClassVar[str] = "concat"

    axis: int = 0
    in_shapes: tuple[Shape, ...] = ()
    #: element type of the input(s) and the output (``element_typed``)
    dtype: str = "int8"

    @property
    def num_inputs(self) -> int:  # type: ignore[override]
        return len(self.in_shapes)

    def block_offsets(self) -> tuple[int, ...] | None:
        """Byte offset of each input in the output when each is one contiguous block of it (row-major: every
        dimension before ``axis`` is 1), else None."""
        if self.windows or _prod(self.out_shape[: self.axis]) != 1:
            return None
        sizes = [_prod(s) * DTYPE_BYTES[self.dtype] for s in self.in_shapes]
        return tuple(sum(sizes[:k]) for k in range(len(sizes)))


#: the most dimensions a :class:`Slice` or :class:`MirrorPad` takes
MAX_COPY_RANK = 6


@element_typed
@dataclass(frozen=True)
class Slice(OpDesc):
    """A strided copy (SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, UNPACK): output element ``j`` is input element
    ``begin + j * strides``, dimension by dimension (a negative stride walks backwards). Input and output
    have one rank (at most :data:`MAX_COPY_RANK`); the importer adds views for removed or new axes."""

    kind: ClassVar[str] = "slice"

    begin: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    #: element type of the input(s) and the output (``element_typed``)
    dtype: str = "int8"

    def __post_init__(self) -> None:
        rank = len(self.in_shape)
        if not len(self.out_shape) == len(self.begin) == len(self.strides) == rank or rank > MAX_COPY_RANK:
            raise ValueError(f"slice of a {list(self.in_shape)} tensor to {list(self.out_shape)} with begin "
                             f"{list(self.begin)}, strides {list(self.strides)} (one of each per dimension, at "
                             f"most {MAX_COPY_RANK})")
        for size, n, b, s in zip(self.in_shape, self.out_shape, self.begin, self.strides, strict=True):
            if n < 1 or s == 0 or not (0 <= b < size and 0 <= b + (n - 1) * s < size):
                raise ValueError(f"slice of {n} elements from {b} by {s} in a dimension of {size}")

    def block_offset(self) -> int | None:
        """Byte offset of the output in the input when it is one contiguous block of it (row-major: the
        dimensions after some dimension ``k`` whole, those before it one element, ``k`` itself a run of
        stride 1), else None."""
        shape, out = self.in_shape, self.out_shape
        if self.windows:
            return None
        k = len(shape)
        while k > 0 and out[k - 1] == shape[k - 1] and (shape[k - 1] == 1 or (self.begin[k - 1] == 0
                                                                              and self.strides[k - 1] == 1)):
            k -= 1
        if (k > 0 and out[k - 1] > 1 and self.strides[k - 1] != 1) or any(n != 1 for n in out[: max(k - 1, 0)]):
            return None
        return sum(b * _prod(shape[j + 1:]) for j, b in enumerate(self.begin)) * DTYPE_BYTES[self.dtype]


#: the modes of :class:`MirrorPad` and the offset of each (TFLM's ``offset``: REFLECT leaves out the edge)
MIRROR_MODES = {"reflect": 1, "symmetric": 0}


@dataclass(frozen=True)
class MirrorPad(OpDesc):
    """MIRROR_PAD: ``pads[d] = (before, after)`` elements of dimension ``d`` mirrored from the input, the edge
    left out (``reflect``) or repeated (``symmetric``); at most ``size - 1`` (``size``) on each side."""

    kind: ClassVar[str] = "mirror_pad"

    pads: tuple[tuple[int, int], ...] = ()
    mode: str = "reflect"

    def __post_init__(self) -> None:
        if self.mode not in MIRROR_MODES:
            raise ValueError(f"mirror padding mode {self.mode!r} (expected one of {', '.join(MIRROR_MODES)})")
        limit = [d - MIRROR_MODES[self.mode] for d in self.in_shape]
        fits = len(self.pads) == len(self.in_shape) <= MAX_COPY_RANK and all(
            0 <= a <= m and 0 <= b <= m for (a, b), m in zip(self.pads, limit, strict=True))
        if not fits or tuple(self.out_shape) != tuple(d + a + b for d, (a, b) in zip(self.in_shape, self.pads,
                                                                                      strict=True)):
            raise ValueError(f"{self.mode} padding {[list(p) for p in self.pads]} of a {list(self.in_shape)} tensor "
                             f"to {list(self.out_shape)} (at most {limit} on each side)")


@dataclass(frozen=True)
class ResizeNearest(OpDesc):
    """RESIZE_NEAREST_NEIGHBOR of an NHWC tensor: output row ``y`` reads input row ``rows[y]``,
    column ``x`` input column ``cols[x]`` (the index maps, constant arguments, follow TFLM's
    float32 rule for ``align_corners`` / ``half_pixel_centers``)."""

    kind: ClassVar[str] = "resize_nearest"
    const_args: ClassVar[tuple[str, ...]] = ("rows", "cols")


@dataclass(frozen=True)
class ResizeBilinear(OpDesc):
    """RESIZE_BILINEAR of an int8 NHWC tensor, TFLM's ``ResizeBilinearInteger``: output row ``y`` blends
    input rows ``rows[y, 0]`` and ``rows[y, 1]`` with weights ``1024 - rows[y, 2]`` and ``rows[y, 2]``
    (columns likewise, ``cols``); the sum of the four weighted raw int8 values (weights in 1/2^20) is
    rounded half away from zero to an integer and wrapped to int8. The maps (int32, constant arguments)
    hold TFLM's 10-bit positions for ``align_corners`` / ``half_pixel_centers``; the quantisation is
    ignored, as TFLM does."""

    kind: ClassVar[str] = "resize_bilinear"
    const_args: ClassVar[tuple[str, ...]] = ("rows", "cols")


@dataclass(frozen=True)
class Quantize(OpDesc):
    """QUANTIZE of a float32 tensor to int8 (or int16) as TFLM's ``AffineQuantize``: ``clamp(round(x /
    scale) + zero_point)`` with the division in float32 and rounding half away from zero."""

    kind: ClassVar[str] = "quantize"
    in_dtype: ClassVar[str] = "float32"

    scale: float = 1.0
    zero_point: int = 0
    #: the output's element type: int8, or int16 (a 16x8 model's float input; clamped to int16)
    dtype: str = "int8"

    @property
    def out_dtype(self) -> str:  # type: ignore[override]
        return self.dtype


@dataclass(frozen=True)
class Dequantize(OpDesc):
    """DEQUANTIZE of an int8 tensor to float32 as TFLM: ``float(scale * (x - zero_point))``."""

    kind: ClassVar[str] = "dequantize"
    out_dtype: ClassVar[str] = "float32"

    scale: float = 1.0
    zero_point: int = 0
    #: the input's element type: int8, or int16 (a 16x8 model's float output)
    dtype: str = "int8"

    @property
    def in_dtype(self) -> str:  # type: ignore[override]
        return self.dtype


@dataclass(frozen=True)
class Requantize(OpDesc):
    """QUANTIZE between integer element types where one is int16 (16x8 models), TFLM's ``Requantize``:
    ``clamp(MultiplyByQuantizedMultiplier(x - in_zp, multiplier, shift) + out_zp)`` to ``to_dtype``.
    (int8 to int8 is a :class:`Lut` table.)"""

    kind: ClassVar[str] = "requantize"

    from_dtype: str = "int16"
    to_dtype: str = "int8"
    in_zp: int = 0
    out_zp: int = 0
    multiplier: int = 0
    shift: int = 0

    @property
    def in_dtype(self) -> str:  # type: ignore[override]
        return self.from_dtype

    @property
    def out_dtype(self) -> str:  # type: ignore[override]
        return self.to_dtype


@dataclass(frozen=True)
class ArgMax(OpDesc):
    """ARG_MAX of an int8 tensor along ``axis`` (removed from the shape): the first index of the
    maximum (TFLM's tie rule), as ``index_dtype`` (int32 or int64)."""

    kind: ClassVar[str] = "arg_max"

    axis: int = 0
    index_dtype: str = "int32"

    def __post_init__(self) -> None:
        if self.index_dtype not in ("int32", "int64"):
            raise ValueError(f"ARG_MAX index type {self.index_dtype!r} (expected int32 or int64)")

    @property
    def out_dtype(self) -> str:  # type: ignore[override]
        return self.index_dtype


@dataclass(frozen=True)
class Reshape(OpDesc):
    """A view with a new shape: no data moves (the planner aliases it)."""

    kind: ClassVar[str] = "reshape"


OP_KINDS: dict[str, type[OpDesc]] = {
    cls.kind: cls
    for cls in (Conv2D, TransposeConv2D, Dense, BatchMatmul, Add, Binary, Prelu, Pool2D, Mean, Reduce, Softmax,
                Conv2DInt16, DenseInt16, AddInt16, SoftmaxInt16,
                Pad, Insert, InputRows, Lut, Transpose, Concat, ResizeNearest, ResizeBilinear, Slice, MirrorPad,
                Quantize, Dequantize, Requantize, ArgMax, Reshape)
}


def _tuplify(value):
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


@functools.lru_cache(maxsize=4096)
def _to_json(op: OpDesc) -> str:
    """The JSON form of ``op`` (descriptors are immutable: serialised once per value)."""
    fields_ = {k: v for k, v in asdict(op).items() if not (k == "dtype" and v == "int8")}  # int8 as before
    return json.dumps({"kind": op.kind, **fields_}, sort_keys=True)


@functools.lru_cache(maxsize=4096)
def op_from_json(text: str) -> OpDesc:
    """Inverse of :meth:`OpDesc.to_json` (descriptors are immutable: parsed once per text)."""
    data = json.loads(text)
    cls = OP_KINDS[data.pop("kind")]
    names = {f.name for f in fields(cls)}
    return cls(**{k: _tuplify(v) for k, v in data.items() if k in names})
