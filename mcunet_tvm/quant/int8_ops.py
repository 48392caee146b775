"""Integer operator descriptors from float quantisation parameters, by TF Lite Micro's rules.

Both ways into the integer IR meet here: ``LowerQDQToInteger`` (QDQ Relax from
PyTorch) and the TFLite importer (``frontend.tflite``) know an operator's
float scales and zero points; the functions below turn them into the op
descriptor, its constant arguments (in :attr:`OpDesc.const_args` order) and
the kernel choice that follows from the constants, with the arithmetic TFLM's
``Prepare`` uses (double-precision products of float32 scales,
``QuantizeMultiplier``), so the kernels compute TFLM's bytes. Activation
ranges follow ``CalculateActivationRangeQuantized``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..kernels.choice import KernelChoice
from ..kernels.requant import fast_requant_applies
from ..ops import (
    BINARY_FUNCTIONS,
    Add,
    AddInt16,
    BatchMatmul,
    Binary,
    Conv2D,
    Conv2DInt16,
    Dense,
    DenseInt16,
    Lut,
    Mean,
    OpDesc,
    Prelu,
    Reduce,
    Shape,
    Softmax,
    SoftmaxInt16,
    TransposeConv2D,
)
from . import fixedpoint

#: the TFLite fused activation functions an int8 kernel's clamp expresses
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@dataclass(frozen=True)
class QParams:
    """Per-tensor quantisation of an activation: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class Lowered:
    """An integer operator ready to emit: descriptor, constant arguments and kernel choice."""

    op: OpDesc
    consts: list[np.ndarray] = field(default_factory=list)
    choice: KernelChoice = field(default_factory=KernelChoice)


def activation_range(activation: str, q: QParams) -> tuple[int, int]:
    """The int8 clamp of a fused activation on an output quantised as ``q``."""
    return fixedpoint.activation_range(activation, q.scale, q.zero_point)


def requant_constants(in_scale: float, weight_scales: np.ndarray, out_scale: float, n: int):
    """Per output channel (multiplier, shift) of a conv or fully connected layer (TFLM's
    ``PopulateConvolutionQuantizationParams``: ``in * w / out`` in double from float32)."""
    mults, shifts = [], []
    for ws in np.broadcast_to(np.asarray(weight_scales, np.float32).reshape(-1), (n,)):
        real = float(np.float64(np.float32(in_scale)) * np.float64(ws) / np.float64(np.float32(out_scale)))
        m, s = fixedpoint.quantize_multiplier(real)
        mults.append(m)
        shifts.append(s)
    return np.array(mults, np.int32), np.array(shifts, np.int32)


def _abs_sums(weight: np.ndarray, channel_axis: int) -> np.ndarray:
    """Sum of |w| per output channel (the accumulator bound of ``fast_requant_applies``)."""
    w = np.moveaxis(np.abs(weight.astype(np.int64)), channel_axis, 0)
    return w.reshape(w.shape[0], -1).sum(axis=1)


def _bias(bias: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, np.int32) if bias is None else np.asarray(bias).astype(np.int32).reshape(n)


def _scales(scales: np.ndarray, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.broadcast_to(np.asarray(scales, np.float32).reshape(-1), (n,)))


def conv2d(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, weight: np.ndarray,
           weight_scales: np.ndarray, bias: np.ndarray | None, *, strides: tuple[int, int],
           padding: tuple[int, int, int, int], dilation: tuple[int, int], depthwise: bool,
           act: tuple[int, int] = (-128, 127)) -> Lowered:
    """CONV_2D (``weight`` OHWI) or DEPTHWISE_CONV_2D with multiplier 1 (``weight`` (KH, KW, C))."""
    cout = out_shape[3]
    mult, shift = requant_constants(x.scale, weight_scales, out.scale, cout)
    bias_values = _bias(bias, cout)
    kh, kw = weight.shape[0:2] if depthwise else weight.shape[1:3]
    op = Conv2D(
        in_shape=tuple(in_shape), out_shape=tuple(out_shape), kernel=(int(kh), int(kw)),
        strides=tuple(strides), padding=tuple(padding), dilation=tuple(dilation), depthwise=depthwise,
        in_zp=x.zero_point, out_zp=out.zero_point, act_min=act[0], act_max=act[1],
        in_scales=(x.scale,), out_scale=out.scale, weight_scales=_scales(weight_scales, cout),
    )
    fast = fast_requant_applies(_abs_sums(weight, -1 if depthwise else 0), bias_values, shift, x.zero_point)
    return Lowered(op, [weight.astype(np.int8), bias_values, mult, shift], KernelChoice(fast_requant=fast))


