"""TFLite fixed-point requantisation as TIR expressions.

``requantize(acc, m, s)`` is TFLite's ``MultiplyByQuantizedMultiplier``:
a saturating rounding doubling high multiply by the Q31 multiplier ``m``
followed by a rounding right shift by ``-s`` (a left shift when ``s > 0``).
It is written with 64-bit intermediates so the C compiler maps the high
multiply to one ``smlal`` on Cortex-M, and it rounds exactly like TF Lite
Micro's reference kernels (gemmlowp's nudged high multiply, then half away
from zero in the shift).
"""

from __future__ import annotations

from collections.abc import Callable

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
    """gemmlowp SaturatingRoundingDoublingHighMul (multiplier is never INT32_MIN).

    gemmlowp computes ``trunc((ab + nudge) / 2^31)`` with ``nudge = 2^30`` for
    ``ab >= 0`` and ``1 - 2^30`` otherwise. For ``ab < 0`` the truncation of the
    negative sum is ``floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31)``, so both cases
    are ``floor((ab + 2^30) / 2^31)``: one SMLAL and a 64-bit shift, no branch.
    """
    product = x.astype("int64") * multiplier.astype("int64")
    return ((product + _i64(1 << 30)) >> _i64(31)).astype("int32")


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


def bind_requantizer(multiplier: PrimExpr, shift: PrimExpr, bind) -> Callable[[PrimExpr], PrimExpr]:
    """``requantize`` split into a per-channel part, bound once with ``bind``, and a per-value part.

    For imperative kernels (IRBuilder): ``bind`` is ``T.bind``; the shift
    amounts, rounding mask and threshold of a channel are computed once per
    channel instead of once per output. Same results as :func:`requantize`.
    """
    m = bind(multiplier)
    s = bind(shift)
    left = bind(tirx.max(s, _i32(0)))
    right = bind(tirx.max(-s, _i32(0)))
    mask = bind((_i32(1) << right) - _i32(1))
    half = bind(mask >> _i32(1))

    def apply(acc: PrimExpr) -> PrimExpr:
        def body(v):
            threshold = half + tirx.Select(v < _i32(0), _i32(1), _i32(0))
            return (v >> right) + tirx.Select((v & mask) > threshold, _i32(1), _i32(0))

        return _let("rq_high", rounding_doubling_high_mul(acc << left, m), body)

    return apply
