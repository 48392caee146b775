"""Int8 TF Lite Micro kernels in numpy, bit-exact with TFLM's reference kernels.

Each function takes int8 arrays, the tensors' float32 scales and integer zero
points and the operator's attributes as a .tflite file stores them, derives
the integer parameters the way the TFLM kernel's Prepare does (same float32
or double arithmetic, same ``QuantizeMultiplier``) and computes the output with
the same integer arithmetic as its Eval (tensorflow/lite/kernels/internal/
reference/ and tflite-micro/tensorflow/lite/micro/kernels/, double-rounding
``MultiplyByQuantizedMultiplier`` as in TFLM's default build).

Operators (int8 activations, per-tensor activation quantisation):

- unary: RELU, RELU6, LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH, QUANTIZE (int8 -> int8), PRELU
- binary with numpy broadcasting (TFLM's BroadcastBinaryOpSimple, up to 8-D): ADD, SUB, MUL (fused
  NONE/RELU/RELU6/RELU_N1_TO_1), MAXIMUM, MINIMUM
- data movement: TRANSPOSE (<= 5-D), CONCATENATION (<= 6-D, <= 10 inputs, equal qparams), SPLIT,
  SPLIT_V, SLICE (<= 5-D), STRIDED_SLICE (<= 4-D; begin/end/shrink masks), PACK, UNPACK,
  PAD/PADV2 (<= 5-D), MIRROR_PAD (REFLECT/SYMMETRIC), RESHAPE/SQUEEZE/EXPAND_DIMS
- RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (align_corners, half_pixel_centers; 4-D NHWC)
- TRANSPOSE_CONV (per-channel int8 weights OHWI, optional int32 bias, int32 accumulator)
- DEPTHWISE_CONV_2D (per-channel, any depth multiplier, strides, dilation)
- MEAN and SUM over any axes (TFLM's QuantizedMeanOrSum; TFLM has no separate int8 H,W path)
- ARG_MAX / ARG_MIN (int32 output), BATCH_MATMUL (<= 5-D, adj_x/adj_y, batch broadcasting)

Not here because TFLM has no such kernel: a standalone RELU_N1_TO_1 (TFLM registers none; the fused
activation of ADD/SUB/MUL/convolutions is supported), int8 DEQUANTIZE (not needed).

Where TFLM refuses a configuration in Prepare (or aborts on a TFLITE_CHECK),
the function raises ValueError naming it. Where TFLM silently ignores
something (the qparams of MAXIMUM/MINIMUM, RESIZE_*, RELU6's output; the
output scale of LOGISTIC/TANH; STRIDED_SLICE's ``offset``), so does this
module, and the docstring says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..quant.fixedpoint import (
    INT32_MIN,
    activation_range,
    downscale_int32_to_int16_multiplier,
    f32_div,
    f32_mul,
    fixed_logistic,
    fixed_tanh,
    multiply_by_quantized_multiplier,
    prepare_add,
    prepare_mean,
    quantize_multiplier,
    quantize_multiplier_signed,
    round_half_away,
    rounding_divide_by_pot,
    saturating_doubling_high_mul_int16,
    saturating_left_shift_int16,
    srdhm_int16,
    wrap_int16,
    wrap_int32,
)
from .intops import add as _add_kernel

I8_MIN, I8_MAX = -128, 127


def _i8(x) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), I8_MIN, I8_MAX).astype(np.int8)


def _cdiv(a, b: int) -> np.ndarray:
    """C integer division (truncates towards zero) by a positive ``b``."""
    a = np.asarray(a, np.int64)
    return np.where(a >= 0, a // b, -((-a) // b))


def _wide(x) -> np.ndarray:
    return np.asarray(x).astype(np.int64)


def _mbqm(x, multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier on int32 values (wrapping to int32 first, as C does)."""
    return multiply_by_quantized_multiplier(wrap_int32(x), multiplier, shift)


# ---- unary ----------------------------------------------------------------------------------------

