"""Integer operators in numpy, following TF Lite Micro's reference kernels.

These are the host reference: written independently of the TIR kernels
(plain numpy, int64 accumulation, vectorised where it stays readable) and
checked against TF Lite Micro itself. All parameters are integers; no float
is touched at run time.
"""

from __future__ import annotations

import numpy as np

from ..ops import INT_RANGE
from ..quant.fixedpoint import (
    AddParams,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_64,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)


def _clamp(x: np.ndarray, lo: int, hi: int, dtype: str = "int8") -> np.ndarray:
    return np.clip(x, lo, hi).astype(dtype)


def _patches(x: np.ndarray, kh: int, kw: int, strides, padding, dilation, fill: int) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) windows of ``x`` padded with ``fill``."""
    pt, pl, pb, pr = padding
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    n, h, w, c = xp.shape
    sh, sw = strides
    dh, dw = dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, oh, ow, kh, kw, c), xp.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                                        j * dw : j * dw + sw * (ow - 1) + 1 : sw, :]
    return out


def _requant(acc: np.ndarray, bias, mult, shift, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    acc = acc + np.asarray(bias, np.int64)
    acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 accumulator, as in C
    out = multiply_by_quantized_multiplier(acc, mult, shift) + out_zp
    return _clamp(out, act_min, act_max)


def conv2d(x, w, bias, mult, shift, *, strides, padding, dilation, in_zp, out_zp, act_min, act_max):
    """CONV_2D int8, weights OHWI, per-channel requantisation."""
    _, kh, kw, _ = w.shape
    cols = _patches(x.astype(np.int64) - in_zp, kh, kw, strides, padding, dilation, 0)
    acc = np.einsum("nhwijc,oijc->nhwo", cols, w.astype(np.int64), optimize=True)
    return _requant(acc, bias, mult, shift, out_zp, act_min, act_max)


def depthwise_conv2d(x, w, bias, mult, shift, *, strides, padding, dilation, in_zp, out_zp, act_min, act_max):
    """DEPTHWISE_CONV_2D int8 with depth multiplier 1, weights (KH, KW, C)."""
    kh, kw, _ = w.shape
    cols = _patches(x.astype(np.int64) - in_zp, kh, kw, strides, padding, dilation, 0)
    acc = np.einsum("nhwijc,ijc->nhwc", cols, w.astype(np.int64), optimize=True)
    return _requant(acc, bias, mult, shift, out_zp, act_min, act_max)


def transpose_conv2d(x, w, bias, mult, shift, *, out_hw, strides, padding, in_zp, out_zp, act_min, act_max):
    """TRANSPOSE_CONV int8, weights OHWI: every input pixel's products scattered onto the output
    (TFLM's scratch accumulation; products falling outside the output dropped), then requantised."""
    n, ih, iw, _ = x.shape
    oc, kh, kw, _ = w.shape
    (oh, ow), (sh, sw), (pt, pl) = out_hw, strides, padding
    contrib = np.einsum("nyxc,oijc->nyxijo", x.astype(np.int64) - in_zp, w.astype(np.int64), optimize=True)
    # a canvas holding every landing position (input pixel y, tap i lands on row y * sh + i), the
    # output at offset (pt, pl) inside it
    full = np.zeros((n, max((ih - 1) * sh + kh, pt + oh), max((iw - 1) * sw + kw, pl + ow), oc), np.int64)
    for i in range(kh):
        for j in range(kw):
            full[:, i : i + sh * (ih - 1) + 1 : sh, j : j + sw * (iw - 1) + 1 : sw] += contrib[:, :, :, i, j]
    return _requant(full[:, pt : pt + oh, pl : pl + ow], bias, mult, shift, out_zp, act_min, act_max)


def dense(x, w, bias, mult, shift, in_zp, out_zp, act_min, act_max):
    """FULLY_CONNECTED int8, weights (Out, In)."""
    acc = (x.astype(np.int64) - in_zp) @ w.astype(np.int64).T
    return _requant(acc, bias, mult, shift, out_zp, act_min, act_max)


def batch_matmul(lhs, rhs, op):
    """BATCH_MATMUL int8 (a :class:`~mcunet_tvm.ops.BatchMatmul` ``op``): numpy's batched product of the
    offset operands (``adj_x`` / ``adj_y`` transpose the matrices), requantised, clamped."""
    a = lhs.astype(np.int64) - op.lhs_zp
    b = rhs.astype(np.int64) - op.rhs_zp
    a = np.swapaxes(a, -1, -2) if op.adj_x else a
    b = np.swapaxes(b, -1, -2) if op.adj_y else b
    acc = np.matmul(a, b)
    acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32, as in C
    return _clamp(multiply_by_quantized_multiplier(acc, op.multiplier, op.shift) + op.out_zp, -128, 127)


def add(a, b, p: AddParams, a_zp: int, b_zp: int, out_zp: int, act_min: int, act_max: int, dtype: str = "int8"):
    """ADD int8 (int16): both inputs to a shared Q(left_shift) scale, sum, requantise."""
    sa = multiply_by_quantized_multiplier((a.astype(np.int64) - a_zp) << p.left_shift,
                                          p.input1_multiplier, p.input1_shift)
    sb = multiply_by_quantized_multiplier((b.astype(np.int64) - b_zp) << p.left_shift,
                                          p.input2_multiplier, p.input2_shift)
    out = multiply_by_quantized_multiplier(wrap_int32(sa + sb), p.output_multiplier, p.output_shift) + out_zp
    return _clamp(out, act_min, act_max, dtype)


def sub(a, b, p: AddParams, a_zp: int, b_zp: int, out_zp: int, act_min: int, act_max: int, dtype: str = "int8"):
    """SUB int8 (int16): ADD's scheme with the rescaled second input subtracted (numpy broadcasting)."""
    sa = multiply_by_quantized_multiplier((a.astype(np.int64) - a_zp) << p.left_shift,
                                          p.input1_multiplier, p.input1_shift)
    sb = multiply_by_quantized_multiplier((b.astype(np.int64) - b_zp) << p.left_shift,
                                          p.input2_multiplier, p.input2_shift)
    out = multiply_by_quantized_multiplier(wrap_int32(sa - sb), p.output_multiplier, p.output_shift) + out_zp
    return _clamp(out, act_min, act_max, dtype)


def mul(a, b, a_zp: int, b_zp: int, out_zp: int, multiplier: int, shift: int, act_min: int, act_max: int,
        dtype: str = "int8"):
    """MUL int8 (int16): the product of the offset inputs requantised once (numpy broadcasting)."""
    product = (a.astype(np.int64) - a_zp) * (b.astype(np.int64) - b_zp)
    return _clamp(multiply_by_quantized_multiplier(product, multiplier, shift) + out_zp, act_min, act_max, dtype)


def prelu(x, alpha, op):
    """PRELU int8 (a :class:`~mcunet_tvm.ops.Prelu` ``op``): ``x - in_zp`` requantised by the positive
    multiplier where it is >= 0, else its product with ``alpha - alpha_zp`` (broadcast) by the negative one."""
    v = x.astype(np.int64) - op.in_zp
    pos = multiply_by_quantized_multiplier(v, op.pos_multiplier, op.pos_shift)
    neg = multiply_by_quantized_multiplier(v * (alpha.astype(np.int64) - op.alpha_zp), op.neg_multiplier,
                                           op.neg_shift)
    return _clamp(np.where(v >= 0, pos, neg) + op.out_zp, -128, 127)


def _pool_windows(x, pool, strides, padding):
    kh, kw = pool
    valid = _patches(np.ones_like(x[..., :1], dtype=np.int64), kh, kw, strides, padding, (1, 1), 0)
    return kh, kw, valid


def avg_pool2d(x, pool, strides, padding, act_min, act_max):
    """AVERAGE_POOL_2D int8 (int16): mean over the taps inside the image, rounded half away from zero."""
    kh, kw, valid = _pool_windows(x, pool, strides, padding)
    total = _patches(x.astype(np.int64), kh, kw, strides, padding, (1, 1), 0).sum(axis=(3, 4))
    count = valid.sum(axis=(3, 4))
    half = count // 2
    avg = np.where(total > 0, (total + half) // count, -((-(total - half)) // count))
    return np.clip(avg, act_min, act_max).astype(x.dtype)


def max_pool2d(x, pool, strides, padding, act_min, act_max):
    """MAX_POOL_2D int8 (int16; padded taps never win)."""
    kh, kw = pool
    windows = _patches(x.astype(np.int64), kh, kw, strides, padding, (1, 1), -(1 << 20))
    return np.clip(windows.max(axis=(3, 4)), act_min, act_max).astype(x.dtype)


def mean_hw(x, in_zp: int, out_zp: int, multiplier: int, shift: int, keepdims: bool):
    """MEAN over H and W (TFLite QuantizedMeanOrSum with 1/count folded into the multiplier)."""
    n, h, w, c = x.shape
    total = x.astype(np.int64).sum(axis=(1, 2)) - in_zp * h * w
    out = _clamp(multiply_by_quantized_multiplier(total, multiplier, shift) + out_zp, -128, 127)
    return out.reshape(n, 1, 1, c) if keepdims else out


def reduce(x, axes, in_zp: int, out_zp: int, multiplier: int, shift: int, dtype: str = "int8"):
    """MEAN or SUM over ``axes`` (TFLM QuantizedMeanOrSum: an int32 sum, ``- in_zp * count``, requantised,
    clamped to ``dtype``, int8 or int16); the reduced dimensions kept as 1."""
    axes = tuple(axes)
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=True) - in_zp * count
    total = ((total + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32, as in C
    lo, hi = INT_RANGE[dtype]
    return np.clip(multiply_by_quantized_multiplier(total, multiplier, shift) + out_zp, lo, hi).astype(dtype)


def resize_bilinear(x, rows, cols):
    """RESIZE_BILINEAR int8 from its maps ((size, 3): lower index, upper index, weight of the upper in
    1/1024): the four weighted raw values summed, rounded half away from zero by 2^20, wrapped to int8."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    v = x.astype(np.int64)
    dy, dx = rows[:, 2][None, :, None, None], cols[:, 2][None, None, :, None]
    one = 1 << 10
    total = (v[:, rows[:, 0]][:, :, cols[:, 0]] * (one - dy) * (one - dx)
             + v[:, rows[:, 1]][:, :, cols[:, 0]] * dy * (one - dx)
             + v[:, rows[:, 0]][:, :, cols[:, 1]] * (one - dy) * dx
             + v[:, rows[:, 1]][:, :, cols[:, 1]] * dy * dx)
    rounded = np.where(total > 0, (total + (1 << 19)) // (1 << 20), -((-total + (1 << 19)) // (1 << 20)))
    return rounded.astype(np.int8)


# ---- softmax: gemmlowp fixed point, written out for numpy -------------------

def _sat_mul_pot(x, exponent: int):
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, (1 << 31) - 1, np.where(x < -threshold, -(1 << 31), x << exponent))


def _exp_on_negative_values(a):
    """exp(a) for a <= 0 in Q5.26, result in Q0.31 (gemmlowp)."""
    srdhm = saturating_rounding_doubling_high_mul
    amq = (a & ((1 << 24) - 1)) - (1 << 24)
    x = _sat_mul_pot(amq, 5) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, 715827883) + x2, 1)
    result = 1895147668 + srdhm(1895147668, x + poly)
    remainder = amq - a
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        result = np.where(remainder & (1 << (26 + exponent)), srdhm(result, multiplier), result)
    return np.where(a == 0, (1 << 31) - 1, result)


def _reciprocal(total: int) -> tuple[int, int]:
    """TFLite GetReciprocal(x, 12): (1/(1+x') in Q0.31, num_bits_over_unit)."""
    srdhm = saturating_rounding_doubling_high_mul
    headroom = 32 - int(total).bit_length()
    shifted = ((int(total) << headroom) - (1 << 31)) & 0xFFFFFFFF
    shifted = shifted - (1 << 32) if shifted >= (1 << 31) else shifted
    wide = shifted + (1 << 31) - 1
    half = int(np.trunc((wide + (1 if wide >= 0 else -1)) / 2))
    x = 1515870810 + int(srdhm(half, -1010580540))
    for _ in range(3):
        correction = (1 << 29) - int(srdhm(half, x))
        x = x + int(_sat_mul_pot(np.int64(srdhm(x, correction)), 2))
    return int(_sat_mul_pot(np.int64(x), 1)), 12 - headroom


def softmax(x, input_multiplier: int, input_left_shift: int, diff_min: int):
    """SOFTMAX int8 -> int8 (scale 1/256, zero point -128) over the last axis."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        diff = row - row.max()
        keep = diff >= diff_min
        scaled = saturating_rounding_doubling_high_mul(diff * (1 << input_left_shift), input_multiplier)
        exps = _exp_on_negative_values(scaled)
        total = int(np.where(keep, rounding_divide_by_pot(exps, 12), 0).sum())
        recip, bits = _reciprocal(total)
        prob = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(recip, exps), bits + 23) - 128
        out[r] = np.where(keep, np.clip(prob, -128, 127), -128)
    return out.reshape(x.shape).astype(np.int8)


def pad(x, pads, value: int):
    """PAD with a constant (the input zero point)."""
    return np.pad(x, pads, constant_values=value).astype(x.dtype)


# ---- 16x8 models (int16 activations, int8 weights) ------------------------------------------------
def _requant16(acc: np.ndarray, bias, mult, shift, acc64: bool, act_min: int, act_max: int) -> np.ndarray:
    """The int16 kernels' epilogue: ``acc + bias`` in int64 and the 64-bit MultiplyByQuantizedMultiplier
    (``acc64``), or in int32 and the 32-bit one; clamped to ``[act_min, act_max]``."""
    acc = acc + np.asarray(bias, np.int64)
    if acc64:
        out = multiply_by_quantized_multiplier_64(acc, mult, shift)
    else:
        acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 accumulator, as in C
        out = multiply_by_quantized_multiplier(acc, mult, shift)
    return np.clip(out, act_min, act_max).astype(np.int16)


def conv2d_int16(x, w, bias, mult, shift, op) -> np.ndarray:
    """CONV_2D / DEPTHWISE_CONV_2D of a 16x8 model (a :class:`~mcunet_tvm.ops.Conv2DInt16` ``op``):
    weights OHWI, or (KH, KW, C * M) depthwise; taps outside the image skipped (zero point 0)."""
    kh, kw = op.kernel
    cols = _patches(x.astype(np.int64), kh, kw, op.strides, op.padding, op.dilation, 0)
    if op.depthwise:
        cols = np.repeat(cols, op.depth_multiplier, axis=-1)  # output channel o reads input channel o // M
        acc = np.einsum("nhwijc,ijc->nhwc", cols, np.asarray(w, np.int64).reshape(kh, kw, -1), optimize=True)
    else:
        acc = np.einsum("nhwijc,oijc->nhwo", cols, np.asarray(w, np.int64), optimize=True)
    return _requant16(acc, bias, mult, shift, op.acc64, op.act_min, op.act_max)


def dense_int16(x, w, bias, mult, shift, op) -> np.ndarray:
    """FULLY_CONNECTED of a 16x8 model (a :class:`~mcunet_tvm.ops.DenseInt16` ``op``), weights (Out, In)."""
    acc = x.astype(np.int64) @ np.asarray(w, np.int64).T
    return _requant16(acc, bias, mult, shift, op.acc64, op.act_min, op.act_max)


def add_int16(a, b, op) -> np.ndarray:
    """ADD of a 16x8 model (an :class:`~mcunet_tvm.ops.AddInt16` ``op``): TFLM's general int16 path."""
    sa = multiply_by_quantized_multiplier((a.astype(np.int64) - op.in1_zp) << op.left_shift,
                                          op.in1_multiplier, op.in1_shift)
    sb = multiply_by_quantized_multiplier((b.astype(np.int64) - op.in2_zp) << op.left_shift,
                                          op.in2_multiplier, op.in2_shift)
    total = ((sa + sb + (1 << 31)) % (1 << 32)) - (1 << 31)
    out = multiply_by_quantized_multiplier(total, op.out_multiplier, op.out_shift) + op.out_zp
    return np.clip(out, op.act_min, op.act_max).astype(np.int16)


def lut_lookup_int16(value: np.ndarray, table: np.ndarray) -> np.ndarray:
    """TFLM's ``LUTLookup(int16_t, const int16_t *)``: the entry of the top 9 bits plus the slope to the
    next one times the low 7 bits, rounded (the slope and the result wrap to int16, as in C)."""
    v = np.asarray(value, np.int64)
    t = np.asarray(table, np.int64)
    index = 256 + (v >> 7)
    base = t[index]
    slope = ((t[index + 1] - base + (1 << 15)) % (1 << 16)) - (1 << 15)
    delta = (slope * (v & 0x7F) + 64) >> 7
    return (((base + delta + (1 << 15)) % (1 << 16)) - (1 << 15)).astype(np.int16)


def softmax_int16(x, exp_table, reciprocal_table, op) -> np.ndarray:
    """SOFTMAX of a 16x8 model over the last axis (a :class:`~mcunet_tvm.ops.SoftmaxInt16` ``op``):
    TFLM's ``SoftmaxInt16`` with its two tables."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, op.input_multiplier, op.input_left_shift)
    exps = lut_lookup_int16(np.clip(scaled + 32767, -32768, 32767), exp_table).astype(np.int64)
    total = exps.sum(axis=1, keepdims=True)
    headroom = np.array([[32 - int(t).bit_length()] for t in total[:, 0]], np.int64)  # CountLeadingZeros
    shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
    recip = lut_lookup_int16(np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767),
                             reciprocal_table).astype(np.int64)
    right = 31 - headroom
    out = (exps * recip + (np.int64(1) << (right - 1))) >> right
    return np.clip(out, 0, 32767).astype(np.int16).reshape(x.shape)


def requantize(x, op) -> np.ndarray:
    """QUANTIZE between int8 and int16 (a :class:`~mcunet_tvm.ops.Requantize` ``op``): TFLM's Requantize."""
    lo, hi = INT_RANGE[op.to_dtype]
    out = multiply_by_quantized_multiplier(x.astype(np.int64) - op.in_zp, op.multiplier, op.shift) + op.out_zp
    return np.clip(out, lo, hi).astype(op.to_dtype)
