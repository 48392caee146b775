"""Integer fully connected layer: (N, In) x (Out, In)^T, requantised, int8 out."""

from __future__ import annotations

from tvm import te, tirx

from ..ops import Dense
from .common import OUT, arg, finish
from .requant import clamp_to_int8, requantize


def dense(op: Dense) -> tirx.PrimFunc:
    batch, n_in = op.in_shape
    n_out = op.out_shape[-1]
    x = arg(0, op.in_shape, "int8", "x")
    weight = arg(1, (n_out, n_in), "int8", "w")
    bias = arg(2, (n_out,), "int32", "bias")
    mult = arg(3, (n_out,), "int32", "mult")
    shift = arg(4, (n_out,), "int32", "shift")
    r = te.reduce_axis((0, n_in), name="r")
    acc = te.compute(
        (batch, n_out),
        lambda b, o: te.sum(
            (x[b, r].astype("int32") - tirx.const(op.in_zp, "int32"))
            * weight[o, r].astype("int32"),
            axis=[r],
        ),
        name="acc",
    )
    out = te.compute(
        (batch, n_out),
        lambda b, o: clamp_to_int8(
            requantize(acc[b, o] + bias[o], mult[o], shift[o], op.fast_requant) + tirx.const(op.out_zp, "int32"),
            op.act_min,
            op.act_max,
        ),
        name=OUT,
    )
    return finish([x, weight, bias, mult, shift, out], op, local_blocks=("acc",))