def transpose_conv_padding(out_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                           padding: str) -> tuple[int, int]:
    """(top, left) padding of TRANSPOSE_CONV: TFLM's ``TransposeConvPrepare`` runs
    ``ComputePaddingHeightWidth`` on the *output* size (dilation 1) and keeps the leading pads."""
    pads = []
    for size, k, s in zip(out_hw, kernel, strides, strict=True):
        if padding == "SAME":
            n = (size + s - 1) // s
        elif padding == "VALID":
            n = (size + s - k) // s
        else:
            raise ValueError(f"padding {padding!r} (expected SAME or VALID)")
        pads.append(max((n - 1) * s + k - size, 0) // 2)
    return pads[0], pads[1]


def transpose_conv(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, weight: np.ndarray,
                   weight_scales: np.ndarray, bias: np.ndarray | None, *, strides: tuple[int, int],
                   padding: tuple[int, int], act: tuple[int, int] = (-128, 127)) -> Lowered:
    """TRANSPOSE_CONV (``weight`` OHWI, ``padding`` (top, left) from :func:`transpose_conv_padding`):
    the requantisation of ``conv2d`` (``PopulateConvolutionQuantizationParams``) on TFLM's int32
    accumulator of the scattered products."""
    cout = out_shape[3]
    mult, shift = requant_constants(x.scale, weight_scales, out.scale, cout)
    bias_values = _bias(bias, cout)
    op = TransposeConv2D(
        in_shape=tuple(in_shape), out_shape=tuple(out_shape), kernel=(int(weight.shape[1]), int(weight.shape[2])),
        strides=tuple(strides), padding=tuple(padding), in_zp=x.zero_point, out_zp=out.zero_point,
        act_min=act[0], act_max=act[1], in_scales=(x.scale,), out_scale=out.scale,
        weight_scales=_scales(weight_scales, cout),
    )
    # every output sums a subset of its channel's taps: the sum over all of them bounds the accumulator
    fast = fast_requant_applies(_abs_sums(weight, 0), bias_values, shift, x.zero_point)
    return Lowered(op, [weight.astype(np.int8), bias_values, mult, shift], KernelChoice(fast_requant=fast))


def dense(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, weight: np.ndarray,
          weight_scales: np.ndarray, bias: np.ndarray | None, act: tuple[int, int] = (-128, 127)) -> Lowered:
    """FULLY_CONNECTED on (N, In) with ``weight`` (Out, In)."""
    n_out = weight.shape[0]
    mult, shift = requant_constants(x.scale, weight_scales, out.scale, n_out)
    bias_values = _bias(bias, n_out)
    op = Dense(tuple(in_shape), tuple(out_shape), in_scales=(x.scale,), out_scale=out.scale, in_zp=x.zero_point,
               out_zp=out.zero_point, act_min=act[0], act_max=act[1], weight_scales=_scales(weight_scales, n_out))
    fast = fast_requant_applies(_abs_sums(weight, 0), bias_values, shift, x.zero_point)
    return Lowered(op, [np.ascontiguousarray(weight).astype(np.int8), bias_values, mult, shift],
                   KernelChoice(fast_requant=fast))


def batch_matmul(lhs_shape: Shape, rhs_shape: Shape, adj_x: bool, adj_y: bool, lhs: QParams, rhs: QParams,
                 out: QParams, constant: np.ndarray | None = None) -> Lowered:
    """BATCH_MATMUL (``constant``: the right-hand operand's values, or None for an activation); TFLM's
    multiplier ``double(float(lhs_scale * rhs_scale)) / out_scale``. ValueError where TFLM refuses the
    shapes (ranks 2 to 5, equal depths, batch dimensions that broadcast)."""
    lhs_shape, rhs_shape = tuple(lhs_shape), tuple(rhs_shape)
    if not (2 <= len(lhs_shape) <= 5 and 2 <= len(rhs_shape) <= 5):
        raise ValueError(f"BATCH_MATMUL of {len(lhs_shape)}-D and {len(rhs_shape)}-D operands: TF Lite Micro "
                         "takes ranks 2 to 5")
    m, depth = lhs_shape[-2:][::-1] if adj_x else lhs_shape[-2:]
    rhs_depth, n = rhs_shape[-2:][::-1] if adj_y else rhs_shape[-2:]
    if depth != rhs_depth:
        raise ValueError(f"BATCH_MATMUL of depths {depth} and {rhs_depth}")
    out_shape = (*broadcast_shape(lhs_shape[:-2], rhs_shape[:-2]), m, n)
    real = float(np.float32(lhs.scale) * np.float32(rhs.scale)) / float(np.float32(out.scale))
    mult, shift = fixedpoint.quantize_multiplier(real)
    op = BatchMatmul(lhs_shape, out_shape, in_scales=(lhs.scale, rhs.scale), out_scale=out.scale,
                     rhs_shape=rhs_shape, adj_x=adj_x, adj_y=adj_y, const_rhs=constant is not None,
                     lhs_zp=lhs.zero_point, rhs_zp=rhs.zero_point, out_zp=out.zero_point, multiplier=mult,
                     shift=shift)
    return Lowered(op, [] if constant is None else [np.asarray(constant).astype(np.int8).reshape(rhs_shape)])


def batch_matmul_as_dense(op: BatchMatmul, rhs: np.ndarray) -> Lowered | None:
    """The BATCH_MATMUL ``op`` with a constant ``rhs`` whose batch dimensions are all 1 as a fully connected
    layer on ``lhs`` read as (rows, depth) (``adj_x``: after a transpose), exact where the weights
    ``rhs - rhs_zp`` fit int8 (symmetric right-hand operands always do); None otherwise."""
    if not op.const_rhs or math.prod(op.rhs_shape[:-2]) != 1:
        return None
    weight = np.asarray(rhs, np.int64).reshape(op.rhs_shape[-2:]) - op.rhs_zp
    weight = weight if op.adj_y else weight.T  # (outputs, depth)
    if weight.min(initial=0) < -128 or weight.max(initial=0) > 127:
        return None
    n = weight.shape[0]
    rows = math.prod(op.out_shape[:-1])
    dense_op = Dense((rows, op.depth), (rows, n), in_scales=op.in_scales, out_scale=op.out_scale, in_zp=op.lhs_zp,
                     out_zp=op.out_zp, weight_scales=(float(op.in_scales[1]),) * n)
    bias = np.zeros(n, np.int32)
    shift = np.full(n, op.shift, np.int32)
    fast = fast_requant_applies(_abs_sums(weight, 0), bias, shift, op.lhs_zp)
    return Lowered(dense_op, [weight.astype(np.int8), bias, np.full(n, op.multiplier, np.int32), shift],
                   KernelChoice(fast_requant=fast))


def add(shape: Shape, out_shape: Shape, a: QParams, b: QParams, out: QParams,
        act: tuple[int, int] = (-128, 127)) -> Lowered:
    """ADD of two int8 tensors of one shape, each with its own scale."""
    return Lowered(_rescaled_sum(Add, shape, out_shape, a, b, out, act))


def _rescaled_sum(cls: type[Add | AddInt16], shape: Shape, out_shape: Shape, a: QParams, b: QParams, out: QParams,
                  act: tuple[int, int]) -> Add | AddInt16:
    """The descriptor of TFLite's ADD arithmetic (``CalculateOpDataAdd``; int16: left shift 15)."""
    p = fixedpoint.prepare_add(a.scale, a.zero_point, b.scale, b.zero_point, out.scale, out.zero_point,
                               int16=cls is AddInt16)
    return cls(
        tuple(shape), tuple(out_shape), in_scales=(a.scale, b.scale), out_scale=out.scale,
        in1_zp=a.zero_point, in1_multiplier=p.input1_multiplier, in1_shift=p.input1_shift,
        in2_zp=b.zero_point, in2_multiplier=p.input2_multiplier, in2_shift=p.input2_shift,
        left_shift=p.left_shift, out_zp=out.zero_point, out_multiplier=p.output_multiplier,
        out_shift=p.output_shift, act_min=act[0], act_max=act[1],
    )


def broadcast_shape(a: Shape, b: Shape) -> Shape:
    """The shape TFLite (numpy) broadcasting gives operands of shapes ``a`` and ``b`` (ValueError if none)."""
    return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))


