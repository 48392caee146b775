"""Int8 softmax over the last axis, bit-exact with TF Lite Micro.

TFLite's int8 softmax is pure fixed-point arithmetic from gemmlowp: the
difference to the row maximum is rescaled to Q5.26, exponentiated by
``exp_on_negative_values`` (a Taylor polynomial around -1/8 and a barrel
shifter of exp(-2^k) constants), summed in Q12.19, inverted with a
Newton-Raphson ``1 / (1 + x)`` and multiplied back.

Each fixed-point primitive is one TE stage. The schedule computes every
stage at the innermost loop of its consumer, so each intermediate becomes a
scalar in C and nothing but the input and output tensors touches memory.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import s_tir, te, tirx

from ..ops import Softmax
from .common import OUT, arg
from .requant import rounding_divide_by_pot, rounding_doubling_high_mul

INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)
_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
           (3, 720401), (4, 242))


def _c(v: int):
    return tirx.const(v, "int32")


def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul of two expressions."""
    both_min = tirx.all(a == _c(INT_MIN), b == _c(INT_MIN))
    return tirx.Select(both_min, _c(INT_MAX), rounding_doubling_high_mul(a, b))


def _sat_mul_pot(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent."""
    threshold = _c((1 << (31 - exponent)) - 1)
    return tirx.Select(x > threshold, _c(INT_MAX),
                       tirx.Select(x < -threshold, _c(INT_MIN), x * _c(1 << exponent)))


def _clz(x):
    return tirx.call_pure_extern("int32", "__builtin_clz", x.astype("uint32"))


class _Stages:
    """Element-wise TE stages over one shape, remembered in creation order."""

    def __init__(self, shape: tuple[int, ...], prefix: str) -> None:
        self.shape = shape
        self.prefix = prefix
        self.tensors: list[te.Tensor] = []

    def __call__(self, fn: Callable) -> te.Tensor:
        t = te.compute(self.shape, fn, name=f"{self.prefix}{len(self.tensors)}")
        self.tensors.append(t)
        return t


def _exp_on_negative_values(s: _Stages, a: te.Tensor) -> te.Tensor:
    """exp(a) for a <= 0 in Q5.26 (gemmlowp), result in Q0.31."""
    amq = s(lambda *i: (a[i] & _c((1 << 24) - 1)) - _c(1 << 24))
    x = s(lambda *i: _sat_mul_pot(amq[i], 5) + _c(1 << 28))
    x2 = s(lambda *i: _srdhm(x[i], x[i]))
    x3 = s(lambda *i: _srdhm(x2[i], x[i]))
    x4o4 = s(lambda *i: rounding_divide_by_pot(_srdhm(x2[i], x2[i]), _c(2)))
    cubic = s(lambda *i: rounding_doubling_high_mul(x4o4[i] + x3[i], _c(715827883)))
    poly = s(lambda *i: rounding_divide_by_pot(cubic[i] + x2[i], _c(1)))
    result = s(lambda *i: _c(1895147668) + rounding_doubling_high_mul(x[i] + poly[i], _c(1895147668)))
    for e, m in _BARREL:
        result = s(_barrel_step(a, amq, result, e, m))
    final = result
    return s(lambda *i: tirx.Select(a[i] == _c(0), _c(INT_MAX), final[i]))


def _barrel_step(a: te.Tensor, amq: te.Tensor, prev: te.Tensor, e: int, m: int) -> Callable:
    """Multiply by exp(-2^e) where bit e of the quarter-remainder is set."""

    def step(*i):
        bit = (amq[i] - a[i]) & _c(1 << (26 + e))
        return tirx.Select(bit != _c(0), rounding_doubling_high_mul(prev[i], _c(m)), prev[i])

    return step


def _newton_step(s: _Stages, hd: te.Tensor, prev: te.Tensor) -> te.Tensor:
    """One Newton-Raphson refinement of 1 / (1 + x) (gemmlowp, F2 arithmetic)."""
    # its own stage: TVM's simplifier overflows on `c - f(..) == INT_MIN` if inlined
    correction = s(lambda i: _c(1 << 29) - _srdhm(hd[i], prev[i]))
    product = s(lambda i: _srdhm(prev[i], correction[i]))
    return s(lambda i: prev[i] + _sat_mul_pot(product[i], 2))


def _scaled_exp(s: _Stages, x: te.Tensor, row_max: te.Tensor, op: Softmax) -> tuple[te.Tensor, te.Tensor]:
    """(diff to the row max, exp of the beta-rescaled diff) as stages."""
    diff = s(lambda i, k: x[i, k].astype("int32") - row_max[i])
    rescaled = s(lambda *i: rounding_doubling_high_mul(
        diff[i] * _c(1 << op.input_left_shift), _c(op.input_multiplier)))
    return diff, _exp_on_negative_values(s, rescaled)


def _reciprocal(s: _Stages, total: te.Tensor) -> tuple[te.Tensor, te.Tensor]:
    """TFLite GetReciprocal(total, 12): (1/(1+x) in Q0.31, num_bits_over_unit)."""
    hp1 = s(lambda i: _clz(total[i]))
    shifted = s(lambda i: ((total[i].astype("uint32") << hp1[i].astype("uint32"))
                           - tirx.const(1 << 31, "uint32")).astype("int32"))

    def half_sum(i):
        wide = shifted[i].astype("int64") + tirx.const(INT_MAX, "int64")
        sign = tirx.Select(wide >= tirx.const(0, "int64"), tirx.const(1, "int64"), tirx.const(-1, "int64"))
        return tirx.truncdiv(wide + sign, tirx.const(2, "int64")).astype("int32")

    hd = s(half_sum)
    x = s(lambda i: _c(1515870810) + rounding_doubling_high_mul(hd[i], _c(-1010580540)))
    for _ in range(3):
        x = _newton_step(s, hd, x)
    last = x
    recip = s(lambda i: _sat_mul_pot(last[i], 1))
    bits = s(lambda i: _c(12) - hp1[i])
    return recip, bits


def softmax(op: Softmax) -> tirx.PrimFunc:
    rows = 1
    for d in op.in_shape[:-1]:
        rows *= int(d)
    depth = int(op.in_shape[-1])
    x = arg(0, (rows, depth), "int8", "x")
    c = te.reduce_axis((0, depth), name="c")
    row_max = te.compute((rows,), lambda i: te.max(x[i, c].astype("int32"), axis=[c]), name="row_max")

    sum_stages = _Stages((rows, depth), "se")
    diff, exp = _scaled_exp(sum_stages, x, row_max, op)
    c2 = te.reduce_axis((0, depth), name="c2")
    total = te.compute(
        (rows,),
        lambda i: te.sum(tirx.Select(diff[i, c2] >= _c(op.diff_min),
                                     rounding_divide_by_pot(exp[i, c2], _c(12)), _c(0)), axis=[c2]),
        name="total",
    )
    row_stages = _Stages((rows,), "sr")
    recip, bits = _reciprocal(row_stages, total)
    out_stages = _Stages((rows, depth), "so")
    diff_o, exp_o = _scaled_exp(out_stages, x, row_max, op)

    def out_value(i, k):
        prob = rounding_divide_by_pot(_srdhm(recip[i], exp_o[i, k]), bits[i] + _c(23)) - _c(128)
        clamped = tirx.min(tirx.max(prob, _c(-128)), _c(127))
        return tirx.Select(diff_o[i, k] >= _c(op.diff_min), clamped, _c(-128)).astype("int8")

    out = te.compute((rows, depth), out_value, name=OUT)
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    row_loop, elem_loop = sch.get_loops(sch.get_sblock(OUT))
    for t in reversed(out_stages.tensors):
        sch.compute_at(sch.get_sblock(t.op.name), elem_loop)
    for t in reversed(row_stages.tensors):
        sch.compute_at(sch.get_sblock(t.op.name), row_loop)
    sch.compute_at(sch.get_sblock("total"), row_loop)
    sum_loop = sch.get_loops(sch.get_sblock("total"))[-1]
    for t in reversed(sum_stages.tensors):
        sch.compute_at(sch.get_sblock(t.op.name), sum_loop)
    sch.compute_at(sch.get_sblock("row_max"), row_loop)
    for name in ("total", "row_max"):
        block = sch.get_sblock(name)
        if len(sch.get_loops(block)) > 1:  # a one-element row has no reduction loop left
            sch.decompose_reduction(block, sch.get_loops(block)[1])
    return sch.mod["main"]