def relu(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """RELU: TFLM CalculateReluOpData + ReluQuantized (float32 scale ratio, requantised, clamp at zero)."""
    mult, shift = quantize_multiplier(f32_div(in_scale, out_scale))
    lo = max(I8_MIN, out_zp + int(round_half_away(np.float32(0.0) / np.float32(out_scale))))
    return np.clip(out_zp + _mbqm(_wide(x) - in_zp, mult, shift), lo, I8_MAX).astype(np.int8)


def relu6(x, in_scale: float, in_zp: int) -> np.ndarray:
    """RELU6: TFLM Relu6Prepare/Relu6Quantized, a clamp to [zp, quantised 6] on the input's scale.

    TFLM ignores the output tensor's quantisation (the converter gives it the input's).
    """
    six = int(np.clip(round_half_away(np.float32(6.0) / np.float32(in_scale)) + in_zp, I8_MIN, I8_MAX))
    x = np.asarray(x, np.int8)
    return np.where(x > six, six, np.where(x < in_zp, in_zp, x)).astype(np.int8)


def leaky_relu(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """LEAKY_RELU: TFLM CalculateOpDataLeakyRelu + QuantizeLeakyRelu (identity and alpha multipliers).

    The alpha multiplier is ``float(in_scale * alpha / out_scale)``; a negative alpha is applied as a
    positive multiplier and a negated result, as TFLM does.
    """
    m_alpha, s_alpha = quantize_multiplier_signed(f32_div(f32_mul(in_scale, alpha), out_scale))
    m_id, s_id = quantize_multiplier_signed(f32_div(in_scale, out_scale))
    v = _wide(x) - in_zp
    pos = _mbqm(v, m_id, s_id)
    neg = _mbqm(v, abs(m_alpha), s_alpha)
    neg = -neg if m_alpha < 0 else neg
    return _i8(out_zp + np.where(v >= 0, pos, neg))


def hard_swish(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """HARD_SWISH: TFLM HardSwishPrepare + reference_ops::HardSwish (int16 fixed point).

    TFLM refuses (Prepare) an output multiplier above 1, i.e. ``in_scale / 128 > out_scale``.
    """
    hires_scale = f32_mul(1.0 / 128.0, in_scale)
    out_m, out_exp = quantize_multiplier(f32_div(hires_scale, out_scale))
    if out_exp > 0:
        raise ValueError("HARD_SWISH: TFLM requires output_multiplier_exponent <= 0 (in_scale/128 <= out_scale)")
    relu_m, relu_exp = quantize_multiplier(f32_div(hires_scale, 3.0 / 32768.0))
    out_m16 = downscale_int32_to_int16_multiplier(out_m)
    relu_m16 = downscale_int32_to_int16_multiplier(relu_m)

    hires = wrap_int16((_wide(x) - in_zp) * (1 << 7))
    preshift_out = srdhm_int16(hires, out_m16)
    reluish = hires
    if relu_exp > 0:
        reluish = saturating_left_shift_int16(reluish, relu_exp - 1)
    reluish = srdhm_int16(reluish, relu_m16)
    if relu_exp > 0:
        reluish = saturating_left_shift_int16(reluish, 1)
    if relu_exp < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1
    out = rounding_divide_by_pot(saturating_doubling_high_mul_int16(reluish, preshift_out), -out_exp)
    return _i8(wrap_int16(out + out_zp))


def _q4_input_params(in_scale: float) -> tuple[int, int, int]:
    """Input multiplier, left shift and range radius of TFLM's int8 LOGISTIC/TANH (4 integer bits)."""
    q, left_shift = math.frexp(float(np.float32(in_scale)) * float(1 << 27))
    mult = int(round_half_away(q * (1 << 31)))
    mult = INT32_MIN if mult == 1 << 31 else mult  # static_cast<int32_t>(2^31), as on x86
    radius = math.floor(15.0 * (1 << 27) / (1 << left_shift))  # CalculateInputRadius(4, shift, 31)
    return mult, left_shift, radius


def logistic(x, in_scale: float, in_zp: int, out_zp: int = -128) -> np.ndarray:
    """LOGISTIC: TFLM CalculateArithmeticOpDataLogistic + reference_integer_ops::Logistic (gemmlowp logistic).

    TFLM requires the output zero point -128 (refused otherwise) and assumes scale 1/256 without checking.
    """
    if out_zp != -128:
        raise ValueError("LOGISTIC: TFLM requires an int8 output zero point of -128")
    mult, shift, radius = _q4_input_params(in_scale)
    v = _wide(x) - in_zp
    q0 = fixed_logistic(_mbqm(v, mult, shift), 4)
    out = _i8(rounding_divide_by_pot(q0, 23) - 128)
    return np.where(v <= -radius, I8_MIN, np.where(v >= radius, I8_MAX, out)).astype(np.int8)


def tanh(x, in_scale: float, in_zp: int) -> np.ndarray:
    """TANH: TFLM Tanh CalculateArithmeticOpData + reference_integer_ops::Tanh (gemmlowp tanh).

    TFLM ignores the output's quantisation and writes scale 1/128, zero point 0.
    """
    mult, shift, radius = _q4_input_params(in_scale)
    v = _wide(x) - in_zp
    out = _i8(rounding_divide_by_pot(fixed_tanh(_mbqm(v, mult, shift), 4), 24))
    return np.where(v <= -radius, I8_MIN, np.where(v >= radius, I8_MAX, out)).astype(np.int8)


def quantize(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """QUANTIZE int8 -> int8: TFLM PrepareQuantizeReference (double ratio) + reference_ops::Requantize."""
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    return _i8(_mbqm(_wide(x) - in_zp, mult, shift) + out_zp)


def quantize_float(x, out_scale: float, out_zp: int, dtype: str = "int8") -> np.ndarray:
    """QUANTIZE float32 -> int8 (or ``dtype`` int16): reference_ops::AffineQuantize, ``round(x / (float)scale)
    + zp`` (float32 division, TfLiteRound: halves away from zero), clamped to the output type."""
    q = np.asarray(x, np.float32) / np.float32(out_scale)
    info = np.iinfo(dtype)
    return np.clip(round_half_away(q) + out_zp, info.min, info.max).astype(dtype)


def dequantize(x, in_scale: float, in_zp: int) -> np.ndarray:
    """DEQUANTIZE int8 (int16) -> float32: reference_ops::Dequantize, ``(float)((double)scale * (x - zp))``."""
    return (np.float64(np.float32(in_scale)) * (np.asarray(x, np.int64) - in_zp)).astype(np.float32)


def prelu(x, alpha, in_scale: float, in_zp: int, alpha_scale: float, alpha_zp: int, out_scale: float,
          out_zp: int) -> np.ndarray:
    """PRELU: TFLM CalculatePreluParams + reference_ops::BroadcastPrelu4DSlow (alpha broadcast to ``x``)."""
    s_in, s_a, s_out = (float(np.float32(s)) for s in (in_scale, alpha_scale, out_scale))
    m1, sh1 = quantize_multiplier(s_in / s_out)
    m2, sh2 = quantize_multiplier(s_in * s_a / s_out)
    v = _wide(x) - in_zp
    a = _wide(alpha) - alpha_zp
    out = np.where(v >= 0, _mbqm(v, m1, sh1), _mbqm(v * a, m2, sh2))
    return _i8(out + out_zp)


# ---- binary ---------------------------------------------------------------------------------------

def _check_below_one(*reals: float) -> None:
    for real in reals:
        if not 0.0 < real < 1.0:
            raise ValueError(f"TFLM's QuantizeMultiplierSmallerThanOneExp aborts on multiplier {real!r}")


def add(a, b, a_scale: float, a_zp: int, b_scale: float, b_zp: int, out_scale: float, out_zp: int,
        activation: str = "NONE") -> np.ndarray:
    """ADD: TFLM CalculateOpDataAdd (double arithmetic, left_shift 20) + reference_integer_ops AddFunc."""
    s1, s2, so = (float(np.float32(s)) for s in (a_scale, b_scale, out_scale))
    twice_max = 2 * max(s1, s2)
    _check_below_one(twice_max / ((1 << 20) * so))
    params = prepare_add(a_scale, a_zp, b_scale, b_zp, out_scale, out_zp)
    lo, hi = activation_range(activation, out_scale, out_zp)
    return _add_kernel(_wide(a), _wide(b), params, a_zp, b_zp, out_zp, lo, hi)


def sub(a, b, a_scale: float, a_zp: int, b_scale: float, b_zp: int, out_scale: float, out_zp: int,
        activation: str = "NONE") -> np.ndarray:
    """SUB: TFLM CalculateOpDataSub (float32 arithmetic, left_shift 20) + reference_ops Sub/BroadcastQuantSubSlow."""
    twice_max = float(np.float32(2) * max(np.float32(a_scale), np.float32(b_scale)))
    reals = (f32_div(a_scale, twice_max), f32_div(b_scale, twice_max),
             f32_div(twice_max, f32_mul(float(1 << 20), out_scale)))
    _check_below_one(*reals)
    (m1, s1), (m2, s2), (mo, so) = (quantize_multiplier(r) for r in reals)
    lo, hi = activation_range(activation, out_scale, out_zp)
    x1 = multiply_by_quantized_multiplier((_wide(a) - a_zp) << 20, m1, s1)
    x2 = multiply_by_quantized_multiplier((_wide(b) - b_zp) << 20, m2, s2)
    out = multiply_by_quantized_multiplier(wrap_int32(x1 - x2), mo, so) + out_zp
    return np.clip(out, lo, hi).astype(np.int8)


def mul(a, b, a_scale: float, a_zp: int, b_scale: float, b_zp: int, out_scale: float, out_zp: int,
        activation: str = "NONE") -> np.ndarray:
    """MUL: TFLM CalculateOpDataMul (one multiplier ``s_a * s_b / s_out`` in double) + MulElementwise."""
    s1, s2, so = (float(np.float32(s)) for s in (a_scale, b_scale, out_scale))
    mult, shift = quantize_multiplier(s1 * s2 / so)
    lo, hi = activation_range(activation, out_scale, out_zp)
    out = out_zp + _mbqm((_wide(a) - a_zp) * (_wide(b) - b_zp), mult, shift)
    return np.clip(out, lo, hi).astype(np.int8)


def maximum(a, b) -> np.ndarray:
    """MAXIMUM: TFLM MaximumMinimumBroadcastSlow on the raw int8 values (no requantisation, qparams ignored)."""
    return np.maximum(np.asarray(a, np.int8), np.asarray(b, np.int8))


def minimum(a, b) -> np.ndarray:
    """MINIMUM: TFLM MaximumMinimumBroadcastSlow on the raw int8 values (no requantisation, qparams ignored)."""
    return np.minimum(np.asarray(a, np.int8), np.asarray(b, np.int8))


# ---- data movement --------------------------------------------------------------------------------

def transpose(x, perm: Sequence[int]) -> np.ndarray:
    """TRANSPOSE: TFLM TransposePrepare (<= 5-D, constant in-range permutation) + reference Transpose."""
    x = np.asarray(x)
    if x.ndim > 5:
        raise ValueError("TRANSPOSE: TFLM supports at most 5 dimensions")
    if len(perm) != x.ndim or any(not 0 <= p < x.ndim for p in perm):
        raise ValueError(f"TRANSPOSE: permutation {list(perm)} does not fit a {x.ndim}-D input")
    return np.ascontiguousarray(np.transpose(x, perm))


def concatenation(inputs: Sequence[np.ndarray], axis: int, scales: Sequence[float], zero_points: Sequence[int],
                  out_scale: float, out_zp: int) -> np.ndarray:
    """CONCATENATION: TFLM ConcatenationPrepare + reference Concatenation.

    TFLM's int8 kernel never requantises: Prepare refuses inputs whose scale or zero point differ from
    the output's, more than 10 inputs and more than 6 dimensions (the converter inserts QUANTIZE ops
    so that the qparams agree).
    """
    if len(inputs) > 10:
        raise ValueError("CONCATENATION: TFLM accepts at most 10 inputs")
    for scale, zp in zip(scales, zero_points, strict=True):
        if np.float32(scale) != np.float32(out_scale) or zp != out_zp:
            raise ValueError("CONCATENATION: TFLM's int8 kernel requires every input's scale and zero point "
                             "to equal the output's")
    if any(np.ndim(t) > 6 for t in inputs):
        raise ValueError("CONCATENATION: TFLM supports at most 6 dimensions")
    return np.concatenate([np.asarray(t, np.int8) for t in inputs], axis=axis)


def _axis(axis: int, ndim: int, op: str) -> int:
    resolved = axis + ndim if axis < 0 else axis
    if not 0 <= resolved < ndim:
        raise ValueError(f"{op}: axis {axis} out of range for a {ndim}-D input")
    return resolved


def split(x, num_splits: int, axis: int) -> list[np.ndarray]:
    """SPLIT: TFLM SplitEval (constant axis, negative allowed) into equal parts."""
    x = np.asarray(x)
    axis = _axis(axis, x.ndim, "SPLIT")
    if x.shape[axis] % num_splits:
        raise ValueError(f"SPLIT: dimension {x.shape[axis]} is not divisible by {num_splits}")
    return [np.ascontiguousarray(p) for p in np.split(x, num_splits, axis=axis)]


def split_v(x, size_splits: Sequence[int], axis: int) -> list[np.ndarray]:
    """SPLIT_V: TFLM SplitVEval; one size may be -1 (the remainder), as the output shapes give it."""
    x = np.asarray(x)
    axis = _axis(axis, x.ndim, "SPLIT_V")
    sizes = list(size_splits)
    if sizes.count(-1) > 1:
        raise ValueError("SPLIT_V: at most one size may be -1")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != x.shape[axis] or min(sizes) < 0:
        raise ValueError(f"SPLIT_V: sizes {list(size_splits)} do not add up to {x.shape[axis]}")
    return [np.ascontiguousarray(p) for p in np.split(x, np.cumsum(sizes)[:-1], axis=axis)]


def slice_(x, begin: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """SLICE: TFLM SliceEval + reference Slice (<= 5-D; size -1 means to the end)."""
    x = np.asarray(x)
    if x.ndim > 5 or len(begin) != x.ndim or len(size) != x.ndim:
        raise ValueError("SLICE: TFLM needs begin and size for each of at most 5 dimensions")
    index = []
    for b, s, d in zip(begin, size, x.shape, strict=True):
        stop = d if s == -1 else b + s
        if not 0 <= b <= stop <= d:
            raise ValueError(f"SLICE: begin {b}, size {s} out of range for dimension {d}")
        index.append(slice(b, stop))
    return np.ascontiguousarray(x[tuple(index)])


def _ss_start(start: int, stride: int, size: int, masked: bool) -> int:
    """strided_slice::StridedSliceStartForAxis."""
    if start < 0:
        start += size
    start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
    if masked:
        start = 0 if stride > 0 else size - 1
    return start


def _ss_stop(stop: int, start: int, stride: int, size: int, masked: bool, shrink: bool) -> int:
    """strided_slice::StridedSliceEndForAxis (``offset`` false, as TFLM builds its params)."""
    if shrink:
        return start if start >= size else start + 1
    if stop < 0:
        stop += size
    stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
    if masked:
        stop = size if stride > 0 else -1
    return stop


def strided_slice(x, begin: Sequence[int], end: Sequence[int], strides: Sequence[int], begin_mask: int = 0,
                  end_mask: int = 0, shrink_axis_mask: int = 0, ellipsis_mask: int = 0,
                  new_axis_mask: int = 0) -> np.ndarray:
    """STRIDED_SLICE: TFLM StridedSlicePrepare (<= 4-D, constant indices) + reference StridedSlice.

    TFLM builds its parameters with ellipsis_mask and new_axis_mask forced to 0 and ``offset`` false;
    a model using the first two is refused here (the converter rewrites them into plain masks and
    RESHAPE ops). Zero strides are refused as in Prepare.
    """
    x = np.asarray(x)
    ranges = strided_slice_ranges(x.shape, begin, end, strides, begin_mask, end_mask, shrink_axis_mask,
                                  ellipsis_mask, new_axis_mask)
    index = [list(taps) for taps, _ in ranges]
    shape = [len(taps) for taps, shrink in ranges if not shrink]
    return np.ascontiguousarray(x[np.ix_(*index)].reshape(shape))


def strided_slice_ranges(shape: Sequence[int], begin: Sequence[int], end: Sequence[int], strides: Sequence[int],
                         begin_mask: int = 0, end_mask: int = 0, shrink_axis_mask: int = 0, ellipsis_mask: int = 0,
                         new_axis_mask: int = 0) -> list[tuple[range, bool]]:
    """STRIDED_SLICE's indices per input dimension as TFLM's Prepare and Eval compute them: (the input
    indices read, whether the axis is shrunk); ValueError where TFLM refuses (see :func:`strided_slice`)."""
    if len(shape) > 4:
        raise ValueError("STRIDED_SLICE: TFLM supports at most 4 dimensions")
    if ellipsis_mask or new_axis_mask:
        raise ValueError("STRIDED_SLICE: TFLM ignores ellipsis_mask and new_axis_mask")
    if not len(begin) == len(end) == len(strides) == len(shape):
        raise ValueError("STRIDED_SLICE: begin, end and strides need one value per input dimension")
    ranges = []
    for axis, size in enumerate(shape):
        stride = int(strides[axis])
        if stride == 0:
            raise ValueError("STRIDED_SLICE: stride value has to be non-zero")
        shrink = bool(shrink_axis_mask >> axis & 1)
        start = _ss_start(int(begin[axis]), stride, int(size), bool(begin_mask >> axis & 1))
        stop = _ss_stop(int(end[axis]), start, stride, int(size), bool(end_mask >> axis & 1), shrink)
        ranges.append((range(start, stop, stride), shrink))
    return ranges


def pack(inputs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """PACK: TFLM PackImpl (values stacked along ``axis``, negative allowed; no requantisation)."""
    return np.stack([np.asarray(t) for t in inputs], axis=_axis(axis, np.ndim(inputs[0]) + 1, "PACK"))


def unpack(x, axis: int) -> list[np.ndarray]:
    """UNPACK: TFLM UnpackImpl (one output per index along ``axis``)."""
    x = np.asarray(x)
    axis = _axis(axis, x.ndim, "UNPACK")
    return [np.ascontiguousarray(np.take(x, i, axis=axis)) for i in range(x.shape[axis])]


def pad(x, paddings, pad_value: int) -> np.ndarray:
    """PAD / PADV2: TFLM PadPrepare (<= 5-D, constant non-negative paddings) + reference Pad.

    ``pad_value`` is the output zero point for PAD and the int8 constant for PADV2 (whose scale and
    zero point TFLM requires to equal the output's).
    """
    x = np.asarray(x, np.int8)
    paddings = np.asarray(paddings, np.int64).reshape(-1, 2)
    if x.ndim > 5 or paddings.shape[0] != x.ndim or (paddings < 0).any():
        raise ValueError("PAD: TFLM needs non-negative (before, after) paddings for each of at most 5 dimensions")
    return np.pad(x, paddings, constant_values=np.int8(pad_value))


def padv2(x, paddings, constant, constant_scale: float, constant_zp: int, out_scale: float,
          out_zp: int) -> np.ndarray:
    """PADV2: :func:`pad` with the int8 scalar ``constant``; TFLM refuses a constant whose scale or zero
    point differs from the output's."""
    if np.float32(constant_scale) != np.float32(out_scale) or constant_zp != out_zp:
        raise ValueError("PADV2: TFLM requires constant_values to have the output's scale and zero point")
    if np.size(constant) != 1:
        raise ValueError("PADV2: constant_values must be a scalar")
    return pad(x, paddings, int(np.asarray(constant).reshape(-1)[0]))


def _mirror_index(i: np.ndarray, left: int, size: int, offset: int) -> np.ndarray:
    """mirror_pad.cc GetInputDimension, vectorised over output positions ``i``."""
    left_side = left + offset - 1 - np.minimum(i, left - 1)
    j = i - left - size
    right_side = size - (1 + offset) - np.minimum(j, size - (1 + offset))
    return np.where(i < left, left_side, np.where(i - left >= size, right_side, i - left))


def mirror_pad(x, paddings, mode: str) -> np.ndarray:
    """MIRROR_PAD: TFLM MirrorPadEval (REFLECT leaves out the edge, SYMMETRIC repeats it)."""
    x = np.asarray(x)
    paddings = np.asarray(paddings, np.int64).reshape(-1, 2)
    if paddings.shape[0] != x.ndim:
        raise ValueError("MIRROR_PAD: one (before, after) pair per input dimension")
    offset = {"REFLECT": 1, "SYMMETRIC": 0}[mode.upper()]
    index = [_mirror_index(np.arange(d + lo + hi), lo, d, offset) for d, (lo, hi) in zip(x.shape, paddings,
                                                                                          strict=True)]
    return np.ascontiguousarray(x[np.ix_(*index)])


def reshape(x, shape: Sequence[int]) -> np.ndarray:
    """RESHAPE / SQUEEZE / EXPAND_DIMS: a copy under the new shape (TFLM copies the bytes)."""
    return np.asarray(x).reshape(tuple(shape)).copy()


# ---- resize ---------------------------------------------------------------------------------------

def nearest_indices(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """reference_ops::GetNearestNeighbor for every output position (float32 arithmetic)."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    pos = (np.arange(out_size).astype(np.float32) + f32(0.5 if half_pixel_centers else 0.0)) * scale
    idx = round_half_away(pos) if align_corners else np.floor(pos.astype(np.float64))
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    return np.maximum(idx, 0) if half_pixel_centers else idx


def resize_nearest_neighbor(x, size: Sequence[int], align_corners: bool = False,
                            half_pixel_centers: bool = False) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR: reference_ops::ResizeNearestNeighbor on NHWC (qparams ignored, as in TFLM)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError("RESIZE_NEAREST_NEIGHBOR: TFLM needs a 4-D input")
    ys = nearest_indices(size[0], x.shape[1], align_corners, half_pixel_centers)
    xs = nearest_indices(size[1], x.shape[2], align_corners, half_pixel_centers)
    return np.ascontiguousarray(x[:, ys][:, :, xs])


def bilinear_taps(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool):
    """ComputeInterpolationValuesInteger: (scaled position in 1/1024, lower, upper) per output position
    (int64 arrays)."""
    if align_corners and out_size > 1:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64) * scale_10
    if half_pixel_centers:
        v = v + scale_10 // 2 - (1 << 9)
    lower = np.maximum(_cdiv(v, 1 << 10), 0)
    upper = np.minimum(_cdiv(v + (1 << 10) - 1, 1 << 10), in_size - 1)
    return v, lower, upper


def resize_bilinear(x, size: Sequence[int], align_corners: bool = False,
                    half_pixel_centers: bool = False) -> np.ndarray:
    """RESIZE_BILINEAR int8: reference_ops::ResizeBilinearInteger (10-bit positions, int64 sums).

    TFLM refuses half_pixel_centers together with align_corners; input and output qparams are ignored.
    """
    if half_pixel_centers and align_corners:
        raise ValueError("RESIZE_BILINEAR: if half_pixel_centers is True, align_corners must be False")
    x = _wide(x)
    if x.ndim != 4:
        raise ValueError("RESIZE_BILINEAR: TFLM needs a 4-D input")
    iy, y0, y1 = bilinear_taps(size[0], x.shape[1], align_corners, half_pixel_centers)
    ix, x0, x1 = bilinear_taps(size[1], x.shape[2], align_corners, half_pixel_centers)
    dy = (iy - (1 << 10) * y0)[None, :, None, None]
    dx = (ix - (1 << 10) * x0)[None, None, :, None]
    one = 1 << 10
    total = (x[:, y0][:, :, x0] * (one - dy) * (one - dx) + x[:, y1][:, :, x0] * dy * (one - dx)
             + x[:, y0][:, :, x1] * (one - dy) * dx + x[:, y1][:, :, x1] * dy * dx)
    return wrap_int8(_cdiv(total + np.where(total > 0, 1 << 19, -(1 << 19)), 1 << 20))


def wrap_int8(x) -> np.ndarray:
    """C conversion of an integer to ``int8_t`` (two's complement wrap)."""
    return np.asarray(x, np.int64).astype(np.int8)


# ---- convolutions ---------------------------------------------------------------------------------

def per_channel_multipliers(in_scale: float, filter_scales, out_scale: float, channels: int):
    """PopulateConvolutionQuantizationParams: per output channel QuantizeMultiplier of
    ``double(in_scale) * double(filter_scale) / double(out_scale)`` (a single filter scale is broadcast)."""
    scales = np.asarray(filter_scales, np.float32).reshape(-1)
    if scales.size not in (1, channels):
        raise ValueError(f"{scales.size} filter scales for {channels} output channels")
    scales = np.broadcast_to(scales, (channels,))
    pairs = [quantize_multiplier(float(np.float32(in_scale)) * float(s) / float(np.float32(out_scale)))
             for s in scales]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def _conv_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """ComputePaddingHeightWidth: the leading padding of one spatial dimension."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out = (in_size + stride - effective) // stride
    else:
        raise ValueError(f"unknown padding {padding!r}")
    return max((out - 1) * stride + effective - in_size, 0) // 2


def _requant_per_channel(acc, bias, mult, shift, out_zp: int, activation: str, out_scale: float) -> np.ndarray:
    if bias is not None:
        acc = acc + _wide(bias)
    lo, hi = activation_range(activation, out_scale, out_zp)
    return np.clip(_mbqm(acc, mult, shift) + out_zp, lo, hi).astype(np.int8)


def transpose_conv(x, weights, bias, in_scale: float, in_zp: int, filter_scales, out_scale: float, out_zp: int,
                   output_shape: Sequence[int], stride: Sequence[int], padding: str,
                   activation: str = "NONE") -> np.ndarray:
    """TRANSPOSE_CONV int8: TFLM TransposeConvPrepare + reference_integer_ops::TransposeConv.

    ``weights`` are OHWI with per-output-channel scales (zero points ignored, as TFLM does); ``bias``
    int32 or None. Products are scattered into an int32 accumulator, then requantised per channel.
    Padding comes from ComputePaddingHeightWidth on the *output* size.
    """
    x, w = _wide(x), _wide(weights)
    n, ih, iw, _ = x.shape
    oc, kh, kw, _ = w.shape
    oh, ow = int(output_shape[1]), int(output_shape[2])
    sh, sw = stride
    ph, pw = _conv_padding(padding, oh, kh, sh), _conv_padding(padding, ow, kw, sw)
    full = np.zeros((n, (ih - 1) * sh + kh, (iw - 1) * sw + kw, oc), np.int64)
    contrib = np.einsum("nyxc,oijc->nyxijo", x - in_zp, w, optimize=True)
    for i in range(kh):
        for j in range(kw):
            full[:, i:i + sh * (ih - 1) + 1:sh, j:j + sw * (iw - 1) + 1:sw, :] += contrib[:, :, :, i, j, :]
    acc = np.zeros((n, oh, ow, oc), np.int64)
    top, left = ph, pw
    y_hi, x_hi = min(full.shape[1], top + oh), min(full.shape[2], left + ow)
    acc[:, :y_hi - top, :x_hi - left] = full[:, top:y_hi, left:x_hi]
    mult, shift = per_channel_multipliers(in_scale, filter_scales, out_scale, oc)
    return _requant_per_channel(wrap_int32(acc), bias, mult, shift, out_zp, activation, out_scale)


def depthwise_conv2d(x, weights, bias, in_scale: float, in_zp: int, filter_scales, out_scale: float, out_zp: int,
                     stride: Sequence[int], padding: str, dilation: Sequence[int] = (1, 1),
                     depth_multiplier: int = 1, activation: str = "NONE") -> np.ndarray:
    """DEPTHWISE_CONV_2D int8: reference_integer_ops::DepthwiseConvPerChannel, any depth multiplier.

    ``weights`` are (1, KH, KW, C * depth_multiplier); output channel ``c * M + m`` reads input channel ``c``.
    """
    x, w = _wide(x), _wide(weights)
    n, ih, iw, ic = x.shape
    _, kh, kw, oc = w.shape
    if oc != ic * depth_multiplier:
        raise ValueError(f"DEPTHWISE_CONV_2D: {oc} output channels != {ic} inputs x multiplier {depth_multiplier}")
    sh, sw = stride
    dh, dw = dilation
    oh = (ih + sh - 1) // sh if padding == "SAME" else (ih + sh - ((kh - 1) * dh + 1)) // sh
    ow = (iw + sw - 1) // sw if padding == "SAME" else (iw + sw - ((kw - 1) * dw + 1)) // sw
    ph, pw = _conv_padding(padding, ih, kh, sh, dh), _conv_padding(padding, iw, kw, sw, dw)
    xp = np.zeros((n, ih + 2 * ph + kh * dh + sh * oh, iw + 2 * pw + kw * dw + sw * ow, ic), np.int64)
    xp[:, ph:ph + ih, pw:pw + iw] = x - in_zp
    xm = np.repeat(xp, depth_multiplier, axis=3)
    acc = np.zeros((n, oh, ow, oc), np.int64)
    for i in range(kh):
        for j in range(kw):
            tap = xm[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            acc += tap * w[0, i, j]
    mult, shift = per_channel_multipliers(in_scale, filter_scales, out_scale, oc)
    return _requant_per_channel(wrap_int32(acc), bias, mult, shift, out_zp, activation, out_scale)


# ---- reductions -----------------------------------------------------------------------------------

def _resolve_axes(axes: Sequence[int], ndim: int) -> list[int]:
    """reference_ops::ResolveAxis: negative axes wrapped, duplicates dropped."""
    out: list[int] = []
    for a in axes:
        r = a + ndim if a < 0 else a
        if not 0 <= r < ndim:
            raise ValueError(f"reduction axis {a} out of range for a {ndim}-D input")
        if r not in out:
            out.append(r)
    return out


def _mean_or_sum(x, axes, keep_dims: bool, in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                 compute_sum: bool) -> np.ndarray:
    """reference_ops::QuantizedMeanOrSum with TFLM's PrepareMeanOrSumHelper multiplier (double ratio)."""
    x = _wide(x)
    resolved = _resolve_axes(axes, x.ndim)
    count = int(np.prod([x.shape[a] for a in resolved])) if resolved else 1
    total = wrap_int32(x.sum(axis=tuple(resolved), keepdims=True)) if resolved else x
    if compute_sum:
        mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    else:
        p = prepare_mean(in_scale, in_zp, out_scale, out_zp, count)
        mult, shift = p.multiplier, p.shift
    out = _i8(_mbqm(wrap_int32(total - in_zp * count), mult, shift) + out_zp)
    if not keep_dims:
        out = out.reshape([d for i, d in enumerate(out.shape) if i not in resolved])
    return out


def mean(x, axes: Sequence[int], keep_dims: bool, in_scale: float, in_zp: int, out_scale: float,
         out_zp: int) -> np.ndarray:
    """MEAN int8: TFLM EvalMeanHelper -> QuantizedMeanOrSum, 1/count folded into the multiplier.

    This TFLM has a special H,W path for float32 only; int8 always takes the general path.
    """
    return _mean_or_sum(x, axes, keep_dims, in_scale, in_zp, out_scale, out_zp, compute_sum=False)


def reduce_sum(x, axes: Sequence[int], keep_dims: bool, in_scale: float, in_zp: int, out_scale: float,
               out_zp: int) -> np.ndarray:
    """SUM int8: TFLM EvalSumHelper -> QuantizedMeanOrSum, the int32 sum requantised by in/out scale."""
    return _mean_or_sum(x, axes, keep_dims, in_scale, in_zp, out_scale, out_zp, compute_sum=True)


def arg_max(x, axis: int) -> np.ndarray:
    """ARG_MAX: reference_ops::ArgMinMax with std::greater (first maximum wins), int32 output."""
    x = np.asarray(x)
    return np.argmax(x, axis=_axis(axis, x.ndim, "ARG_MAX")).astype(np.int32)


def arg_min(x, axis: int) -> np.ndarray:
    """ARG_MIN: reference_ops::ArgMinMax with std::less (first minimum wins), int32 output."""
    x = np.asarray(x)
    return np.argmin(x, axis=_axis(axis, x.ndim, "ARG_MIN")).astype(np.int32)


def batch_matmul(lhs, rhs, lhs_scale: float, lhs_zp: int, rhs_scale: float, rhs_zp: int, out_scale: float,
                 out_zp: int, adj_x: bool = False, adj_y: bool = False) -> np.ndarray:
    """BATCH_MATMUL int8: TFLM BatchMatMulPrepare + reference_ops::BatchMatMul (int32 accumulator).

    The multiplier is ``double(float(lhs_scale * rhs_scale)) / double(out_scale)``
    (GetQuantizedConvolutionMultipler); ranks 2..5, batch dimensions broadcast numpy-style, no fused
    activation (output clamped to int8).
    """
    lhs, rhs = _wide(lhs), _wide(rhs)
    if not (2 <= lhs.ndim <= 5 and 2 <= rhs.ndim <= 5):
        raise ValueError("BATCH_MATMUL: TFLM supports ranks 2 to 5")
    a = np.swapaxes(lhs, -1, -2) if adj_x else lhs
    b = np.swapaxes(rhs, -1, -2) if adj_y else rhs
    if a.shape[-1] != b.shape[-2]:
        raise ValueError("BATCH_MATMUL: accumulation dimensions differ")
    mult, shift = quantize_multiplier(float(np.float32(lhs_scale) * np.float32(rhs_scale))
                                      / float(np.float32(out_scale)))
    acc = wrap_int32(np.matmul(a - lhs_zp, b - rhs_zp))
    return _i8(_mbqm(acc, mult, shift) + out_zp)