def binary(function: str, shapes: tuple[Shape, Shape], a: QParams, b: QParams, out: QParams,
           act: tuple[int, int] = (-128, 127), const_operand: int = -1, constant: np.ndarray | None = None,
           dtype: str = "int8") -> Lowered:
    """ADD, SUB, MUL, MAXIMUM or MINIMUM (``function``, lower case) of operands of ``shapes``, broadcast.

    Operand ``const_operand`` (0 or 1; -1: none) is the constant tensor ``constant``, the kernel's
    constant argument. ValueError where TFLM's Prepare refuses the scales or the shapes do not broadcast.
    The same-shape ADD of two activations is :class:`~mcunet_tvm.ops.Add` (its own fast kernel; int16:
    :class:`~mcunet_tvm.ops.AddInt16`). ``dtype`` int16: a 16x8 model's operator (ADD/SUB with TFLM's
    int16 left shift 15).
    """
    int16 = dtype == "int16"
    if function not in BINARY_FUNCTIONS:
        raise ValueError(f"binary function {function!r}")
    shapes = (tuple(shapes[0]), tuple(shapes[1]))
    out_shape = broadcast_shape(*shapes)
    params: dict[str, int] = {}
    if function in ("add", "sub"):
        q = (a.scale, a.zero_point, b.scale, b.zero_point, out.scale, out.zero_point)
        p = (fixedpoint.prepare_add(*q, check=True, int16=int16) if function == "add"
             else fixedpoint.prepare_sub(*q, int16=int16))
        if function == "add" and const_operand < 0 and shapes[0] == shapes[1]:
            return add_int16(shapes[0], a, b, out, act) if int16 else add(shapes[0], out_shape, a, b, out, act)
        params = dict(left_shift=p.left_shift, in1_multiplier=p.input1_multiplier, in1_shift=p.input1_shift,
                      in2_multiplier=p.input2_multiplier, in2_shift=p.input2_shift,
                      out_multiplier=p.output_multiplier, out_shift=p.output_shift)
    elif function == "mul":
        m = fixedpoint.prepare_mul(a.scale, b.scale, out.scale)
        params = dict(out_multiplier=m.output_multiplier, out_shift=m.output_shift)
    op = Binary(shapes[0], out_shape, in_scales=(a.scale, b.scale), out_scale=out.scale, function=function,
                in2_shape=shapes[1], const_operand=const_operand, in1_zp=a.zero_point, in2_zp=b.zero_point,
                out_zp=out.zero_point, act_min=act[0], act_max=act[1], dtype=dtype, **params)
    if const_operand < 0:
        return Lowered(op)
    if constant is None or np.asarray(constant).size != math.prod(shapes[const_operand]):
        raise ValueError(f"constant operand {const_operand} must have {math.prod(shapes[const_operand])} values")
    return Lowered(op, [np.asarray(constant).astype(dtype).reshape(shapes[const_operand])])


