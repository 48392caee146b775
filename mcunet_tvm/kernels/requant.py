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


def _expr(value) -> PrimExpr:
    """A TIR expression from a value or a ``te.TensorSlice`` such as ``shift[k]``."""
    return value.asobject() if hasattr(value, "asobject") else value


def _let(name: str, value: PrimExpr, body) -> PrimExpr:
    """Bind ``value`` once (so C evaluates it once) and build ``body(var)``."""
    value = _expr(value)
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


def requantize(acc: PrimExpr, multiplier: PrimExpr, shift: PrimExpr, out_zp: int = 0) -> PrimExpr:
    """TFLite ``MultiplyByQuantizedMultiplier(acc, multiplier, shift) + out_zp`` (any shift)."""
    return _let("rq_shift", shift, lambda s: bind_requantizer(multiplier, s, lambda v: v, out_zp)(acc))


def clamp_to_int8(value: PrimExpr, lo: int | PrimExpr, hi: int | PrimExpr) -> PrimExpr:
    """Clamp an int32 expression to [lo, hi] and narrow it to int8.

    The int8 range is one SSAT (``mcunet_ssat8``); a tighter activation range
    adds a compare only on the side that needs it (a bound given as an
    expression, a run-time value, always gets its compare).
    """
    value = tirx.call_extern("int32", "mcunet_ssat8", value)
    if not isinstance(lo, int) or lo > -128:
        value = tirx.max(value, _i32(lo) if isinstance(lo, int) else lo)
    if not isinstance(hi, int) or hi < 127:
        value = tirx.min(value, _i32(hi) if isinstance(hi, int) else hi)
    return value.astype("int8")


#: the largest right shift of the fast form: ``|v| + 128 * 2^e + 2^(e-1)`` must stay below 2^31
MAX_FAST_EXPONENT = 22


def fast_requant_applies(weight_abs_sums: np.ndarray, bias: np.ndarray, shift: np.ndarray, in_zp: int) -> bool:
    """Whether a layer may use the fast requantisation (:func:`fast_requantize`).

    ``weight_abs_sums[c]`` is the sum of |w| over output channel c's taps. Every
    shift must be a right shift of at most :data:`MAX_FAST_EXPONENT` bits and the
    accumulator bound ``sum|w| * max|x - zp| + |bias|`` must stay below 2^30, so
    that ``2 * acc`` and the rounded high product plus the rounding term cannot
    overflow int32.
    """
    x_max = max(127 - in_zp, in_zp + 128)
    bound = np.asarray(weight_abs_sums, np.int64) * x_max + np.abs(np.asarray(bias, np.int64))
    shift = np.asarray(shift)
    return bool(np.all((shift <= -1) & (shift >= -MAX_FAST_EXPONENT)) and int(bound.max(initial=0)) < (1 << 30) - 1)


def pack_fast_requant(shift: np.ndarray, out_zp: int) -> np.ndarray:
    """The fast kernels' per-channel constants, computed at compile time.

    Channel c gets the pair (``e = -shift[c]``, ``2^(e-1) + out_zp * 2^e``),
    interleaved so a kernel loads both with one LDRD.
    """
    e = -np.asarray(shift, np.int64)
    rounding = (np.int64(1) << (e - 1)) + np.int64(out_zp) * (np.int64(1) << e)
    return np.stack([e, rounding], axis=1).reshape(-1).astype(np.int32)


def fast_requantize(
    acc: PrimExpr, multiplier: PrimExpr, exponent: PrimExpr, rounding: PrimExpr, doubled: bool = False
) -> PrimExpr:
    """``MultiplyByQuantizedMultiplier(acc) + out_zp`` for layers where :func:`fast_requant_applies`.

    With ``v = SRDHM(acc, m) = floor((acc * m + 2^30) / 2^31)`` (see
    :func:`rounding_doubling_high_mul`), which is SMMULR's ``floor((2acc * m +
    2^31) / 2^32)``, RoundingDivideByPOT(v, e) + zp is
    ``(v + 2^(e-1) + zp * 2^e + (v >> 31)) >> e``. ``v >> 31`` may be replaced by
    ``acc >> 31``: they differ only when ``acc < 0`` and ``v = 0``, where both
    sums shift to 0. So one SMMLAR (``c + SMMULR(a, b)``) with the addend
    ``rounding + (acc >> 31)`` and one arithmetic shift do the whole
    requantisation; ``rounding`` comes from :func:`pack_fast_requant`.

    ``doubled``: the kernel accumulated ``2 * acc`` (doubled inputs or weights,
    which int16 lanes hold), so the doubling costs no instruction per output.
    """

    def body(a):
        addend = rounding + (a >> _i32(31))
        return tirx.call_extern("int32", "mcunet_smmlar", a if doubled else a + a, multiplier, addend) >> exponent

    return _let("rq_acc", acc, body)


