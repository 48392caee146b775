"""Element-wise kernels: residual add (two scales) and constant padding."""

from __future__ import annotations

from tvm import te, tirx

from ..ops import Add, Pad
from .common import OUT, arg, finish
from .requant import clamp_to_int8, requantize


def _i32(v: int):
    return tirx.const(v, "int32")


def add(op: Add) -> tirx.PrimFunc:
    """TFLite int8 ADD: rescale both inputs to a common Q(left_shift) scale, sum, requantise."""
    a = arg(0, op.in_shape, "int8", "a")
    b = arg(1, op.in_shape, "int8", "b")

    def scaled(t, idx, zp, mult, shift):
        value = (t[idx].astype("int32") - _i32(zp)) * _i32(1 << op.left_shift)
        return requantize(value, _i32(mult), _i32(shift))

    def body(*idx):
        total = scaled(a, idx, op.in1_zp, op.in1_multiplier, op.in1_shift) + scaled(
            b, idx, op.in2_zp, op.in2_multiplier, op.in2_shift
        )
        value = requantize(total, _i32(op.out_multiplier), _i32(op.out_shift)) + _i32(op.out_zp)
        return clamp_to_int8(value, op.act_min, op.act_max)

    out = te.compute(op.out_shape, body, name=OUT)
    return finish([a, b, out], op)


def pad(op: Pad) -> tirx.PrimFunc:
    """Copy into a larger tensor, filling the border with ``op.value``."""
    x = arg(0, op.in_shape, "int8", "x")

    def body(*idx):
        src = [i - lo for i, (lo, _) in zip(idx, op.pads, strict=True)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, op.in_shape, strict=True)])
        return tirx.if_then_else(inside, x[tuple(src)], tirx.const(op.value, "int8"))

    out = te.compute(op.out_shape, body, name=OUT)
    return finish([x, out], op)
