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

import numpy as np
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


def requantize(acc: PrimExpr, multiplier: PrimExpr, shift: PrimExpr, fast: bool = False) -> PrimExpr:
    """TFLite MultiplyByQuantizedMultiplier(acc, multiplier, shift); ``fast``: see :func:`bind_requantizer`.

    The expression form of :func:`bind_requantizer` (declarative TE kernels): the
    shift is bound once with a ``Let``, the per-channel terms stay inline.
    """
    return _let("rq_shift", shift, lambda s: bind_requantizer(multiplier, s, lambda v: v, fast)(acc))


def clamp_to_int8(value: PrimExpr, lo: int, hi: int) -> PrimExpr:
    """Clamp an int32 expression to [lo, hi] and narrow it to int8."""
    return tirx.min(tirx.max(value, _i32(lo)), _i32(hi)).astype("int8")


def fast_requant_applies(weight_abs_sums: np.ndarray, bias: np.ndarray, shift: np.ndarray, in_zp: int) -> bool:
    """Whether a layer may use the fast requantisation (see :func:`bind_requantizer`).

    ``weight_abs_sums[c]`` is the sum of |w| over output channel c's taps. Every
    shift must be a right shift (``shift <= -1``) and the accumulator bound
    ``sum|w| * max|x - zp| + |bias|`` must stay below 2^30, so the high
    multiply's result plus the rounding term cannot overflow int32.
    """
    x_max = max(127 - in_zp, in_zp + 128)
    bound = np.asarray(weight_abs_sums, np.int64) * x_max + np.abs(np.asarray(bias, np.int64))
    return bool(np.all(np.asarray(shift) <= -1) and int(bound.max(initial=0)) < (1 << 30) - 1)


def bind_requantizer(
    multiplier: PrimExpr, shift: PrimExpr, bind, fast: bool = False
) -> Callable[[PrimExpr], PrimExpr]:
    """``requantize`` split into a per-channel part, bound once with ``bind``, and a per-value part.

    For imperative kernels (IRBuilder): ``bind`` is ``T.bind``; the shift
    amounts, rounding mask and threshold of a channel are computed once per
    channel instead of once per output. Same results as :func:`requantize`.

    ``fast`` (the layer's ``fast_requant``: only right shifts ``e >= 1``, and
    ``|acc| < 2^30``): RoundingDivideByPOT(x, e) equals
    ``(x + 2^(e-1) + (x >> 31)) >> e`` (round half away from zero: the sign
    term moves negative ties down), which needs no mask or comparison.
    """
    m = bind(multiplier)
    s = bind(shift)
    if fast:
        exponent = bind(-s)
        half = bind(_i32(1) << (exponent - _i32(1)))

        def apply_fast(acc: PrimExpr) -> PrimExpr:
            return _let("rq_high", rounding_doubling_high_mul(acc, m),
                        lambda v: (v + half + (v >> _i32(31))) >> exponent)

        return apply_fast
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