def prelu(shape: Shape, x: QParams, alpha: np.ndarray, a: QParams, out: QParams) -> Lowered:
    """PRELU of an activation of ``shape`` with the constant ``alpha`` (quantised ``a``), which broadcasts to
    ``shape``; TFLM's ``CalculatePreluParams``: ``in / out`` and ``in * alpha / out`` multipliers in double
    from float32 scales. ValueError if ``alpha`` does not broadcast to ``shape``."""
    alpha = np.asarray(alpha)
    if broadcast_shape(shape, alpha.shape) != tuple(shape):
        raise ValueError(f"alpha of shape {list(alpha.shape)} does not broadcast to {list(shape)}")
    s_in, s_a, s_out = (float(np.float32(s)) for s in (x.scale, a.scale, out.scale))
    m1, sh1 = fixedpoint.quantize_multiplier(s_in / s_out)
    m2, sh2 = fixedpoint.quantize_multiplier(s_in * s_a / s_out)
    op = Prelu(tuple(shape), tuple(shape), in_scales=(x.scale, a.scale), out_scale=out.scale,
               alpha_shape=tuple(int(d) for d in alpha.shape), in_zp=x.zero_point, alpha_zp=a.zero_point,
               out_zp=out.zero_point, pos_multiplier=m1, pos_shift=sh1, neg_multiplier=m2, neg_shift=sh2)
    return Lowered(op, [alpha.astype(np.int8)])


