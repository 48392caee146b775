"""Import an int8 (or 16x8) ``.tflite`` model straight into the integer IR (``mcunet_tvm.ir``).

The flatbuffer is read by :mod:`.reader`; each TFLite operator, in file order,
goes to the converter registered for its builtin name in :data:`CONVERTERS`,
which checks what the kernel needs (types, quantisation, shapes against the
tensors the file declares) and emits kernel calls through
:mod:`mcunet_tvm.quant.int8_ops`, the same home of TFLM's parameter rules the
QDQ lowering uses. No QDQ form and no TVM importer sit in between: what the
file says is what the descriptors hold.

Folded at import: RESHAPE/SQUEEZE/EXPAND_DIMS become views; FULLY_CONNECTED
on an N-D input reads it flattened to (rows, depth); SLICE, STRIDED_SLICE,
SPLIT, SPLIT_V and UNPACK become strided copies (``Slice``, one per output,
viewed without shrunk axes), PACK views and one CONCATENATION; a DEPTHWISE_CONV_2D
of depth multiplier M > 1 on several channels reads its input with each channel
repeated M times (one CONCATENATION); a BATCH_MATMUL whose constant right-hand
operand allows it is a FULLY_CONNECTED; a standalone RELU/RELU6/
RELU_N1_TO_1 with its input's quantisation tightens the producer's clamp when
nothing else reads the producer; a PAD/PADV2 of H and W with the zero point
that only a CONV_2D or DEPTHWISE_CONV_2D reads (PyTorch's explicit padding
before a VALID convolution) becomes that convolution's padding. Pooling
layers take no PAD: TFLM's average pooling divides by the taps inside the
image, so the taps a PAD wrote would stop counting. Float32 only at the model's
edges: a QUANTIZE of a float32 activation and a DEQUANTIZE to float32 are kernels
of their own (``ops.Quantize``, ``ops.Dequantize``); any other float computation
(a float or dynamic-range model) is refused at its first operator. 16x8 models: an
operator with an INT16 activation goes to its converter in :data:`INT16_CONVERTERS`, or
(:data:`INT16_GENERIC`) to its int8 converter with int16 elements (``_Import.elem``);
any other is refused naming it. Errors name the operator (index, output tensor) and say
what is not supported and what is.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from ...errors import McunetError, ModelFileError, UnsupportedModelError
from ...ir import INPUT_QPARAMS, OUTPUT_QPARAMS, emit_call, new_main
from ...kernels.movement import bilinear_bound
from ...ops import (
    INT_RANGE,
    MAX_COPY_RANK,
    MIRROR_MODES,
    ArgMax,
    Concat,
    Dequantize,
    MirrorPad,
    Pad,
    Pool2D,
    Quantize,
    Requantize,
    Reshape,
    ResizeBilinear,
    ResizeNearest,
    Slice,
    Transpose,
)
from ...quant import fixedpoint, int8_ops
from ...quant.int8_ops import Lowered, QParams
from ...reference import tflite_ops
from .reader import Model, Operator, Tensor, read_model

FLOAT_HINT = (
    "convert it with full-integer quantisation: converter.optimizations = [tf.lite.Optimize.DEFAULT], "
    "converter.representative_dataset = ..., converter.target_spec.supported_ops = "
    "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], converter.inference_input_type = tf.int8, "
    "converter.inference_output_type = tf.int8"
)
_INT16_HINT = "convert with int8 activations (TFLITE_BUILTINS_INT8), not 16x8 quantisation"


@dataclass(frozen=True)
class _Step:
    """One integer operator of the imported graph, on tensor ids (negative ids: tensors the file
    does not have, such as the 2-D result of a FULLY_CONNECTED before its N-D view)."""

    lowered: Lowered
    inputs: tuple[int, ...]
    output: int


@dataclass
class _Import:
    """The state of one import: the model read, the integer steps so far, each tensor's shape.

    Converters only append steps (plain data); :func:`_build` turns them into the module, so a
    refused operator leaves nothing half built.
    """

    model: Model
    steps: list[_Step] = field(default_factory=list)
    #: activation tensor id -> shape as computed (checked against what the file declares)
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: tensor id -> index in ``steps`` of the step that writes it
    producer: dict[int, int] = field(default_factory=dict)
    #: tensor id -> number of operators reading it (model outputs count once)
    readers: Counter = field(default_factory=Counter)
    hidden: int = 0
    #: the activation element type of the operator being converted: INT8, or INT16 for the 16x8
    #: variant of an element-type generic converter (:data:`INT16_GENERIC`)
    elem: str = "INT8"

    @property
    def dtype(self) -> str:
        """The element type of the operator being converted, as descriptors spell it (``int8``, ``int16``)."""
        return self.elem.lower()

    # ---- reading ----------------------------------------------------------------------------
    def tensor(self, op: Operator, j: int, kind: str = "input") -> Tensor:
        indices = op.inputs if kind == "input" else op.outputs
        if j >= len(indices) or indices[j] < 0:
            raise self.error(op, f"{op.name} has no {kind} {j}")
        return self.model.tensors[indices[j]]

    def optional(self, op: Operator, j: int) -> Tensor | None:
        return self.model.tensors[op.inputs[j]] if j < len(op.inputs) and op.inputs[j] >= 0 else None

    def activation(self, op: Operator, j: int, dtype: str | None = None) -> Tensor:
        """Input ``j`` of ``op``, an activation of the operator's element type (int8; int16 in a 16x8
        variant), or of ``dtype``, some earlier operator (or the model input) wrote."""
        t = self.tensor(op, j)
        if t.is_const:
            raise self.unsupported(op, f"input {j} ('{t.name}') is a constant tensor where {op.name} "
                                       "takes an activation")
        if dtype is None:
            self.int8(op, t)
        elif t.dtype != dtype:
            raise self.unsupported(op, f"tensor '{t.name}' is {t.dtype}: {op.name} is supported on {dtype} here")
        if t.index not in self.shapes:
            raise self.error(op, f"input tensor '{t.name}' is read before any operator writes it")
        return t

    def shape(self, t: Tensor) -> tuple[int, ...]:
        return self.shapes[t.index]

    def const(self, op: Operator, j: int, what: str) -> Tensor:
        t = self.tensor(op, j)
        if not t.is_const:
            raise self.unsupported(op, f"the {what} ('{t.name}') is computed at run time; only constant "
                                       f"{what}s are supported")
        return t

    def int8(self, op: Operator, t: Tensor) -> None:
        """Refuse ``t`` unless it is of the operator's element type (int8, or int16 in a 16x8 variant)."""
        if self.elem == "INT16":
            if t.dtype != "INT16":
                raise self.unsupported(op, f"tensor '{t.name}' is {t.dtype} where the 16x8 {op.name} takes INT16 "
                                           "(mixed int8/int16 tensors are not supported)")
            return
        if t.dtype == "INT16":
            raise self.unsupported(op, f"tensor '{t.name}' is INT16 (16x8 quantisation): the int16 variant of "
                                       f"{op.name} is not supported ({op.name} is supported with int8 "
                                       f"activations; int16 variants: {', '.join(INT16_OPS)})", _INT16_HINT)
        if t.dtype != "INT8":
            raise self.unsupported(op, f"tensor '{t.name}' is {t.dtype}: {op.name} is supported on int8 "
                                       "tensors only", FLOAT_HINT)

    def qparams(self, op: Operator, t: Tensor) -> QParams:
        q = t.quantization
        if q is None:
            raise self.unsupported(op, f"tensor '{t.name}' has no quantisation parameters", FLOAT_HINT)
        if not q.per_tensor:
            raise self.unsupported(op, f"activation tensor '{t.name}' is quantised per channel; TFLite "
                                       "activations are per tensor")
        lo, hi = (-32768, 32767) if self.elem == "INT16" else (-128, 127)
        if not lo <= q.zero_points[0] <= hi:
            raise self.error(op, f"{self.dtype} tensor '{t.name}' has zero point {q.zero_points[0]}")
        return QParams(q.scales[0], q.zero_points[0])

    def output(self, op: Operator, j: int = 0) -> tuple[Tensor, QParams]:
        t = self.tensor(op, j, "output")
        self.int8(op, t)
        return t, self.qparams(op, t)

    def qparams16(self, op: Operator, t: Tensor, symmetric: bool = True) -> QParams:
        """The per-tensor quantisation of an INT16 tensor ``t`` (``symmetric``: zero point 0, what TFLM's
        int16 kernel of ``op`` requires)."""
        if t.dtype != "INT16":
            raise self.unsupported(op, f"tensor '{t.name}' is {t.dtype} where the 16x8 {op.name} takes INT16 "
                                       "(mixed int8/int16 operands are not supported)")
        q = t.quantization
        if q is None or not q.per_tensor:
            how = "not quantised" if q is None else "quantised per channel"
            raise self.unsupported(op, f"int16 tensor '{t.name}' is {how}: 16x8 activations are quantised per tensor")
        if symmetric and q.zero_points[0] != 0:
            raise self.unsupported(op, f"int16 tensor '{t.name}' has zero point {q.zero_points[0]}: TF Lite Micro's "
                                       f"int16 {op.name} takes symmetric (zero point 0) int16 tensors")
        if not -32768 <= q.zero_points[0] <= 32767:
            raise self.error(op, f"int16 tensor '{t.name}' has zero point {q.zero_points[0]}")
        return QParams(q.scales[0], q.zero_points[0])

    def activation16(self, op: Operator, j: int, symmetric: bool = True) -> tuple[Tensor, QParams]:
        """Input ``j`` of a 16x8 ``op``: an INT16 activation and its quantisation."""
        t = self.activation(op, j, "INT16")
        return t, self.qparams16(op, t, symmetric)

    def output16(self, op: Operator, symmetric: bool = True) -> tuple[Tensor, QParams]:
        t = self.tensor(op, 0, "output")
        return t, self.qparams16(op, t, symmetric)

    # ---- writing ----------------------------------------------------------------------------
    def emit(self, op: Operator, lowered: Lowered, inputs: list[int], out: int, declared: Tensor | None) -> None:
        """Append ``lowered`` reading tensor ids ``inputs`` and writing ``out`` (file tensor ``declared``)."""
        if declared is not None and declared.shape and tuple(declared.shape) != tuple(lowered.op.out_shape):
            raise self.error(op, f"the file declares output tensor '{declared.name}' as {list(declared.shape)} "
                                 f"but {op.name} computes {list(lowered.op.out_shape)}")
        self.producer[out] = len(self.steps)
        self.steps.append(_Step(lowered, tuple(inputs), out))
        self.shapes[out] = tuple(lowered.op.out_shape)

    def kernel(self, op: Operator, lowered: Lowered, inputs: list[int], out: Tensor) -> None:
        self.emit(op, lowered, inputs, out.index, out)

    def view(self, op: Operator, src: int, shape: tuple[int, ...], out: Tensor | None = None) -> int:
        """Tensor ``src`` seen with ``shape`` (no data moves): the id of the view (``out``'s, or a new one)."""
        have = self.shapes[src]
        if math.prod(have) != math.prod(shape):
            raise self.error(op, f"cannot view a {list(have)} tensor as {list(shape)}")
        target = out.index if out is not None else self.new_id()
        self.emit(op, Lowered(Reshape(have, tuple(shape))), [src], target, out)
        return target

    def new_id(self) -> int:
        self.hidden -= 1
        return self.hidden

    # ---- errors -----------------------------------------------------------------------------
    def unsupported(self, op: Operator, what: str, hint: str = "") -> UnsupportedModelError:
        return UnsupportedModelError(what, where=self.model.where(op), hint=hint)

    def error(self, op: Operator, what: str) -> McunetError:
        return ModelFileError(f"the model is inconsistent: {what}", where=self.model.where(op),
                              hint="re-export the model with the TF Lite converter")