def const_requant_is_fast(shift: int, acc_bound: int, out_zp: int = 0) -> bool:
    """Whether :func:`requantize_const` takes a fast form (one SMMLAR of ``2 acc``) for these constants."""
    if acc_bound >= (1 << 30) - 1:
        return False
    return -MAX_FAST_EXPONENT <= shift <= -1 or (shift == 0 and abs(out_zp) <= 128)


def requantize_const(acc: PrimExpr, multiplier: int, shift: int, acc_bound: int, out_zp: int = 0,
                     doubled: bool = False) -> PrimExpr:
    """``MultiplyByQuantizedMultiplier(acc, multiplier, shift) + out_zp`` with compile-time constants.

    ``acc_bound`` bounds ``|acc|``; when it and the shift allow
    (:func:`const_requant_is_fast`), the fast form (:func:`fast_requantize`,
    one SMMLAR and a shift) is used, else the general one. ``doubled``: the
    caller passes ``2 acc`` (fast forms only).
    """
    if const_requant_is_fast(shift, acc_bound, out_zp) and shift != 0:
        e, rounding = (int(v) for v in pack_fast_requant(np.array([shift]), out_zp))
        return fast_requantize(acc, _i32(multiplier), _i32(e), _i32(rounding), doubled)
    if const_requant_is_fast(shift, acc_bound, out_zp):  # SRDHM only: no rounding shift
        twice = _expr(acc) if doubled else _expr(acc) + _expr(acc)
        return tirx.call_extern("int32", "mcunet_smmlar", twice, _i32(multiplier), _i32(out_zp))
    assert not doubled, "only the fast requantisation takes a doubled accumulator"
    return requantize(acc, _i32(multiplier), _i32(shift), out_zp)


def bind_requantizer(
    multiplier: PrimExpr, shift: PrimExpr, bind, out_zp: int = 0
) -> Callable[[PrimExpr], PrimExpr]:
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
            return (v >> right) + tirx.Select((v & mask) > threshold, _i32(1), _i32(0)) + _i32(out_zp)

        return _let("rq_high", rounding_doubling_high_mul(acc << left, m), body)

    return apply


def requant_args(n: int, fast: bool) -> tuple[tuple[int, ...], str]:
    """Shape and name of a conv/dense kernel's last constant: shifts, or packed fast constants."""
    return ((2 * n,), "rq") if fast else ((n,), "shift")


def channel_requantizer(op, fast: bool, mult, rq, k: PrimExpr, bind=None,
                        doubled: bool = False) -> Callable[[PrimExpr], PrimExpr]:
    """``acc -> requantised + out_zp`` for output channel ``k`` of a conv/dense ``op``
    (``fast``: the layer's kernel choice takes the fast requantisation).

    ``mult`` and ``rq`` are the kernel's multiplier and :func:`requant_args`
    buffers; ``bind`` binds the per-channel constants once (``T.bind`` in
    IRBuilder kernels; by default the values stay inline, as TE expressions need).
    ``doubled``: the accumulator holds ``2 * acc`` (fast layers only, see
    :func:`fast_requantize`).
    """
    bind = bind or _expr
    if fast:
        m, e, r = bind(mult[k]), bind(rq[2 * k]), bind(rq[2 * k + 1])
        return lambda acc: fast_requantize(acc, m, e, r, doubled)
    assert not doubled, "only the fast requantisation takes doubled accumulators"
    return bind_requantizer(mult[k], rq[k], bind, op.out_zp)
