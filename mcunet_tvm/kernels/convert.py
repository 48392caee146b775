"""Kernels that change the element type: QUANTIZE from float32, DEQUANTIZE to float32 (int8 or int16
quantised), QUANTIZE between int8 and int16 (``Requantize``), ARG_MAX (int8 in, int32/int64 indices
out)."""

from __future__ import annotations

from tvm import s_tir, te, tirx

from ..ops import INT_RANGE, ArgMax, Dequantize, Quantize, Requantize
from .common import OUT, arg, finish
from .requant import requantize


def quantize(op: Quantize) -> tirx.PrimFunc:
    """TFLM's ``AffineQuantize``: ``clamp(round(x / scale) + zp)``, the division in float32.

    ``x / scale`` is clamped to ``[-128 - zp, 127 - zp]`` first (the same result: both bounds are
    integers and rounding is monotonic), so the conversion to int32 is always defined; rounding half
    away from zero is the truncation plus one step where the (exact) remainder reaches a half.
    """
    x = arg(0, op.in_shape, "float32", "x")
    scale = tirx.const(op.scale, "float32")
    lo, hi = (tirx.const(float(v - op.zero_point), "float32") for v in INT_RANGE[op.dtype])
    one, zero = tirx.const(1, "int32"), tirx.const(0, "int32")
    half = tirx.const(0.5, "float32")

    scaled = te.compute(op.in_shape, lambda *i: tirx.max(tirx.min(x[i] / scale, hi), lo), name="scaled")

    def body(*i):
        q = scaled[i]
        t = q.astype("int32")
        rest = q - t.astype("float32")
        up = tirx.Select(rest >= half, one, zero) - tirx.Select(rest <= -half, one, zero)
        return (t + up + tirx.const(op.zero_point, "int32")).astype(op.dtype)

    # the clamped quotient: one value at a time, computed once per element
    return finish([x, te.compute(op.out_shape, body, name=OUT)], local_blocks=("scaled",))


def dequantize(op: Dequantize) -> tirx.PrimFunc:
    """TFLM's ``Dequantize``: ``(x - zp) * scale`` in float32 (the product of a float32 scale and an
    integer of at most 17 bits, exact in double, rounded once, is the float32 rounding of TFLM's double
    product)."""
    x = arg(0, op.in_shape, op.dtype, "x")
    scale = tirx.const(op.scale, "float32")
    zp = tirx.const(op.zero_point, "int32")
    out = te.compute(op.out_shape, lambda *i: (x[i].astype("int32") - zp).astype("float32") * scale, name=OUT)
    return finish([x, out])


def arg_max(op: ArgMax) -> tirx.PrimFunc:
    """ARG_MAX along ``op.axis``: the maximum, then the smallest index holding it (the first maximum
    wins, as TFLM's ``std::greater``)."""
    x = arg(0, op.in_shape, "int8", "x")
    axis, n = op.axis, op.in_shape[op.axis]

    def at(j, k):
        return (*j[:axis], k, *j[axis:])

    k = te.reduce_axis((0, n), name="k")
    top = te.compute(op.out_shape, lambda *j: te.max(x[at(j, k)], axis=k), name="top")
    r = te.reduce_axis((0, n), name="r")
    first = te.compute(op.out_shape, lambda *j: te.min(
        tirx.Select(x[at(j, r)] == top[j], r, tirx.const(n, "int32")), axis=r), name="first")
    out = te.compute(op.out_shape, lambda *j: first[j].astype(op.index_dtype), name=OUT)
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    loops = sch.get_loops(sch.get_sblock(OUT))
    for name in ("first", "top"):  # both per output element, the maximum first
        block = sch.get_sblock(name)
        sch.compute_at(block, loops[-1])
        sch.decompose_reduction(block, sch.get_loops(block)[len(loops)])
    return sch.mod["main"]


def requantize_int(op: Requantize) -> tirx.PrimFunc:
    """TFLM's ``Requantize``: ``clamp(MultiplyByQuantizedMultiplier(x - in_zp) + out_zp)`` to the output type."""
    x = arg(0, op.in_shape, op.from_dtype, "x")
    lo, hi = INT_RANGE[op.to_dtype]

    def body(*i):
        value = requantize(x[i].astype("int32") - tirx.const(op.in_zp, "int32"), tirx.const(op.multiplier, "int32"),
                           tirx.const(op.shift, "int32"), op.out_zp)
        return tirx.min(tirx.max(value, tirx.const(lo, "int32")), tirx.const(hi, "int32")).astype(op.to_dtype)

    return finish([x, te.compute(op.out_shape, body, name=OUT)])