Converter = Callable[[_Import, Operator], None]


# ---- geometry (TFLite's padding rules) --------------------------------------------------------
def _same_or_valid(op: Operator, ctx: _Import, in_hw, kernel, strides, dilation) -> tuple[tuple[int, int],
                                                                                         tuple[int, ...]]:
    """Output (H, W) and padding (top, left, bottom, right) as TFLite's ``ComputePaddingHeightWidth``."""
    padding = op.options.get("Padding", "VALID")
    if padding not in ("SAME", "VALID"):
        raise ctx.unsupported(op, f"padding {padding}")
    out, pads = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilation, strict=True):
        if s < 1 or d < 1 or k < 1:
            raise ctx.error(op, f"stride {s}, dilation {d}, kernel {k}")
        eff = (k - 1) * d + 1
        n = (size + s - 1) // s if padding == "SAME" else (size + s - eff) // s
        if n < 1:
            raise ctx.error(op, f"a {k}-tap window (dilation {d}) does not fit an input of {size}")
        total = max((n - 1) * s + eff - size, 0)
        out.append(n)
        pads.append((total // 2, total - total // 2))
    return (out[0], out[1]), (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _act(ctx: _Import, op: Operator, q: QParams) -> tuple[int, int]:
    """The clamp of ``op``'s fused activation on its output (int8, or int16 in a 16x8 variant)."""
    act = op.options.get("FusedActivationFunction", "NONE")
    if act not in int8_ops.ACTIVATIONS:
        raise ctx.unsupported(op, f"fused activation {act} is not supported on {ctx.dtype} "
                                  f"(supported: {', '.join(int8_ops.ACTIVATIONS)})")
    if ctx.elem == "INT16":
        return int8_ops.activation_range_int16(act, q)
    return int8_ops.activation_range(act, q)


def _bias(ctx: _Import, op: Operator, j: int, n: int) -> np.ndarray | None:
    t = ctx.optional(op, j)
    if t is None:
        return None
    if not t.is_const or t.dtype != "INT32" or t.data.size != n:
        raise ctx.unsupported(op, f"bias '{t.name}' must be a constant int32 vector of {n} values "
                                  f"(it is {'a constant' if t.is_const else 'computed'} {t.dtype} {list(t.shape)})")
    return t.data.reshape(n)


def _weight_scales(ctx: _Import, op: Operator, w: Tensor, axis: int, n: int) -> np.ndarray:
    q = w.quantization
    if w.dtype != "INT8" or q is None:
        raise ctx.unsupported(op, f"weights '{w.name}' are {w.dtype}"
                                  f"{'' if q else ' without quantisation'}: only int8 weights are supported",
                              FLOAT_HINT)
    if any(z != 0 for z in q.zero_points):
        raise ctx.unsupported(op, f"weights '{w.name}' have non-zero zero points (TFLite int8 weights are "
                                  "symmetric)")
    if q.per_tensor:
        return np.full(n, q.scales[0], np.float32)
    if q.axis % len(w.shape) != axis % len(w.shape) or len(q.scales) != n:
        raise ctx.unsupported(op, f"weights '{w.name}' are quantised per channel along dimension {q.axis} "
                                  f"({len(q.scales)} scales); {op.name} needs {n} along dimension {axis}")
    return np.asarray(q.scales, np.float32)


# ---- converters --------------------------------------------------------------------------------
def _window_attrs(op: Operator) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((op.options.get("StrideH", 1), op.options.get("StrideW", 1)),
            (op.options.get("DilationHFactor", 1), op.options.get("DilationWFactor", 1)))


def _fold_pad(ctx: _Import, op: Operator, xt: Tensor, padding: tuple[int, int, int, int]
              ) -> tuple[int, tuple[int, ...], tuple[int, int, int, int]]:
    """The PAD (or PADV2) before a convolution folded into the convolution's padding.

    Converters from PyTorch write an explicit PAD and a VALID convolution. When the PAD pads only H and W,
    with the convolution's input zero point (what a padded tap holds in TFLite's own padding: it adds
    nothing), and nothing else reads the padded tensor (not a model output), the convolution reads the PAD's
    input with the PAD's widths added to its own ``padding`` and the PAD step is dropped: no padded copy in
    the arena, the same bytes as TF Lite Micro. Returns the tensor id the convolution reads, its shape and
    the (top, left, bottom, right) padding; the unchanged input otherwise.
    """
    index = ctx.producer.get(xt.index)
    pad = ctx.steps[index].lowered.op if index is not None else None
    if (not isinstance(pad, Pad) or len(pad.pads) != 4 or ctx.readers[xt.index] != 1
            or xt.index in ctx.model.outputs or pad.value != ctx.qparams(op, xt).zero_point):
        return xt.index, ctx.shape(xt), padding
    (n0, n1), (top, bottom), (left, right), (c0, c1) = pad.pads
    if n0 or n1 or c0 or c1:
        return xt.index, ctx.shape(xt), padding
    src = ctx.steps.pop(index).inputs[0]
    del ctx.producer[xt.index], ctx.shapes[xt.index]
    ctx.producer.update({t: k - 1 for t, k in ctx.producer.items() if k > index})
    pt, pl, pb, pr = padding
    return src, tuple(pad.in_shape), (pt + top, pl + left, pb + bottom, pr + right)


def _conv2d(ctx: _Import, op: Operator) -> None:
    """int8, per-tensor or per-channel weights, SAME/VALID, any strides and dilation, non-square kernels, bias
    optional, fused NONE/RELU/RELU6/RELU_N1_TO_1 (grouped: refused)."""
    xt = ctx.activation(op, 0)
    w = ctx.const(op, 1, "filter")
    out, oq = ctx.output(op)
    n, h, wd, cin = _nhwc(ctx, op, xt)
    if len(w.shape) != 4:
        raise ctx.error(op, f"filter '{w.name}' has shape {list(w.shape)}, expected OHWI")
    cout, kh, kw, wcin = w.shape
    if wcin != cin:
        groups = cin // wcin if wcin and cin % wcin == 0 else "?"
        raise ctx.unsupported(op, f"grouped convolution ({groups} groups: input depth {cin}, filter depth "
                                  f"{wcin}) is not supported", "use a depthwise or a regular convolution")
    strides, dilation = _window_attrs(op)
    (oh, ow), padding = _same_or_valid(op, ctx, (h, wd), (kh, kw), strides, dilation)
    src, in_shape, padding = _fold_pad(ctx, op, xt, padding)
    lowered = int8_ops.conv2d(
        in_shape, (n, oh, ow, cout), ctx.qparams(op, xt), oq, w.data, _weight_scales(ctx, op, w, 0, cout),
        _bias(ctx, op, 2, cout), strides=strides, padding=padding, dilation=dilation, depthwise=False,
        act=_act(ctx, op, oq),
    )
    ctx.kernel(op, lowered, [src], out)


def _depthwise(ctx: _Import, op: Operator) -> None:
    """int8, any depth multiplier M, per-channel weights, SAME/VALID, strides, dilation, fused activations.
    M > 1 on one input channel: a regular convolution; on C > 1 channels: the input's channels repeated M times
    (a CONCATENATION copy, one more H x W x C x M buffer) and the multiplier-1 depthwise kernel on them."""
    xt = ctx.activation(op, 0)
    w = ctx.const(op, 1, "filter")
    out, oq = ctx.output(op)
    n, h, wd, cin = _nhwc(ctx, op, xt)
    if len(w.shape) != 4 or w.shape[0] != 1:
        raise ctx.error(op, f"depthwise filter '{w.name}' has shape {list(w.shape)}, expected (1, KH, KW, C)")
    _, kh, kw, cout = w.shape
    strides, dilation = _window_attrs(op)
    if cin == 1 and cout > 1:  # one input channel: a regular convolution with OHWI (M, KH, KW, 1) filters
        (oh, ow), padding = _same_or_valid(op, ctx, (h, wd), (kh, kw), strides, dilation)
        src, in_shape, padding = _fold_pad(ctx, op, xt, padding)
        lowered = int8_ops.conv2d(
            in_shape, (n, oh, ow, cout), ctx.qparams(op, xt), oq, np.transpose(w.data, (3, 1, 2, 0)),
            _weight_scales(ctx, op, w, 3, cout), _bias(ctx, op, 2, cout), strides=strides, padding=padding,
            dilation=dilation, depthwise=False, act=_act(ctx, op, oq),
        )
        ctx.kernel(op, lowered, [src], out)
        return
    if cin < 1 or cout % cin:
        raise ctx.error(op, f"depthwise filter of {cout} channels on an input of {cin}: not a depth multiplier")
    (oh, ow), padding = _same_or_valid(op, ctx, (h, wd), (kh, kw), strides, dilation)
    src, in_shape, padding = _fold_pad(ctx, op, xt, padding)
    if cout != cin:
        src = _repeat_channels(ctx, op, src, in_shape, cout // cin)
    lowered = int8_ops.conv2d(
        (*in_shape[:3], cout), (n, oh, ow, cout), ctx.qparams(op, xt), oq, w.data.reshape(kh, kw, cout),
        _weight_scales(ctx, op, w, 3, cout), _bias(ctx, op, 2, cout), strides=strides, padding=padding,
        dilation=dilation, depthwise=True, act=_act(ctx, op, oq),
    )
    ctx.kernel(op, lowered, [src], out)


def _repeat_channels(ctx: _Import, op: Operator, src: int, shape: tuple[int, int, int, int], m: int) -> int:
    """Tensor ``src`` (NHWC) with each channel repeated ``m`` times in place (channel ``c * m + k`` is channel
    ``c``: a depthwise filter's order): ``m`` copies concatenated along a new last axis, seen as NHWC."""
    n, h, w, c = shape
    column = ctx.view(op, src, (n, h, w, c, 1))
    repeated = ctx.new_id()
    concat = Concat((n, h, w, c, 1), (n, h, w, c, m), axis=4, in_shapes=((n, h, w, c, 1),) * m)
    ctx.emit(op, Lowered(concat), [column] * m, repeated, None)
    return ctx.view(op, repeated, (n, h, w, c * m))


def _transpose_conv(ctx: _Import, op: Operator) -> None:
    """int8, per-tensor or per-channel weights, SAME/VALID, any strides, non-square kernels, bias optional, fused
    NONE/RELU/RELU6/RELU_N1_TO_1; the output shape (input 0) must be a constant."""
    shape_t = ctx.const(op, 0, "output shape")
    w = ctx.const(op, 1, "filter")
    xt = ctx.activation(op, 2)
    out, oq = ctx.output(op)
    n, h, wd, cin = _nhwc(ctx, op, xt)
    if len(w.shape) != 4:
        raise ctx.error(op, f"filter '{w.name}' has shape {list(w.shape)}, expected OHWI")
    cout, kh, kw, wcin = w.shape
    result = tuple(int(d) for d in shape_t.data.reshape(-1))
    if len(result) != 4 or result[0] != n or result[3] != cout or min(result) < 1:
        raise ctx.error(op, f"output shape {list(result)} for a {[n, h, wd, cin]} input and {cout} filters")
    if wcin != cin:
        raise ctx.error(op, f"filter '{w.name}' has depth {wcin} for an input of depth {cin}")
    strides, _ = _window_attrs(op)
    padding = op.options.get("Padding", "VALID")
    if padding not in ("SAME", "VALID") or min(strides) < 1:
        raise ctx.unsupported(op, f"padding {padding}, strides {list(strides)}")
    pads = int8_ops.transpose_conv_padding(result[1:3], (kh, kw), strides, padding)
    lowered = int8_ops.transpose_conv(
        (n, h, wd, cin), result, ctx.qparams(op, xt), oq, w.data, _weight_scales(ctx, op, w, 0, cout),
        _bias(ctx, op, 3, cout), strides=strides, padding=pads, act=_act(ctx, op, oq),
    )
    ctx.kernel(op, lowered, [xt.index], out)


def _fully_connected(ctx: _Import, op: Operator) -> None:
    """int8, N-D input read as rows of the weights' depth, `keep_num_dims` either way, per-tensor or per-channel
    weights, bias optional, fused activations."""
    xt = ctx.activation(op, 0)
    w = ctx.const(op, 1, "weights")
    out, oq = ctx.output(op)
    if op.options.get("WeightsFormat", 0) != 0:
        raise ctx.unsupported(op, "FULLY_CONNECTED with shuffled (non-default) weights is not supported")
    if len(w.shape) != 2:
        raise ctx.error(op, f"weights '{w.name}' have shape {list(w.shape)}, expected (outputs, depth)")
    units, depth = w.shape
    shape, rows, flat = _rows_of(ctx, op, xt, depth)
    lowered = int8_ops.dense((rows, depth), (rows, units), ctx.qparams(op, xt), oq, w.data,
                             _weight_scales(ctx, op, w, 0, units), _bias(ctx, op, 2, units), _act(ctx, op, oq))
    _emit_rows(ctx, op, lowered, flat, (*shape[:-1], units), out)


def _rows_of(ctx: _Import, op: Operator, xt, depth: int) -> tuple[tuple[int, ...], int, int]:
    """FULLY_CONNECTED's input read as rows of ``depth``: its shape, the row count and the (viewed) tensor."""
    shape = ctx.shape(xt)
    if depth == 0 or math.prod(shape) % depth:
        raise ctx.error(op, f"an input of {list(shape)} cannot be read as rows of depth {depth}")
    rows = math.prod(shape) // depth
    return shape, rows, ctx.view(op, xt.index, (rows, depth)) if shape != (rows, depth) else xt.index


def _emit_rows(ctx: _Import, op: Operator, lowered, flat: int, kept: tuple[int, ...], out) -> None:
    """Emit FULLY_CONNECTED's (rows, units) kernel; with `keep_num_dims`, its output viewed as ``kept``
    (the input's leading dimensions), checked against the shape the file declares."""
    rows_units = tuple(lowered.op.out_shape)
    result = kept if op.options.get("KeepNumDims", False) else rows_units
    if not out.shape or tuple(out.shape) == rows_units:
        ctx.kernel(op, lowered, [flat], out)
        return
    if tuple(out.shape) != result:
        raise ctx.error(op, f"the file declares output tensor '{out.name}' as {list(out.shape)} but "
                            f"FULLY_CONNECTED computes {list(result)}")
    rows_id = ctx.new_id()
    ctx.emit(op, lowered, [flat], rows_id, None)
    ctx.view(op, rows_id, result, out)


def _batch_matmul(ctx: _Import, op: Operator) -> None:
    """int8, ranks 2 to 5, `adj_x`/`adj_y`, batch dimensions broadcast; a constant right-hand operand whose
    batch dimensions are all 1 and whose values less its zero point fit int8: a fully connected layer
    (after a transpose for `adj_x`); otherwise its own kernel, the right-hand operand constant or computed
    at run time (two constants: refused)."""
    (lt, ql, sl), (rt, qr, sr) = (_operand(ctx, op, j) for j in (0, 1))
    out, oq = ctx.output(op)
    if lt.is_const:
        raise ctx.unsupported(op, f"the left-hand operand '{lt.name}' of BATCH_MATMUL is a constant: only the "
                                  "right-hand one may be")
    adj_x, adj_y = bool(op.options.get("AdjX", False)), bool(op.options.get("AdjY", False))
    try:
        lowered = int8_ops.batch_matmul(sl, sr, adj_x, adj_y, ql, qr, oq, rt.data if rt.is_const else None)
    except ValueError as exc:
        raise ctx.unsupported(op, str(exc)) from None
    dense = int8_ops.batch_matmul_as_dense(lowered.op, rt.data) if rt.is_const else None
    if dense is None:
        ctx.kernel(op, lowered, [lt.index] if rt.is_const else [lt.index, rt.index], out)
        return
    src = lt.index
    if adj_x:  # the matrices' rows and columns swapped: a copy
        perm = (*range(len(sl) - 2), len(sl) - 1, len(sl) - 2)
        swapped = (*sl[:-2], sl[-1], sl[-2])
        src = ctx.new_id()
        ctx.emit(op, Lowered(Transpose(sl, swapped, perm=perm)), [lt.index], src, None)
    flat = ctx.view(op, src, dense.op.in_shape)
    rows = ctx.new_id()
    ctx.emit(op, dense, [flat], rows, None)
    ctx.view(op, rows, lowered.op.out_shape, out)


def _operand(ctx: _Import, op: Operator, j: int) -> tuple[Tensor, QParams, tuple[int, ...]]:
    """Operand ``j`` of a binary operator: an activation or a constant tensor of the operator's element type
    (int8; int16 in a 16x8 model), its quantisation and shape."""
    t = ctx.tensor(op, j)
    if not t.is_const:
        t = ctx.activation(op, j)
        return t, ctx.qparams(op, t), ctx.shape(t)
    ctx.int8(op, t)
    q = t.quantization
    if q is None:
        raise ctx.unsupported(op, f"constant operand '{t.name}' has no quantisation parameters", FLOAT_HINT)
    if not q.per_tensor:
        raise ctx.unsupported(op, f"constant operand '{t.name}' is quantised per channel ({len(q.scales)} scales): "
                                  f"{op.name} takes operands quantised per tensor")
    info = np.iinfo(ctx.dtype)
    if not info.min <= q.zero_points[0] <= info.max:
        raise ctx.error(op, f"{ctx.dtype} tensor '{t.name}' has zero point {q.zero_points[0]}")
    return t, QParams(q.scales[0], q.zero_points[0]), tuple(int(d) for d in t.shape)


def _binary_op(ctx: _Import, op: Operator, function: str) -> None:
    """A broadcasting binary operator: two activations, or an activation and a constant (either side)."""
    (at, qa, sa), (bt, qb, sb) = (_operand(ctx, op, j) for j in (0, 1))
    out, oq = ctx.output(op)
    if ctx.dtype == "int16" and function == "mul" and any(q.zero_point for q in (qa, qb, oq)):
        raise ctx.unsupported(op, "the 16x8 MUL with a non-zero zero point: TF Lite Micro's int16 MUL takes "
                                  "symmetric (zero point 0) int16 tensors")
    consts = [j for j, t in enumerate((at, bt)) if t.is_const]
    if len(consts) == 2:
        raise ctx.unsupported(op, f"both operands of {op.name} ('{at.name}', '{bt.name}') are constants: a constant "
                                  "result computed at run time is not supported", "let the converter fold it")
    try:
        int8_ops.broadcast_shape(sa, sb)
    except ValueError:
        raise ctx.error(op, f"operands of shapes {list(sa)} and {list(sb)} do not broadcast") from None
    act = _act(ctx, op, oq) if function in ("add", "sub", "mul") else INT_RANGE[ctx.dtype]
    const = consts[0] if consts else -1
    try:
        lowered = int8_ops.binary(function, (sa, sb), qa, qb, oq, act, const, (at, bt)[const].data if consts else None,
                                  dtype=ctx.dtype)
    except ValueError as exc:  # TFLM refuses these scales in its Prepare
        raise ctx.unsupported(op, str(exc)) from None
    ctx.kernel(op, lowered, [t.index for t in (at, bt) if not t.is_const], out)


def _binary(function: str, doc: str) -> Converter:
    def convert(ctx: _Import, op: Operator) -> None:
        _binary_op(ctx, op, function)

    convert.__doc__ = doc
    return convert


_ARITH_DOC = ("int8 with TFLite broadcasting (any rank, trailing dimensions aligned), two activations or an "
              "activation and a constant on either side, each with its own scale, fused NONE/RELU/RELU6/RELU_N1_TO_1 "
              "(two constants: refused).")
_MINMAX_DOC = ("int8 with TFLite broadcasting, two activations or an activation and a constant on either side; "
               "compares the raw int8 values (TF Lite Micro ignores the quantisation).")


def _prelu(ctx: _Import, op: Operator) -> None:
    """int8 with a constant alpha of per-tensor quantisation that broadcasts to the input (TF Lite Micro's
    two multipliers and shifts; an alpha computed at run time: refused)."""
    xt = ctx.activation(op, 0)
    at = ctx.const(op, 1, "alpha")
    out, oq = ctx.output(op)
    ctx.int8(op, at)
    q = at.quantization
    if q is None or not q.per_tensor:
        raise ctx.unsupported(op, f"alpha '{at.name}' is {'not quantised' if q is None else 'quantised per channel'}: "
                                  "PRELU takes an alpha quantised per tensor")
    shape = ctx.shape(xt)
    if len(shape) > 4 or len(at.shape) > 4:
        raise ctx.unsupported(op, f"PRELU of a {len(shape)}-D input: TF Lite Micro's takes at most 4-D")
    try:
        lowered = int8_ops.prelu(shape, ctx.qparams(op, xt), at.data.reshape(at.shape), QParams(q.scales[0],
                                 q.zero_points[0]), oq)
    except ValueError as exc:
        raise ctx.unsupported(op, str(exc)) from None
    ctx.kernel(op, lowered, [xt.index], out)


def _pool(mode: str) -> Converter:
    def convert(ctx: _Import, op: Operator) -> None:
        xt = ctx.activation(op, 0)
        out, oq = ctx.output(op)
        n, h, w, c = _nhwc(ctx, op, xt)
        if ctx.qparams(op, xt) != oq:
            raise ctx.unsupported(op, f"{op.name} whose output is quantised unlike its input")
        pool = (op.options.get("FilterHeight", 1), op.options.get("FilterWidth", 1))
        strides = (op.options.get("StrideH", 1), op.options.get("StrideW", 1))
        (oh, ow), padding = _same_or_valid(op, ctx, (h, w), pool, strides, (1, 1))
        lo, hi = _act(ctx, op, oq)
        pooled = Pool2D((n, h, w, c), (n, oh, ow, c), mode=mode, pool=pool, strides=strides, padding=padding,
                        act_min=lo, act_max=hi, dtype=ctx.dtype)
        ctx.kernel(op, Lowered(pooled), [xt.index], out)

    convert.__doc__ = "int8, SAME/VALID, any window and strides, fused activations."
    return convert


def _reduced_axes(ctx: _Import, op: Operator, rank: int) -> list[int]:
    """The axes of a MEAN/SUM (its constant input 1), TFLM's ``ResolveAxis``: negative ones wrapped, repeats
    dropped, in order."""
    axes: list[int] = []
    for a in (int(v) for v in ctx.const(op, 1, "axis").data.reshape(-1)):
        if not -rank <= a < rank:
            raise ctx.error(op, f"axis {a} of a {rank}-D tensor")
        if a % rank not in axes:
            axes.append(a % rank)
    return axes


def _reduce(function: str) -> Converter:
    def convert(ctx: _Import, op: Operator) -> None:
        xt = ctx.activation(op, 0)
        out, oq = ctx.output(op)
        shape = ctx.shape(xt)
        axes = _reduced_axes(ctx, op, len(shape))
        keep = bool(op.options.get("KeepDims", False))
        if function == "mean" and len(shape) == 4 and sorted(axes) == [1, 2]:  # global average pooling
            n, _, _, c = shape
            lowered = int8_ops.mean_hw(shape, (n, 1, 1, c) if keep else (n, c), ctx.qparams(op, xt), oq)
        else:
            lowered = int8_ops.reduce(function, shape, tuple(axes), keep, ctx.qparams(op, xt), oq)
        ctx.kernel(op, lowered, [xt.index], out)

    convert.__doc__ = ("int8 over any axes (negative, repeated), `keep_dims` either way; "
                       + ("over H and W of an NHWC tensor the global-average-pooling kernel, otherwise " if
                          function == "mean" else "")
                       + "one int32 sum per output requantised as TF Lite Micro does.")
    return convert


def _softmax(ctx: _Import, op: Operator) -> None:
    """int8 over the last axis, any beta, output scale 1/256 and zero point -128."""
    xt = ctx.activation(op, 0)
    out, oq = ctx.output(op)
    if not (math.isclose(oq.scale, 1 / 256) and oq.zero_point == -128):
        raise ctx.unsupported(op, f"int8 SOFTMAX output quantised with scale {oq.scale}, zero point "
                                  f"{oq.zero_point}; TFLite int8 softmax writes scale 1/256, zero point -128")
    beta = float(op.options.get("Beta", 1.0))
    shape = ctx.shape(xt)
    ctx.kernel(op, int8_ops.softmax(shape, shape, ctx.qparams(op, xt), oq, beta), [xt.index], out)


def _reshape(ctx: _Import, op: Operator) -> None:
    """a view (no data moves); the output shape from the tensor or `new_shape`."""
    xt = ctx.activation(op, 0)
    out, oq = ctx.output(op)
    if ctx.qparams(op, xt) != oq:
        raise ctx.unsupported(op, f"{op.name} whose output is quantised unlike its input")
    ctx.view(op, xt.index, tuple(out.shape) if out.shape else _new_shape(ctx, op, xt), out)


def _new_shape(ctx: _Import, op: Operator, xt: Tensor) -> tuple[int, ...]:
    """A reshape's target when the output tensor declares no shape (``NewShape``, one -1 allowed)."""
    shape = list(op.options.get("NewShape", ()))
    if shape.count(-1) == 1:
        known = math.prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = math.prod(ctx.shape(xt)) // known if known else 0
    if not shape:
        raise ctx.error(op, f"the output of {op.name} has no shape")
    return tuple(shape)


def _pad(ctx: _Import, op: Operator) -> None:
    """int8 constant padding of any dimension with the zero point (PADV2: its constant value); before a
    CONV_2D or DEPTHWISE_CONV_2D, padding only H and W with the zero point and read by nothing else, folded
    into the convolution's padding (no kernel, no padded copy)."""
    xt = ctx.activation(op, 0)
    widths = ctx.const(op, 1, "paddings")
    out, oq = ctx.output(op)
    q = ctx.qparams(op, xt)
    if q != oq:
        raise ctx.unsupported(op, f"{op.name} whose output is quantised unlike its input")
    shape = ctx.shape(xt)
    pads = tuple((int(a), int(b)) for a, b in widths.data.reshape(-1, 2))
    if len(pads) != len(shape) or any(a < 0 or b < 0 for a, b in pads):
        raise ctx.error(op, f"paddings {[list(p) for p in pads]} for a {len(shape)}-D input")
    value = q.zero_point
    fill = ctx.optional(op, 2)
    if fill is not None:
        if not fill.is_const or fill.data.size != 1:
            raise ctx.unsupported(op, "a PADV2 fill value computed at run time is not supported")
        value = int(fill.data.reshape(-1)[0])
    padded = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
    ctx.kernel(op, Lowered(Pad(shape, padded, pads=pads, value=value, dtype=ctx.dtype)), [xt.index], out)


def _table(ctx: _Import, op: Operator, function: Callable[[np.ndarray, QParams, QParams, Operator], np.ndarray]
           ) -> None:
    """An element-wise operator as a 256-entry table (``function`` applied to every int8 value)."""
    xt = ctx.activation(op, 0)
    out, oq = ctx.output(op)
    try:
        values = function(int8_ops.INT8_BY_BYTE, ctx.qparams(op, xt), oq, op)
    except ValueError as exc:  # TFLM refuses this configuration in its Prepare
        raise ctx.unsupported(op, str(exc)) from None
    ctx.kernel(op, int8_ops.lut(ctx.shape(xt), op.name, values), [xt.index], out)


def _lut(function: Callable[[np.ndarray, QParams, QParams, Operator], np.ndarray], doc: str) -> Converter:
    def convert(ctx: _Import, op: Operator) -> None:
        _table(ctx, op, function)

    convert.__doc__ = doc
    return convert


def _quantize(ctx: _Import, op: Operator) -> None:
    """int8 to int8 (requantisation, a table); float32 to int8 (a float model input: TF Lite Micro's
    AffineQuantize, the division in float32, rounding half away from zero, clamped)."""
    src, dst = ctx.tensor(op, 0).dtype, ctx.tensor(op, 0, "output").dtype
    if src != "FLOAT32" and ctx.elem == "INT16":
        _requantize(ctx, op, src, dst)
        return
    if src != "FLOAT32":
        _table(ctx, op, lambda x, q, o, _: tflite_ops.quantize(x, q.scale, q.zero_point, o.scale, o.zero_point))
        return
    xt = ctx.activation(op, 0, "FLOAT32")
    out, oq = ctx.output(op)
    shape = ctx.shape(xt)
    quantize = Quantize(shape, shape, out_scale=oq.scale, scale=oq.scale, zero_point=oq.zero_point, dtype=ctx.dtype)
    ctx.kernel(op, Lowered(quantize), [xt.index], out)


def _requantize(ctx: _Import, op: Operator, src: str, dst: str) -> None:
    """QUANTIZE between int8 and int16 (either way, or int16 to int16): TFLM's Requantize with the
    multiplier of ``in_scale / out_scale`` in double."""
    if src not in ("INT8", "INT16") or dst not in ("INT8", "INT16"):
        raise ctx.unsupported(op, f"QUANTIZE of {src} to {dst}: between int8 and int16 only")
    xt = ctx.activation(op, 0, src)
    out = ctx.tensor(op, 0, "output")
    q, oq = ctx.qparams(op, xt), ctx.qparams(op, out)
    mult, shift = fixedpoint.quantize_multiplier(float(np.float32(q.scale)) / float(np.float32(oq.scale)))
    shape = ctx.shape(xt)
    lowered = Requantize(shape, shape, in_scales=(q.scale,), out_scale=oq.scale, from_dtype=src.lower(),
                         to_dtype=dst.lower(), in_zp=q.zero_point, out_zp=oq.zero_point, multiplier=mult, shift=shift)
    ctx.kernel(op, Lowered(lowered), [xt.index], out)


def _dequantize(ctx: _Import, op: Operator) -> None:
    """int8 to float32 (a float model output: TF Lite Micro's `scale * (x - zero_point)`); of constant
    weights (float or dynamic-range models): refused."""
    t = ctx.tensor(op, 0)
    if t.is_const:
        raise ctx.unsupported(op, f"DEQUANTIZE of the constant '{t.name}': the model dequantises weights at run "
                                  "time (float or dynamic-range quantisation)", FLOAT_HINT)
    xt = ctx.activation(op, 0)
    out = ctx.tensor(op, 0, "output")
    if out.dtype != "FLOAT32":
        raise ctx.unsupported(op, f"DEQUANTIZE to {out.dtype}: only to FLOAT32")
    q = ctx.qparams(op, xt)
    shape = ctx.shape(xt)
    dequantize = Dequantize(shape, shape, in_scales=(q.scale,), scale=q.scale, zero_point=q.zero_point,
                            dtype=ctx.dtype)
    ctx.kernel(op, Lowered(dequantize), [xt.index], out)


def _arg_max(ctx: _Import, op: Operator) -> None:
    """int8, a constant axis, int32 or int64 indices (the first maximum wins, as in TF Lite Micro)."""
    xt = ctx.activation(op, 0)
    axis_t = ctx.const(op, 1, "axis")
    out = ctx.tensor(op, 0, "output")
    if out.dtype not in ("INT32", "INT64"):
        raise ctx.unsupported(op, f"ARG_MAX writing {out.dtype} indices: only INT32 or INT64")
    shape = ctx.shape(xt)
    if axis_t.data.size != 1 or not shape or not -len(shape) <= int(axis_t.data.reshape(-1)[0]) < len(shape):
        raise ctx.error(op, f"axis {axis_t.data.reshape(-1).tolist()} of a {len(shape)}-D input")
    axis = int(axis_t.data.reshape(-1)[0]) % len(shape)
    result = shape[:axis] + shape[axis + 1 :]
    ctx.kernel(op, Lowered(ArgMax(shape, result, axis=axis, index_dtype=out.dtype.lower())), [xt.index], out)


def _transpose(ctx: _Import, op: Operator) -> None:
    """int8, any permutation of up to 6 dimensions (a copy; size-1 moves become views)."""
    xt = ctx.activation(op, 0)
    perm_t = ctx.const(op, 1, "permutation")
    out, oq = ctx.output(op)
    shape = ctx.shape(xt)
    perm = tuple(int(p) % max(len(shape), 1) for p in perm_t.data.reshape(-1))
    if sorted(perm) != list(range(len(shape))):
        raise ctx.error(op, f"permutation {list(perm)} of a {len(shape)}-D tensor")
    if ctx.qparams(op, xt) != oq:
        raise ctx.unsupported(op, "TRANSPOSE whose output is quantised unlike its input")
    result = tuple(shape[p] for p in perm)
    moved = [p for p in perm if shape[p] != 1]
    if moved == sorted(moved):  # only size-1 dimensions move: the bytes keep their order
        ctx.view(op, xt.index, result, out)
        return
    ctx.kernel(op, Lowered(Transpose(shape, result, perm=perm, dtype=ctx.dtype)), [xt.index], out)


def _concatenation(ctx: _Import, op: Operator) -> None:
    """int8 inputs of one quantisation (what TF Lite Micro requires), any axis; where every dimension before
    the axis is 1 and each input's block is 16-byte aligned, no copy: the producers write into their blocks
    (`ZeroCopyViews`)."""
    inputs = [ctx.activation(op, j) for j in range(len(op.inputs))]
    out, oq = ctx.output(op)
    if op.options.get("FusedActivationFunction", "NONE") != "NONE":
        raise ctx.unsupported(op, "CONCATENATION with a fused activation")
    if any(ctx.qparams(op, t) != oq for t in inputs):
        raise ctx.unsupported(op, "CONCATENATION of tensors quantised unlike its output (TF Lite Micro refuses it)")
    shapes = [ctx.shape(t) for t in inputs]
    rank = len(shapes[0])
    axis = int(op.options.get("Axis", 0)) % max(rank, 1)
    if any(len(s) != rank or any(a != b for d, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if d != axis)
           for s in shapes):
        raise ctx.error(op, f"inputs of shapes {[list(s) for s in shapes]} do not concatenate along axis {axis}")
    result = tuple(sum(s[axis] for s in shapes) if d == axis else shapes[0][d] for d in range(rank))
    ctx.kernel(op, Lowered(Concat(shapes[0], result, axis=axis, in_shapes=tuple(shapes), dtype=ctx.dtype)),
               [t.index for t in inputs], out)


def _copy_outputs(ctx: _Import, op: Operator, inputs: list[Tensor], count: int = 0) -> list[Tensor]:
    """The outputs of a data movement operator (``count`` of them, 0: as many as it has, at least one), each
    checked to be quantised as its inputs are: TF Lite Micro copies the bytes unchanged, so a different scale
    or zero point would change the values' meaning."""
    if not inputs or not op.outputs or (count and len(op.outputs) != count):
        raise ctx.error(op, f"{op.name} with {len(inputs)} inputs and {len(op.outputs)} outputs")
    outs = [ctx.output(op, j)[0] for j in range(len(op.outputs))]
    q = ctx.qparams(op, inputs[0])
    for t in [*inputs[1:], *outs]:
        if ctx.qparams(op, t) != q:
            raise ctx.unsupported(op, f"{op.name} whose tensor '{t.name}' is quantised unlike its input "
                                      f"'{inputs[0].name}' (TF Lite Micro copies the bytes without requantising)")
    return outs


def _ints(ctx: _Import, op: Operator, j: int, what: str) -> list[int]:
    """Constant input ``j`` of ``op`` (an integer tensor), as ints."""
    t = ctx.const(op, j, what)
    if t.dtype not in ("INT32", "INT64"):
        raise ctx.error(op, f"the {what} ('{t.name}') is {t.dtype}, not an integer tensor")
    return [int(v) for v in t.data.reshape(-1)]


def _axis(ctx: _Import, op: Operator, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.error(op, f"axis {axis} of a {rank}-D tensor")
    return axis % rank


def _axis_input(ctx: _Import, op: Operator, j: int, rank: int) -> int:
    """The axis that constant input ``j`` of ``op`` holds (one value, negative allowed)."""
    values = _ints(ctx, op, j, "axis")
    if len(values) != 1:
        raise ctx.error(op, f"the axis of {op.name} holds {len(values)} values")
    return _axis(ctx, op, values[0], rank)


def _copy_rank(ctx: _Import, op: Operator, shape: tuple[int, ...], limit: int = MAX_COPY_RANK) -> None:
    if len(shape) > limit:
        raise ctx.unsupported(op, f"{op.name} of a {len(shape)}-D tensor: at most {limit} dimensions"
                                  + (" (TF Lite Micro's limit)" if limit < MAX_COPY_RANK else ""))


def _strided(ctx: _Import, op: Operator, src: int, shape: tuple[int, ...], begin: list[int], strides: list[int],
             counts: list[int], out: Tensor, result: tuple[int, ...] | None = None) -> None:
    """A :class:`Slice` of tensor ``src`` into ``out`` (through a view to ``result`` when given)."""
    if 0 in counts:
        raise ctx.unsupported(op, f"{op.name} with an empty result ({counts} elements per dimension)")
    lowered = Lowered(Slice(shape, tuple(counts), begin=tuple(begin), strides=tuple(strides), dtype=ctx.dtype))
    if result is None or result == tuple(counts):
        ctx.kernel(op, lowered, [src], out)
        return
    copied = ctx.new_id()
    ctx.emit(op, lowered, [src], copied, None)
    ctx.view(op, copied, result, out)


def _slice(ctx: _Import, op: Operator) -> None:
    """int8 (output quantised as the input), constant begin and size (size -1: to the end), up to 5 dimensions
    (TF Lite Micro's limit): one copy loop, contiguous runs merged; a contiguous, 16-byte aligned block of the
    input: a view, no copy (`ZeroCopyViews`)."""
    xt = ctx.activation(op, 0)
    begin, size = _ints(ctx, op, 1, "begin"), _ints(ctx, op, 2, "size")
    (out,) = _copy_outputs(ctx, op, [xt], 1)
    shape = ctx.shape(xt)
    _copy_rank(ctx, op, shape, 5)
    if not len(begin) == len(size) == len(shape):
        raise ctx.error(op, f"begin {begin} and size {size} for a {len(shape)}-D input")
    counts = [d - b if s == -1 else s for b, s, d in zip(begin, size, shape, strict=True)]
    if any(not (0 <= b and 0 <= n and b + n <= d) for b, n, d in zip(begin, counts, shape, strict=True)):
        raise ctx.error(op, f"begin {begin} and size {size} reach outside the input {list(shape)}")
    _strided(ctx, op, xt.index, shape, begin, [1] * len(shape), counts, out)


def _strided_slice(ctx: _Import, op: Operator) -> None:
    """int8 (output quantised as the input), constant begin/end/strides with negative indices and strides,
    `begin_mask`, `end_mask`, `shrink_axis_mask` (a view), clamped as TF Lite Micro does (`offset` ignored, like
    TF Lite Micro), up to 4 dimensions; `ellipsis_mask`/`new_axis_mask` (TF Lite Micro ignores them): refused."""
    xt = ctx.activation(op, 0)
    begin, end, strides = (_ints(ctx, op, j, what) for j, what in ((1, "begin"), (2, "end"), (3, "strides")))
    (out,) = _copy_outputs(ctx, op, [xt], 1)
    shape = ctx.shape(xt)
    o = op.options
    try:
        ranges = tflite_ops.strided_slice_ranges(shape, begin, end, strides, o.get("BeginMask", 0),
                                                 o.get("EndMask", 0), o.get("ShrinkAxisMask", 0),
                                                 o.get("EllipsisMask", 0), o.get("NewAxisMask", 0))
    except ValueError as exc:  # TFLM refuses it in Prepare, or computes something other than TensorFlow
        masks = o.get("EllipsisMask", 0) or o.get("NewAxisMask", 0)
        raise ctx.unsupported(op, str(exc), "the TF Lite converter writes these as plain masks and RESHAPE ops: "
                                            "re-convert the model" if masks else "") from None
    counts = [len(r) for r, _ in ranges]
    _strided(ctx, op, xt.index, shape, [r.start for r, _ in ranges], [r.step for r, _ in ranges], counts, out,
             tuple(n for n, (_, shrink) in zip(counts, ranges, strict=True) if not shrink))


def _split_along(ctx: _Import, op: Operator, xt: Tensor, axis: int, sizes: list[int]) -> None:
    """One :class:`Slice` per output: ``sizes[k]`` elements of ``axis`` after the earlier outputs'."""
    outs = _copy_outputs(ctx, op, [xt])
    shape = ctx.shape(xt)
    _copy_rank(ctx, op, shape)
    if len(sizes) != len(outs):
        raise ctx.error(op, f"{op.name} into {len(sizes)} parts has {len(outs)} outputs")
    start = 0
    for out, n in zip(outs, sizes, strict=True):
        begin = [start if d == axis else 0 for d in range(len(shape))]
        counts = [n if d == axis else size for d, size in enumerate(shape)]
        _strided(ctx, op, xt.index, shape, begin, [1] * len(shape), counts, out)
        start += n


def _split(ctx: _Import, op: Operator) -> None:
    """int8 into equal parts along a constant axis (negative allowed), outputs quantised as the input: one copy
    per output; a contiguous, 16-byte aligned block of the input (e.g. along H of a batch-1 tensor): a view, no
    copy (`ZeroCopyViews`)."""
    xt = ctx.activation(op, 1)
    shape = ctx.shape(xt)
    axis = _axis_input(ctx, op, 0, len(shape))
    parts = len(op.outputs)
    if not parts or op.options.get("NumSplits", parts) != parts or shape[axis] % parts:
        raise ctx.error(op, f"SPLIT of dimension {shape[axis]} into {op.options.get('NumSplits')} parts with "
                            f"{parts} outputs")
    _split_along(ctx, op, xt, axis, [shape[axis] // parts] * parts)


def _split_v(ctx: _Import, op: Operator) -> None:
    """int8, constant `size_splits` (one -1: the rest) along a constant axis (negative allowed), outputs
    quantised as the input: one copy per output; a contiguous, 16-byte aligned block of the input: a view, no
    copy (`ZeroCopyViews`)."""
    xt = ctx.activation(op, 0)
    given = _ints(ctx, op, 1, "size_splits")
    shape = ctx.shape(xt)
    axis = _axis_input(ctx, op, 2, len(shape))
    sizes = list(given)
    if sizes.count(-1) == 1:  # the rest (TFLM takes the output shapes, which the converter computed so)
        sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != shape[axis] or min(sizes, default=0) < 0:
        raise ctx.error(op, f"size_splits {given} do not add up to dimension {axis} of {list(shape)}")
    _split_along(ctx, op, xt, axis, sizes)


def _pack(ctx: _Import, op: Operator) -> None:
    """int8 inputs of one shape and of the output's quantisation, along a new axis (negative allowed): views
    adding the axis, then one CONCATENATION kernel."""
    inputs = [ctx.activation(op, j) for j in range(len(op.inputs))]
    (out,) = _copy_outputs(ctx, op, inputs, 1)
    shapes = {ctx.shape(t) for t in inputs}
    if len(shapes) != 1 or op.options.get("ValuesCount", len(inputs)) != len(inputs):
        raise ctx.error(op, f"PACK of {op.options.get('ValuesCount')} values of shapes "
                            f"{[list(ctx.shape(t)) for t in inputs]}")
    (shape,) = shapes
    axis = _axis(ctx, op, int(op.options.get("Axis", 0)), len(shape) + 1)
    unit = (*shape[:axis], 1, *shape[axis:])
    _copy_rank(ctx, op, unit)
    views = [ctx.view(op, t.index, unit) for t in inputs]
    result = (*shape[:axis], len(inputs), *shape[axis:])
    ctx.kernel(op, Lowered(Concat(unit, result, axis=axis, in_shapes=(unit,) * len(inputs), dtype=ctx.dtype)), views,
               out)


def _unpack(ctx: _Import, op: Operator) -> None:
    """int8, outputs quantised as the input, one per index along the axis (negative allowed): a copy each,
    viewed without the axis (a contiguous, 16-byte aligned one: a view, no copy, `ZeroCopyViews`)."""
    xt = ctx.activation(op, 0)
    outs = _copy_outputs(ctx, op, [xt])
    shape = ctx.shape(xt)
    _copy_rank(ctx, op, shape)
    axis = _axis(ctx, op, int(op.options.get("Axis", 0)), len(shape))
    if not op.options.get("Num", shape[axis]) == len(outs) == shape[axis]:
        raise ctx.error(op, f"UNPACK of dimension {shape[axis]} into {op.options.get('Num')} values with "
                            f"{len(outs)} outputs")
    result = shape[:axis] + shape[axis + 1 :]
    for k, out in enumerate(outs):
        begin = [k if d == axis else 0 for d in range(len(shape))]
        counts = [1 if d == axis else size for d, size in enumerate(shape)]
        _strided(ctx, op, xt.index, shape, begin, [1] * len(shape), counts, out, result)


def _mirror_pad(ctx: _Import, op: Operator) -> None:
    """int8 (output quantised as the input), REFLECT and SYMMETRIC, constant paddings of up to 6 dimensions (at
    most size - 1 for REFLECT, size for SYMMETRIC): one copy loop per block of the output."""
    xt = ctx.activation(op, 0)
    widths = _ints(ctx, op, 1, "paddings")
    (out,) = _copy_outputs(ctx, op, [xt], 1)
    shape = ctx.shape(xt)
    _copy_rank(ctx, op, shape)
    mode = str(op.options.get("Mode", "REFLECT")).lower()
    if mode not in MIRROR_MODES:
        raise ctx.unsupported(op, f"MIRROR_PAD mode {mode.upper()}")
    if len(widths) != 2 * len(shape):
        raise ctx.error(op, f"paddings {widths} for a {len(shape)}-D input (one (before, after) pair per dimension)")
    pads = tuple(zip(widths[0::2], widths[1::2], strict=True))
    limit = [d - MIRROR_MODES[mode] for d in shape]
    if any(not (0 <= a <= m and 0 <= b <= m) for (a, b), m in zip(pads, limit, strict=True)):
        raise ctx.error(op, f"{mode.upper()} paddings {[list(p) for p in pads]} for an input of {list(shape)} "
                            f"(at most {limit} on each side)")
    padded = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
    ctx.kernel(op, Lowered(MirrorPad(shape, padded, pads=pads, mode=mode)), [xt.index], out)


def _resize_nearest(ctx: _Import, op: Operator) -> None:
    """int8 NHWC, `align_corners` and `half_pixel_centers` as TF Lite Micro computes them."""
    xt = ctx.activation(op, 0)
    size_t = ctx.const(op, 1, "size")
    out, _ = ctx.output(op)
    n, h, w, c = _nhwc(ctx, op, xt)
    size = [int(v) for v in size_t.data.reshape(-1)]
    if len(size) != 2 or min(size) < 1:
        raise ctx.error(op, f"output size {size}")
    ac, hp = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    rows = tflite_ops.nearest_indices(size[0], h, ac, hp).astype(np.int32)
    cols = tflite_ops.nearest_indices(size[1], w, ac, hp).astype(np.int32)
    ctx.kernel(op, Lowered(ResizeNearest((n, h, w, c), (n, size[0], size[1], c)), [rows, cols]), [xt.index], out)


def _resize_bilinear(ctx: _Import, op: Operator) -> None:
    """int8 NHWC, `align_corners` or `half_pixel_centers` (both: refused, as TF Lite Micro does), TF Lite
    Micro's integer arithmetic (10-bit positions): index and weight maps computed at compile time."""
    xt = ctx.activation(op, 0)
    size_t = ctx.const(op, 1, "size")
    out, _ = ctx.output(op)
    n, h, w, c = _nhwc(ctx, op, xt)
    size = [int(v) for v in size_t.data.reshape(-1)]
    if len(size) != 2 or min(size) < 1:
        raise ctx.error(op, f"output size {size}")
    ac, hp = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    if ac and hp:
        raise ctx.unsupported(op, "RESIZE_BILINEAR with both align_corners and half_pixel_centers (TF Lite Micro "
                                  "refuses it)")
    maps = [bilinear_map(out_size, in_size, ac, hp) for out_size, in_size in zip(size, (h, w), strict=True)]
    if any(m[:, :2].min() < 0 or m[:, :2].max() >= s for m, s in zip(maps, (h, w), strict=True)) \
            or bilinear_bound(*maps) >= 1 << 31:
        raise ctx.unsupported(op, f"RESIZE_BILINEAR from {[h, w]} to {size}: TF Lite Micro's positions leave the "
                                  "input or overflow its sums")
    ctx.kernel(op, Lowered(ResizeBilinear((n, h, w, c), (n, size[0], size[1], c)), maps), [xt.index], out)


def bilinear_map(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """(out_size, 3) int32: per output position the lower and upper input index and the upper's weight
    in 1/1024 (TFLM's ``ComputeInterpolationValuesInteger``)."""
    scaled, lower, upper = tflite_ops.bilinear_taps(out_size, in_size, align_corners, half_pixel_centers)
    return np.stack([lower, upper, scaled - (lower << 10)], axis=1).astype(np.int32)


def _activation(name: str) -> Converter:
    """A standalone RELU / RELU6 / RELU_N1_TO_1: the producer's clamp tightened (no kernel of its own)."""

    def convert(ctx: _Import, op: Operator) -> None:
        xt = ctx.activation(op, 0)
        out, oq = ctx.output(op)
        index = ctx.producer.get(xt.index)
        step = ctx.steps[index] if index is not None else None
        if step is None or ctx.qparams(op, xt) != oq or not hasattr(step.lowered.op, "act_min") \
                or ctx.readers[xt.index] > 1:
            if name == "RELU_N1_TO_1":
                raise ctx.unsupported(op, "a standalone RELU_N1_TO_1 that cannot fold into the layer before it "
                                          "(TF Lite Micro has no kernel for it)")
            _table(ctx, op, _UNARY[name])
            return
        lo, hi = int8_ops.activation_range(name, oq)
        prev = step.lowered
        fused = dataclasses.replace(prev.op, act_min=max(lo, prev.op.act_min), act_max=min(hi, prev.op.act_max))
        ctx.steps[index] = _Step(Lowered(fused, prev.consts, prev.choice), step.inputs, out.index)
        del ctx.producer[xt.index], ctx.shapes[xt.index]
        ctx.producer[out.index] = index
        ctx.shapes[out.index] = tuple(fused.out_shape)

    convert.__doc__ = ("int8, folded into the clamp of the convolution, fully connected layer, ADD, SUB, MUL, "
                       "MAXIMUM, MINIMUM or pooling before it when nothing else reads that result with other "
                       "quantisation; otherwise a table lookup"
                       + (" (RELU_N1_TO_1: refused, TF Lite Micro has no kernel)." if name == "RELU_N1_TO_1" else "."))
    return convert


def _nhwc(ctx: _Import, op: Operator, t: Tensor) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise ctx.unsupported(op, f"input '{t.name}' has shape {list(t.shape)}: {op.name} takes NHWC tensors")
    return tuple(int(d) for d in t.shape)  # type: ignore[return-value]


#: element-wise operators with TFLM's arithmetic on every int8 value (``reference.tflite_ops``)
_UNARY: dict[str, Callable[[np.ndarray, QParams, QParams, Operator], np.ndarray]] = {
    "RELU": lambda x, q, o, _: tflite_ops.relu(x, q.scale, q.zero_point, o.scale, o.zero_point),
    "RELU6": lambda x, q, o, _: tflite_ops.relu6(x, q.scale, q.zero_point),
    "LOGISTIC": lambda x, q, o, _: tflite_ops.logistic(x, q.scale, q.zero_point, o.zero_point),
    "TANH": lambda x, q, o, _: tflite_ops.tanh(x, q.scale, q.zero_point),
    "HARD_SWISH": lambda x, q, o, _: tflite_ops.hard_swish(x, q.scale, q.zero_point, o.scale, o.zero_point),
    "LEAKY_RELU": lambda x, q, o, op: tflite_ops.leaky_relu(x, q.scale, q.zero_point, o.scale, o.zero_point,
                                                             float(op.options.get("Alpha", 0.2))),
}
_TABLE_DOC = "int8, any quantisation TF Lite Micro accepts: a 256-entry table computed at compile time."

# ---- 16x8 converters (int16 activations, int8 weights) ------------------------------------------
def _bias16(ctx: _Import, op: Operator, j: int, n: int, depthwise: bool = False) -> tuple[np.ndarray | None, bool]:
    """The bias of a 16x8 layer and whether TFLM accumulates in int64: an INT64 bias (or none, unless the
    operator's ``QuantizedBiasType`` says INT32) does, an INT32 one does not (TFLM's depthwise kernel
    takes INT64 only)."""
    t = ctx.optional(op, j)
    allowed = ("INT64",) if depthwise else ("INT64", "INT32")
    if t is None:
        return None, op.options.get("QuantizedBiasType", 0) != 2  # TensorType INT32
    if not t.is_const or t.dtype not in allowed or t.data.size != n:
        raise ctx.unsupported(op, f"bias '{t.name}' of the 16x8 {op.name} must be a constant "
                                  f"{' or '.join(a.lower() for a in allowed)} vector of {n} values (it is "
                                  f"{'a constant' if t.is_const else 'computed'} {t.dtype} {list(t.shape)})")
    return t.data.reshape(n), t.dtype == "INT64"


def _conv2d_int16(ctx: _Import, op: Operator) -> None:
    """int16 activations (zero point 0), int8 weights, int64 or int32 bias: TF Lite Micro's int16 reference
    kernel (per-tensor or per-channel weights, SAME/VALID, strides, dilation, fused activations; a PAD
    before it folded as for int8)."""
    xt, xq = ctx.activation16(op, 0)
    w = ctx.const(op, 1, "filter")
    out, oq = ctx.output16(op)
    n, h, wd, cin = _nhwc(ctx, op, xt)
    if len(w.shape) != 4 or w.shape[3] != cin:
        raise ctx.unsupported(op, f"filter '{w.name}' of shape {list(w.shape)} on an input of depth {cin} "
                                  "(grouped 16x8 convolutions are not supported)")
    cout, kh, kw, _ = w.shape
    strides, dilation = _window_attrs(op)
    (oh, ow), padding = _same_or_valid(op, ctx, (h, wd), (kh, kw), strides, dilation)
    src, in_shape, padding = _fold_pad(ctx, op, xt, padding)
    bias, acc64 = _bias16(ctx, op, 2, cout)
    lowered = int8_ops.conv2d_int16(
        in_shape, (n, oh, ow, cout), xq, oq, w.data, _weight_scales(ctx, op, w, 0, cout), bias, acc64=acc64,
        strides=strides, padding=padding, dilation=dilation, depthwise=False, act=_act(ctx, op, oq))
    ctx.kernel(op, lowered, [src], out)


def _depthwise_int16(ctx: _Import, op: Operator) -> None:
    """int16 activations (zero point 0), int8 per-channel weights, int64 bias, any depth multiplier (TF Lite
    Micro's int16 reference kernel, no repeated channels), SAME/VALID, strides, dilation, fused activations;
    a PAD before it folded as for int8."""
    xt, xq = ctx.activation16(op, 0)
    w = ctx.const(op, 1, "filter")
    out, oq = ctx.output16(op)
    n, h, wd, cin = _nhwc(ctx, op, xt)
    if len(w.shape) != 4 or w.shape[0] != 1:
        raise ctx.error(op, f"depthwise filter '{w.name}' has shape {list(w.shape)}, expected (1, KH, KW, C)")
    _, kh, kw, cout = w.shape
    if cin < 1 or cout % cin:
        raise ctx.error(op, f"depthwise filter of {cout} channels on an input of {cin}: not a depth multiplier")
    strides, dilation = _window_attrs(op)
    (oh, ow), padding = _same_or_valid(op, ctx, (h, wd), (kh, kw), strides, dilation)
    src, in_shape, padding = _fold_pad(ctx, op, xt, padding)
    bias, acc64 = _bias16(ctx, op, 2, cout, depthwise=True)
    lowered = int8_ops.conv2d_int16(
        in_shape, (n, oh, ow, cout), xq, oq, w.data.reshape(kh, kw, cout), _weight_scales(ctx, op, w, 3, cout),
        bias, acc64=acc64, strides=strides, padding=padding, dilation=dilation, depthwise=True,
        depth_multiplier=cout // cin, act=_act(ctx, op, oq))
    ctx.kernel(op, lowered, [src], out)


def _fully_connected_int16(ctx: _Import, op: Operator) -> None:
    """int16 activations (zero point 0), int8 per-tensor or per-channel weights, int64 or int32 bias, N-D input
    read as rows of the weights' depth, `keep_num_dims` either way, fused activations."""
    xt, xq = ctx.activation16(op, 0)
    w = ctx.const(op, 1, "weights")
    out, oq = ctx.output16(op)
    if op.options.get("WeightsFormat", 0) != 0 or len(w.shape) != 2:
        raise ctx.unsupported(op, f"weights '{w.name}' of shape {list(w.shape)} (format "
                                  f"{op.options.get('WeightsFormat', 0)}): 2-D default-format weights only")
    units, depth = w.shape
    shape, rows, flat = _rows_of(ctx, op, xt, depth)
    bias, acc64 = _bias16(ctx, op, 2, units)
    lowered = int8_ops.dense_int16((rows, depth), (rows, units), xq, oq, w.data, _weight_scales(ctx, op, w, 0, units),
                                   bias, acc64=acc64, act=_act(ctx, op, oq))
    _emit_rows(ctx, op, lowered, flat, (*shape[:-1], units), out)


def _mean_int16(ctx: _Import, op: Operator) -> None:
    """int16 over any axes, `keep_dims` either way: one int32 sum per output requantised as TF Lite Micro
    does, clamped to int16."""
    xt, xq = ctx.activation16(op, 0, False)
    out, oq = ctx.output16(op, False)
    shape = ctx.shape(xt)
    axes = _reduced_axes(ctx, op, len(shape))
    keep = bool(op.options.get("KeepDims", False))
    lowered = int8_ops.reduce("mean", shape, tuple(axes), keep, xq, oq, dtype="int16")
    ctx.kernel(op, lowered, [xt.index], out)


def _softmax_int16(ctx: _Import, op: Operator) -> None:
    """int16 over the last axis, any beta, output scale 1/32768 and zero point 0: TF Lite Micro's exp and
    1/(1+x) tables (513 entries each, generated at compile time as its Prepare does)."""
    xt, xq = ctx.activation16(op, 0)
    out, oq = ctx.output16(op)
    if abs(oq.scale - 1 / 32768) > 0.001 / 32768:
        raise ctx.unsupported(op, f"int16 SOFTMAX output quantised with scale {oq.scale}; TF Lite Micro's int16 "
                                  "softmax writes scale 1/32768, zero point 0")
    beta = float(op.options.get("Beta", 1.0))
    ctx.kernel(op, int8_ops.softmax_int16(ctx.shape(xt), xq, oq, beta), [xt.index], out)


#: TFLite builtin operator -> its 16x8 converter, used when the operator reads or writes an INT16
#: activation (every other operator with an INT16 tensor is refused naming it)
INT16_CONVERTERS: dict[str, Converter] = {
    "CONV_2D": _conv2d_int16,
    "DEPTHWISE_CONV_2D": _depthwise_int16,
    "FULLY_CONNECTED": _fully_connected_int16,
    "MEAN": _mean_int16,
    "SOFTMAX": _softmax_int16,
}
#: operators whose int8 converter and kernel take int16 elements as they are (element-type generic
#: descriptors: ``ops.element_typed``)
INT16_GENERIC = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "SQUEEZE",
                 "EXPAND_DIMS", "PAD", "PADV2", "TRANSPOSE",
                 "CONCATENATION", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "QUANTIZE",
                 "DEQUANTIZE")
INT16_OPS: tuple[str, ...] = (*INT16_CONVERTERS, *INT16_GENERIC)
_INT16_GENERIC_DOC = "the same on int16 elements."
#: what the 16x8 variants of element-type generic converters do where it is more than that
_INT16_DOCS = {
    "QUANTIZE": ("float32 to int16 (TF Lite Micro's AffineQuantize clamped to int16); int8 to int16, int16 to int8 "
                 "and int16 to int16 (TF Lite Micro's Requantize, the multiplier of in / out in double)."),
    "DEQUANTIZE": "int16 to float32 (a 16x8 model's float output).",
    "ADD": ("int16 (TF Lite Micro's general int16 path: left shift 15) with broadcasting, two activations or an "
            "activation and a constant, fused activations."),
    "SUB": "int16 as ADD (left shift 15), with broadcasting and constants, fused activations.",
    "MUL": "int16 with zero points 0 (TF Lite Micro's int16 MUL), with broadcasting and constants, fused activations.",
}


#: TFLite builtin operator -> converter (the supported operator list is this table's keys)
CONVERTERS: dict[str, Converter] = {
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise,
    "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected,
    "BATCH_MATMUL": _batch_matmul,
    "ADD": _binary("add", _ARITH_DOC),
    "SUB": _binary("sub", _ARITH_DOC),
    "MUL": _binary("mul", _ARITH_DOC),
    "MAXIMUM": _binary("maximum", _MINMAX_DOC),
    "MINIMUM": _binary("minimum", _MINMAX_DOC),
    "PRELU": _prelu,
    "AVERAGE_POOL_2D": _pool("avg"),
    "MAX_POOL_2D": _pool("max"),
    "MEAN": _reduce("mean"),
    "SUM": _reduce("sum"),
    "SOFTMAX": _softmax,
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "EXPAND_DIMS": _reshape,
    "PAD": _pad,
    "PADV2": _pad,
    "RELU": _activation("RELU"),
    "RELU6": _activation("RELU6"),
    "RELU_N1_TO_1": _activation("RELU_N1_TO_1"),
    "LOGISTIC": _lut(_UNARY["LOGISTIC"], _TABLE_DOC),
    "TANH": _lut(_UNARY["TANH"], _TABLE_DOC),
    "HARD_SWISH": _lut(_UNARY["HARD_SWISH"], _TABLE_DOC),
    "LEAKY_RELU": _lut(_UNARY["LEAKY_RELU"], _TABLE_DOC),
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "ARG_MAX": _arg_max,
    "TRANSPOSE": _transpose,
    "CONCATENATION": _concatenation,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nearest,
    "RESIZE_BILINEAR": _resize_bilinear,
    "SLICE": _slice,
    "STRIDED_SLICE": _strided_slice,
    "SPLIT": _split,
    "SPLIT_V": _split_v,
    "PACK": _pack,
    "UNPACK": _unpack,
    "MIRROR_PAD": _mirror_pad,
}


SUPPORTED_OPS: tuple[str, ...] = tuple(CONVERTERS)


def supported_ops_markdown() -> str:
    """The README's table of supported TFLite operators and variants, from the converters' docstrings."""
    def text(fn: Converter) -> str:
        return " ".join((fn.__doc__ or "").split())

    def row(name: str, fn: Converter) -> str:
        int16 = text(INT16_CONVERTERS[name]) if name in INT16_CONVERTERS else (
            _INT16_DOCS.get(name, _INT16_GENERIC_DOC) if name in INT16_GENERIC else "")
        return f"| `{name}` | {text(fn)}{f' **16x8**: {int16}' if int16 else ''} |"

    rows = ["| TFLite operator | supported |", "| --- | --- |"]
    rows += [row(name, fn) for name, fn in CONVERTERS.items()]
    note = (f"\n16x8 models (int16 activations, int8 weights): {', '.join(f'`{n}`' for n in INT16_OPS)} have "
            "int16 variants; every other operator with an INT16 tensor is refused naming it.\n")
    return "\n".join(rows) + "\n" + note


def import_tflite(path: str | Path) -> tuple[tvm.IRModule, tuple[int, ...]]:
    """Read, check and import ``path``: the integer module and the model's input shape."""
    ctx = convert(read_model(path))
    return _build(ctx), ctx.shapes[ctx.model.inputs[0]]


def convert(model: Model) -> _Import:
    """Every operator of ``model`` through its converter: the integer steps, nothing built yet."""
    ctx = _check_model(model)
    for op in model.operators:
        converter = CONVERTERS.get(op.name)
        if converter is None:
            raise _unsupported_operator(model, op)
        int16 = _int16_tensor(model, op)
        ctx.elem = "INT16" if int16 is not None and op.name in INT16_OPS else "INT8"
        if int16 is not None and op.name not in INT16_GENERIC:
            converter = INT16_CONVERTERS.get(op.name) or _refuse_int16(int16)
        converter(ctx, op)
    ctx.elem = "INT8"
    for index in model.outputs:
        if index not in ctx.shapes:
            out = model.tensors[index]
            raise UnsupportedModelError(f"no operator writes the model output '{out.name}'", where=model.path)
    return ctx


def _check_model(model: Model) -> _Import:
    """The model-level checks (inputs, outputs, full-integer quantisation) and the import's start."""
    if not model.inputs or not model.outputs:
        raise UnsupportedModelError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
                                    where=model.path)
    ins = [model.tensors[i] for i in model.inputs]
    outs = [model.tensors[i] for i in model.outputs]
    floating = _float_compute(model)
    if floating is not None:
        raise _float_model_error(model, floating)
    for kind, t in [*(("input", t) for t in ins), *(("output", t) for t in outs)]:
        allowed = ("INT8", "INT16", "FLOAT32") if kind == "input" else ("INT8", "INT16", "FLOAT32", "INT32", "INT64")
        if t.dtype not in allowed:
            raise UnsupportedModelError(
                f"the model {kind} '{t.name}' is {t.dtype}: model {kind}s are INT8, INT16 (16x8) or FLOAT32"
                + (" (or ARG_MAX's INT32/INT64 indices)" if kind == "output" else ""),
                where=model.path, hint=FLOAT_HINT)
    for t in ins:
        if t.dtype == "FLOAT32" and t.shape:
            continue  # a float32 input: a QUANTIZE reads it
        if not t.shape or t.quantization is None or not t.quantization.per_tensor:
            raise UnsupportedModelError(f"the model input '{t.name}' has no shape or no per-tensor quantisation",
                                        where=model.path)
    if len(set(model.inputs)) != len(model.inputs):
        raise ModelFileError("the .tflite file is corrupt: a tensor is listed twice as a model input",
                             where=model.path)
    ctx = _Import(model)
    for t in ins:
        ctx.shapes[t.index] = tuple(t.shape)
    for op in model.operators:
        ctx.readers.update(i for i in set(op.inputs) if i >= 0)
    ctx.readers.update(model.outputs)
    return ctx


def _float_compute(model: Model) -> Operator | None:
    """The first operator that computes in float (a float or dynamic-range model): one reading float32
    activations that is not a QUANTIZE, writing float32 that is not a DEQUANTIZE, or dequantising
    constants (weights). Full-integer models with float32 edges only quantise their inputs and
    dequantise their outputs."""
    for op in model.operators:
        reads = [model.tensors[i] for i in op.inputs if i >= 0]
        writes = [model.tensors[i] for i in op.outputs if i >= 0]
        if op.name != "QUANTIZE" and any(t.dtype == "FLOAT32" and not t.is_const for t in reads):
            return op
        if op.name != "DEQUANTIZE" and any(t.dtype == "FLOAT32" for t in writes):
            return op
        if op.name == "DEQUANTIZE" and any(t.is_const for t in reads):
            return op
    return None


def _float_model_error(model: Model, op: Operator) -> UnsupportedModelError:
    """Why the model is refused, ``op`` being the first operator computing in float (``_float_compute``)."""
    consts = [model.tensors[i] for i in op.inputs if i >= 0 and model.tensors[i].is_const]
    if op.name == "DEQUANTIZE":
        what = ("the model dequantises weights at run time (float16 or dynamic-range quantisation): "
                f"DEQUANTIZE of the constant '{consts[0].name}'")
    elif any(t.dtype == "INT8" for t in consts):
        what = (f"the model is weights-only (dynamic-range) quantised: {op.name} computes in float32 with int8 "
                "weights")
    elif not any(t.dtype == "INT8" for t in model.tensors):
        what = f"this is not a full-integer model: {op.name} computes in float32"
    else:
        what = (f"{op.name} computes in float32 inside the model: float32 is supported only at its edges "
                "(QUANTIZE of a float32 input, DEQUANTIZE to a float32 output)")
    return UnsupportedModelError(what, where=model.where(op), hint=FLOAT_HINT)


def _int16_tensor(model: Model, op: Operator) -> Tensor | None:
    """The first INT16 activation ``op`` reads or writes (a 16x8 operator), or None."""
    for i in (*op.inputs, *op.outputs):
        if i >= 0 and model.tensors[i].dtype == "INT16" and not model.tensors[i].is_const:
            return model.tensors[i]
    return None


def _refuse_int16(t: Tensor) -> Converter:
    """The converter of an operator without an int16 variant: its refusal naming the tensor."""
    def refuse(ctx: _Import, op: Operator) -> None:
        ctx.int8(op, t)

    return refuse


def _unsupported_operator(model: Model, op: Operator) -> UnsupportedModelError:
    if op.name.startswith("BUILTIN_"):
        return ModelFileError(f"operator code {op.name[8:]} is not in the TFLite schema this compiler reads "
                              "(a newer converter, or a damaged file)", where=model.where(op))
    return UnsupportedModelError(f"operator {op.name} is not supported", where=model.where(op),
                                 hint="supported TFLite operators: " + ", ".join(SUPPORTED_OPS))


def _build(ctx: _Import) -> tvm.IRModule:
    """The integer module of the imported steps (one kernel call or view each)."""
    model = ctx.model
    first = model.tensors[model.inputs[0]]
    attrs: dict = {"global_symbol": "main"}
    if first.dtype in ("INT8", "INT16"):
        q = first.quantization
        attrs[INPUT_QPARAMS] = [float(q.scales[0]), float(q.zero_points[0])]
    outs = [model.tensors[i] for i in model.outputs]
    attrs[OUTPUT_QPARAMS] = [[float(t.quantization.scales[0]), float(t.quantization.zero_points[0])]
                             if t.dtype in ("INT8", "INT16") and t.quantization is not None else [] for t in outs]
    bb = relax.BlockBuilder()
    names = ["input"] if len(model.inputs) == 1 else [f"input{k}" for k in range(len(model.inputs))]
    params = [relax.Var(name, relax.TensorType(ctx.shapes[i], model.tensors[i].dtype.lower()))
              for name, i in zip(names, model.inputs, strict=True)]
    values: dict[int, relax.Expr] = dict(zip(model.inputs, params, strict=True))
    kernels = 0
    with new_main(bb, params, attrs) as result:
        for step in ctx.steps:
            args = [values[i] for i in step.inputs]
            op = step.lowered.op
            if isinstance(op, Reshape):
                values[step.output] = args[0] if op.in_shape == op.out_shape else bb.emit(
                    relax.op.reshape(args[0], op.out_shape))
                continue
            kernels += 1
            values[step.output] = emit_call(bb, f"k{kernels}_{op.kind}", op, args, step.lowered.consts,
                                            step.lowered.choice)
        result(*(values[i] for i in model.outputs))
    return relax.transform.DeadCodeElimination(["main"])(bb.get())
