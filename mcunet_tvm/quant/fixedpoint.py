"""TFLite's fixed-point helpers, exactly as TF Lite Micro computes them.

Real-valued rescaling factors become a Q31 multiplier and a power-of-two
shift (``QuantizeMultiplier``); the ``prepare_*`` functions compute the
integer parameters TFLM derives from the float scales of an ADD, SUB, MUL,
MEAN or SOFTMAX (the same double or float32 arithmetic on the same float32
inputs), so a kernel using them produces TFLM's bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INT32_MAX = (1 << 31) - 1
INT32_MIN = -(1 << 31)


def _f32(value: float) -> float:
    """The float32 value TFLite stores, as a Python (double) float."""
    return float(np.float32(value))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: ``real ~= multiplier * 2^(shift - 31)``, multiplier in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(q * (1 << 31) + 0.5)  # std::round, q > 0
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, INT32_MAX
    return int(q_fixed), int(shift)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul, vectorised (int64 intermediates)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C++ division truncates
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT (round half away from zero)."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding, TFLM's default build)."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.asarray(x, np.int64) * (np.int64(1) << left)
    x = ((x + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 wrap, as in C
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)


def multiply_by_quantized_multiplier_64(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite's 64-bit ``MultiplyByQuantizedMultiplier(int64_t x, int32_t m, int shift)`` (16x8 kernels):
    the multiplier rounded to 15 bits, ``(x * m15 + 2^(14 - shift)) >> (15 - shift)``, wrapped to int32."""
    m = np.asarray(multiplier, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - np.asarray(shift, np.int64)
    result = (np.asarray(x, np.int64) * reduced + (np.int64(1) << (total - 1))) >> total
    return ((result + (1 << 31)) % (1 << 32)) - (1 << 31)


@dataclass(frozen=True)
class AddParams:
    """Integer parameters of a TFLite int8 ADD (``PrepareGeneralSubOp`` / ``CalculateOpDataAdd``)."""

    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def require_below_one(op: str, *reals: float) -> None:
    """Raise ValueError where TFLM's ``QuantizeMultiplierSmallerThanOneExp`` aborts (a multiplier not in (0, 1))."""
    for real in reals:
        if not 0.0 < real < 1.0:
            raise ValueError(f"{op}: TFLM's QuantizeMultiplierSmallerThanOneExp aborts on multiplier {real!r} "
                             "(the output scale is too small for the inputs' scales)")


def prepare_add(scale1: float, zp1: int, scale2: float, zp2: int, scale_out: float, zp_out: int,
                check: bool = False, int16: bool = False) -> AddParams:
    """What TFLM computes for int8 ADD (``int16``: int16 ADD, left shift 15 instead of 20) from the tensors'
    float32 scales (``CalculateOpDataAdd``: double arithmetic). ``check``: raise ValueError where TFLM's
    Prepare aborts."""
    del zp1, zp2, zp_out  # offsets are used as they are
    left_shift = 15 if int16 else 20
    s1, s2, so = _f32(scale1), _f32(scale2), _f32(scale_out)
    twice_max = 2 * max(s1, s2)
    real_out = twice_max / ((1 << left_shift) * so)
    if check:
        require_below_one("ADD", real_out)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(real_out)
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


def prepare_sub(scale1: float, zp1: int, scale2: float, zp2: int, scale_out: float, zp_out: int,
                int16: bool = False) -> AddParams:
    """What TFLM computes for int8 SUB (``CalculateOpDataSub``; ``int16``: int16 SUB, left shift 15): ADD's
    scheme, but in float32 arithmetic and every multiplier checked (ValueError where TFLM's Prepare aborts)."""
    del zp1, zp2, zp_out
    left_shift = 15 if int16 else 20
    twice_max = f32_mul(2.0, max(_f32(scale1), _f32(scale2)))
    reals = (f32_div(scale1, twice_max), f32_div(scale2, twice_max),
             f32_div(twice_max, f32_mul(float(1 << left_shift), scale_out)))
    require_below_one("SUB", *reals)
    (m1, sh1), (m2, sh2), (mo, sho) = (quantize_multiplier(r) for r in reals)
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


@dataclass(frozen=True)
class MulParams:
    """The output rescaling of a TFLite int8 MUL: ``s_a * s_b / s_out`` as a Q31 multiplier and shift."""

    output_multiplier: int
    output_shift: int


def prepare_mul(scale1: float, scale2: float, scale_out: float) -> MulParams:
    """What TFLM computes for int8 MUL (``CalculateOpDataMul``: one product and quotient in double)."""
    return MulParams(*quantize_multiplier(_f32(scale1) * _f32(scale2) / _f32(scale_out)))


@dataclass(frozen=True)
class MeanParams:
    """Multiplier and shift of an int8 MEAN over ``count`` elements, with 1/count folded in."""

    multiplier: int
    shift: int


def prepare_mean(scale_in: float, zp_in: int, scale_out: float, zp_out: int, count: int) -> MeanParams:
    """TFLM's reduce.cc + reference QuantizedMeanOrSum rescaling for int8 MEAN."""
    del zp_in, zp_out
    multiplier, shift = quantize_multiplier(_f32(scale_in) / _f32(scale_out))
    extra = min(int(count).bit_length() - 1, 32)
    extra = min(extra, 31 + shift)
    multiplier = (multiplier << extra) // int(count)
    return MeanParams(int(multiplier), int(shift - extra))


@dataclass(frozen=True)
class SoftmaxParams:
    """TFLite int8 softmax parameters (input scaled to Q5.26)."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def prepare_softmax(scale_in: float, beta: float = 1.0) -> SoftmaxParams:
    """``PreprocessSoftmaxScaling`` and ``CalculateInputRadius`` with 5 integer bits."""
    integer_bits = 5
    real = min(beta * _f32(scale_in) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return SoftmaxParams(multiplier, left_shift, -int(radius))


def prepare_softmax_int16(scale_in: float, beta: float = 1.0) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) of an int16 SOFTMAX: ``scale * beta / (10 / 65535)`` in double
    (the input difference scaled so [-65535, 0] covers [-10, 0], the exp table's domain)."""
    return quantize_multiplier(_f32(scale_in) * _f32(beta) / (10.0 / 65535.0))


def _libm_expf():
    """The C library's ``expf`` (what TFLM's ``std::exp(float)`` calls on the host)."""
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    fn = libm.expf
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return lambda v: np.float32(fn(float(v)))


def int16_lut(function: str, input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """TFLM's 513-entry int16 table (``LUTPopulateInt16<float>``) of ``exp`` or ``1 / (1 + x)``
    (``function``: ``exp`` or ``reciprocal``), in float32 arithmetic as TFLM computes it: 512 samples
    of the input range, each less half its midpoint interpolation error, and the range's end."""
    f32 = np.float32
    if function == "exp":
        expf = _libm_expf()
        transform = expf
    elif function == "reciprocal":
        def transform(v):
            return f32(1.0) / (f32(1.0) + f32(v))
    else:
        raise ValueError(f"int16 table of {function!r} (expected exp or reciprocal)")

    def rnd(v):  # TfLiteRound (roundf): halves away from zero (exact in double for a float32 ``v``)
        return f32(round_half_away(np.float64(v)))

    in_scale, out_scale = f32(input_scale), f32(output_scale)
    in_min = in_scale * f32(-32768 - input_zp)
    in_max = in_scale * f32(32767 - input_zp)
    out_min = out_scale * f32(-32768 - output_zp)
    out_max = out_scale * f32(32767 - output_zp)
    steps = 512
    step = (in_max - in_min) / f32(steps)
    half = step / f32(2)
    inv = f32(65536) / (out_max - out_min)
    table = np.empty(steps + 1, np.int16)
    for i in range(steps):
        val = transform(in_min + f32(i) * step)
        mid = transform(in_min + f32(i) * step + half)
        nxt = transform(in_min + f32(i + 1) * step)
        sample = rnd(val * inv)
        interp = rnd((nxt * inv + rnd(val * inv)) / f32(2))
        bias = rnd((interp - rnd(mid * inv)) / f32(2))
        table[i] = int(min(max(sample - bias, f32(-32768)), f32(32767)))
    table[steps] = int(min(max(rnd(transform(in_max) * inv), f32(-32768)), f32(32767)))
    return table


def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """The exp table over [-10, 0] and the 1 / (1 + x) table over [0, 1] of TFLM's int16 SOFTMAX
    (``InitializeLutForInt16``; the same for every layer)."""
    span = np.float32(32767 - (-32768))
    exp_table = int16_lut("exp", np.float32(10) / span, 32767, np.float32(2) / span, 0)
    reciprocal_table = int16_lut("reciprocal", np.float32(1) / span, -32768, np.float32(2) / span, 0)
    return exp_table, reciprocal_table


# ---- float32 arithmetic as TFLM's Prepare does it ---------------------------------------------

def f32_div(a: float, b: float) -> float:
    """``a / b`` computed in float32 (C++ ``float / float``), as a Python float."""
    return float(np.float32(a) / np.float32(b))


def f32_mul(a: float, b: float) -> float:
    """``a * b`` computed in float32 (C++ ``float * float``), as a Python float."""
    return float(np.float32(a) * np.float32(b))


def round_half_away(x):
    """C ``round``/``roundf`` (TfLiteRound): halves away from zero; exact for float32 inputs."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5))


def quantize_multiplier_signed(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier for any sign (double-rounding build: shift not capped at 30).

    Equals :func:`quantize_multiplier` for positive multipliers below 2^30; a negative multiplier keeps
    its sign in the Q31 significand (LEAKY_RELU with a negative alpha).
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, int(shift)


def quantize_to_int(value: float, scale: float, zero_point: int) -> int:
    """TFLite ``Quantize`` in CalculateActivationRangeQuantized: ``zp + roundf(value / scale)`` in float32."""
    return int(zero_point) + int(round_half_away(np.float32(value) / np.float32(scale)))


def activation_range(activation: str, scale: float, zero_point: int, qmin: int = -128,
                     qmax: int = 127) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for NONE, RELU, RELU6 and RELU_N1_TO_1."""
    if activation in ("NONE", None):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_to_int(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_to_int(0.0, scale, zero_point)),
                min(qmax, quantize_to_int(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_to_int(-1.0, scale, zero_point)),
                min(qmax, quantize_to_int(1.0, scale, zero_point)))
    raise ValueError(f"fused activation {activation!r} is not supported for int8 kernels")


# ---- int32 / int16 fixed point (gemmlowp), vectorised -----------------------------------------

INT16_MAX = (1 << 15) - 1
INT16_MIN = -(1 << 15)


def wrap_int32(x) -> np.ndarray:
    """Reduce to int32 two's complement (what C's int32 arithmetic leaves after an overflow)."""
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap_int16(x) -> np.ndarray:
    """Reduce to int16 two's complement (a C conversion to ``int16_t``)."""
    x = np.asarray(x, np.int64)
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32: saturating left or rounding right shift."""
    x = np.asarray(x, np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum on int32: ``(a + b + sign) / 2`` with C division."""
    total = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    total = total + np.where(total >= 0, 1, -1)
    return np.where(total >= 0, total >> 1, -((-total) >> 1))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    srdhm = saturating_rounding_doubling_high_mul
    x = wrap_int32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), 715827883) + x2), 1)
    return wrap_int32(1895147668 + srdhm(1895147668, wrap_int32(x + poly)))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: ``a`` <= 0 in Q(integer_bits).(31-integer_bits), result in Q0.31."""
    srdhm = saturating_rounding_doubling_high_mul
    a = np.asarray(a, np.int64)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_q2(half_denominator) -> np.ndarray:
    """The three Newton-Raphson steps shared by gemmlowp's logistic and tanh divisions (Q2.29)."""
    srdhm = saturating_rounding_doubling_high_mul
    x = wrap_int32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus_half_denominator_times_x = wrap_int32((1 << 29) - srdhm(half_denominator, x))
        x = wrap_int32(x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus_half_denominator_times_x), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out)."""
    x = _newton_reciprocal_q2(rounding_half_sum(a, INT32_MAX))
    return saturating_rounding_multiply_by_pot(x, 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out)."""
    x = _newton_reciprocal_q2(rounding_half_sum(a, INT32_MAX))
    return saturating_rounding_multiply_by_pot(wrap_int32(x - (1 << 29)), 2)


def fixed_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: ``a`` in Q(integer_bits), result in Q0.31."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_a = np.where(positive, a, wrap_int32(-a))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap_int32(-abs_a), integer_bits))
    if_negative = wrap_int32(INT32_MAX - if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def fixed_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh: ``a`` in Q(integer_bits), result in Q0.31."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def srdhm_int16(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    total = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(total >= 0, total >> 15, -((-total) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_doubling_high_mul_int16(a, b) -> np.ndarray:
    """TFLite's SaturatingDoublingHighMul on int16 (like SQDMULH: truncates towards zero)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    high = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_left_shift_int16(x, amount: int) -> np.ndarray:
    """TFLite hard_swish SaturatingLeftShift on int16."""
    return np.clip(np.asarray(x, np.int64) * (1 << amount), INT16_MIN, INT16_MAX)


def downscale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier."""
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (int(multiplier) + (1 << 15)) >> 16
