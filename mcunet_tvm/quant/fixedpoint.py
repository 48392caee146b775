"""TFLite's fixed-point helpers, exactly as TF Lite Micro computes them.

Real-valued rescaling factors become a Q31 multiplier and a power-of-two
shift (``QuantizeMultiplier``); the ``prepare_*`` functions compute the
integer parameters TFLM derives from the float scales of an ADD, MEAN or
SOFTMAX (same double-precision arithmetic on the same float32 inputs), so a
kernel using them produces TFLM's bytes.
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


def prepare_add(scale1: float, zp1: int, scale2: float, zp2: int, scale_out: float, zp_out: int) -> AddParams:
    """What TFLM computes for int8 ADD from the tensors' float32 scales."""
    del zp1, zp2, zp_out  # offsets are used as they are
    left_shift = 20
    s1, s2, so = _f32(scale1), _f32(scale2), _f32(scale_out)
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


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