def mean_hw(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams) -> Lowered:
    """MEAN over H and W of an NHWC tensor."""
    p = fixedpoint.prepare_mean(x.scale, x.zero_point, out.scale, out.zero_point, in_shape[1] * in_shape[2])
    return Lowered(Mean(tuple(in_shape), tuple(out_shape), in_scales=(x.scale,), out_scale=out.scale,
                        in_zp=x.zero_point, out_zp=out.zero_point, multiplier=p.multiplier, shift=p.shift))


def reduce(function: str, in_shape: Shape, axes: tuple[int, ...], keep_dims: bool, x: QParams, out: QParams,
           dtype: str = "int8") -> Lowered:
    """MEAN or SUM (``function``) over ``axes`` (resolved: in range, no duplicates) of an int8 (or ``dtype``
    int16) tensor with TFLM's multiplier: a MEAN's folds in ``1 / count`` (``prepare_mean``), a SUM's is
    ``in / out`` in double."""
    in_shape, axes = tuple(in_shape), tuple(sorted(axes))
    out_shape = tuple(1 if d in axes else n for d, n in enumerate(in_shape) if keep_dims or d not in axes)
    count = math.prod(in_shape[a] for a in axes)
    if function == "mean":
        p = fixedpoint.prepare_mean(x.scale, x.zero_point, out.scale, out.zero_point, count)
        mult, shift = p.multiplier, p.shift
    elif function == "sum":
        mult, shift = fixedpoint.quantize_multiplier(float(np.float32(x.scale)) / float(np.float32(out.scale)))
    else:
        raise ValueError(f"reduction {function!r} (expected mean or sum)")
    return Lowered(Reduce(in_shape, out_shape, in_scales=(x.scale,), out_scale=out.scale, function=function,
                          axes=axes, in_zp=x.zero_point, out_zp=out.zero_point, multiplier=mult, shift=shift,
                          dtype=dtype))


def softmax(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, beta: float = 1.0) -> Lowered:
    """SOFTMAX over the last axis (int8 output: scale 1/256, zero point -128)."""
    p = fixedpoint.prepare_softmax(x.scale, beta=beta)
    return Lowered(Softmax(tuple(in_shape), tuple(out_shape), in_scales=(x.scale,), out_scale=out.scale,
                           input_multiplier=p.input_multiplier, input_left_shift=p.input_left_shift,
                           diff_min=p.diff_min))


#: every int8 value, in the order of its unsigned byte (the index of a :class:`~mcunet_tvm.ops.Lut` table)
INT8_BY_BYTE = np.arange(256, dtype=np.uint8).view(np.int8)


def lut(shape: Shape, function: str, values: np.ndarray) -> Lowered:
    """An element-wise int8 operator as its table: ``values`` is the operator applied to
    :data:`INT8_BY_BYTE` (by TFLM's arithmetic, ``reference.tflite_ops``)."""
    table = np.asarray(values).astype(np.int8).reshape(256)
    return Lowered(Lut(tuple(shape), tuple(shape), function=function), [table])


