"""TFLite fixed-point requantisation as TIR expressions.

``requantize(acc, m, s)`` is TFLite's ``MultiplyByQuantizedMultiplier``:
a saturating rounding doubling high multiply by the Q31 multiplier ``m``
followed by a rounding right shift by ``-s`` (a left shift when ``s > 0``).
It is written with 64-bit intermediates so the C compiler maps it to one
``smull`` on Cortex-M, and it rounds exactly like TF Lite Micro's reference
kernels (half away from zero in the high multiply, half up in the shift).
"""

from __future__ import annotations

from tvm import tirx
from tvm.tirx import Expr as PrimExpr


def _i32(value: int) -> PrimExpr:
    return tirx.const(value, "int32")


def _i64(value: int) -> PrimExpr:
    return tirx.const(value, "int64")


def _let(name: str, value: PrimExpr, body) -> PrimExpr:
    """Bind ``value`` once (so C evaluates it once) and build ``body(var)``."""
    if hasattr(value, "asobject"):  # a te.TensorSlice such as ``shift[k]``
        value = value.asobject()
    if isinstance(value, (tirx.IntImm, tirx.Var)):
        return body(value)
    var = tirx.Var(name, value.ty)
    return tirx.Let(var, value, body(var))


def rounding_doubling_high_mul(x: PrimExpr, multiplier: PrimExpr) -> PrimExpr:
    """gemmlowp SaturatingRoundingDoublingHighMul (multiplier is never INT32_MIN)."""

    def body(ab):
        nudge = tirx.Select(ab >= _i64(0), _i64(1 << 30), _i64(1 - (1 << 30)))
        return tirx.truncdiv(ab + nudge, _i64(1 << 31)).astype("int32")

    return _let("rq_ab", x.astype("int64") * multiplier.astype("int64"), body)


def rounding_divide_by_pot(x: PrimExpr, exponent: PrimExpr) -> PrimExpr:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""

    def body(v):
        mask = (_i32(1) << exponent) - _i32(1)
        threshold = (mask >> _i32(1)) + tirx.Select(v < _i32(0), _i32(1), _i32(0))
        return (v >> exponent) + tirx.Select((v & mask) > threshold, _i32(1), _i32(0))

    return _let("rq_high", x, body)


def requantize(acc: PrimExpr, multiplier: PrimExpr, shift: PrimExpr) -> PrimExpr:
    """TFLite MultiplyByQuantizedMultiplier(acc, multiplier, shift)."""

    def body(s):
        left = tirx.max(s, _i32(0))
        right = tirx.max(-s, _i32(0))
        return rounding_divide_by_pot(rounding_doubling_high_mul(acc * (_i32(1) << left), multiplier), right)

    return _let("rq_shift", shift, body)


def clamp_to_int8(value: PrimExpr, lo: int, hi: int) -> PrimExpr:
    """Clamp an int32 expression to [lo, hi] and narrow it to int8."""
    return tirx.min(tirx.max(value, _i32(lo)), _i32(hi)).astype("int8")