# ---- 16x8 models (int16 activations, int8 weights) ------------------------------------------------
INT16_RANGE = (-32768, 32767)


def activation_range_int16(activation: str, q: QParams) -> tuple[int, int]:
    """The int16 clamp of a fused activation (``CalculateActivationRangeQuantized`` on an int16 output)."""
    return fixedpoint.activation_range(activation, q.scale, q.zero_point, *INT16_RANGE)


def _bias16(bias: np.ndarray | None, n: int, acc64: bool) -> np.ndarray:
    dtype = np.int64 if acc64 else np.int32
    return np.zeros(n, dtype) if bias is None else np.asarray(bias).astype(dtype).reshape(n)


def conv2d_int16(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, weight: np.ndarray,
                 weight_scales: np.ndarray, bias: np.ndarray | None, *, acc64: bool, strides: tuple[int, int],
                 padding: tuple[int, int, int, int], dilation: tuple[int, int], depthwise: bool,
                 depth_multiplier: int = 1, act: tuple[int, int] = INT16_RANGE) -> Lowered:
    """CONV_2D (``weight`` OHWI) or DEPTHWISE_CONV_2D (``weight`` (KH, KW, C * M)) of a 16x8 model: the
    multipliers of ``PopulateConvolutionQuantizationParams``; ``acc64``: an int64 bias (int64 accumulator)."""
    cout = out_shape[3]
    mult, shift = requant_constants(x.scale, weight_scales, out.scale, cout)
    kh, kw = weight.shape[0:2] if depthwise else weight.shape[1:3]
    op = Conv2DInt16(
        in_shape=tuple(in_shape), out_shape=tuple(out_shape), kernel=(int(kh), int(kw)), strides=tuple(strides),
        padding=tuple(padding), dilation=tuple(dilation), depthwise=depthwise, depth_multiplier=depth_multiplier,
        acc64=acc64, act_min=act[0], act_max=act[1], in_scales=(x.scale,), out_scale=out.scale,
        weight_scales=_scales(weight_scales, cout),
    )
    return Lowered(op, [weight.astype(np.int8), _bias16(bias, cout, acc64), mult, shift])


def dense_int16(in_shape: Shape, out_shape: Shape, x: QParams, out: QParams, weight: np.ndarray,
                weight_scales: np.ndarray, bias: np.ndarray | None, *, acc64: bool,
                act: tuple[int, int] = INT16_RANGE) -> Lowered:
    """FULLY_CONNECTED of a 16x8 model on (N, In), ``weight`` (Out, In); per-tensor or per-channel
    multipliers as TFLM's ``CalculateOpDataFullyConnected`` (the same double arithmetic)."""
    n_out = weight.shape[0]
    mult, shift = requant_constants(x.scale, weight_scales, out.scale, n_out)
    op = DenseInt16(tuple(in_shape), tuple(out_shape), in_scales=(x.scale,), out_scale=out.scale, acc64=acc64,
                    act_min=act[0], act_max=act[1], weight_scales=_scales(weight_scales, n_out))
    return Lowered(op, [np.ascontiguousarray(weight).astype(np.int8), _bias16(bias, n_out, acc64), mult, shift])


def add_int16(shape: Shape, a: QParams, b: QParams, out: QParams, act: tuple[int, int] = INT16_RANGE) -> Lowered:
    """ADD of two int16 tensors of one shape: ``CalculateOpDataAdd`` with left shift 15."""
    return Lowered(_rescaled_sum(AddInt16, shape, shape, a, b, out, act))


def softmax_int16(shape: Shape, x: QParams, out: QParams, beta: float = 1.0) -> Lowered:
    """SOFTMAX of a 16x8 model over the last axis (output scale 1/32768, zero point 0), its two tables."""
    mult, shift = fixedpoint.prepare_softmax_int16(x.scale, beta)
    op = SoftmaxInt16(tuple(shape), tuple(shape), in_scales=(x.scale,), out_scale=out.scale,
                      input_multiplier=mult, input_left_shift=shift)
    return Lowered(op, list(fixedpoint.softmax_int16_tables()))
