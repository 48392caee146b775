"""Integer fully connected layer: (N, In) x (Out, In)^T, requantised, int8 out."""

from __future__ import annotations

from tvm import te, tirx

from ..ops import Dense
from .common import OUT, arg, finish
from .requant import channel_requantizer, clamp_to_int8, requant_args


def dense(op: Dense, fast: bool) -> tirx.PrimFunc:
    batch, n_in = op.in_shape
    n_out = op.out_shape[-1]
    x = arg(0, op.in_shape, "int8", "x")
    weight = arg(1, (n_out, n_in), "int8", "w")
    bias = arg(2, (n_out,), "int32", "bias")
    mult = arg(3, (n_out,), "int32", "mult")
    rq_shape, rq_name = requant_args(n_out, fast)
    rq = arg(4, rq_shape, "int32", rq_name)
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
            channel_requantizer(op, fast, mult, rq, o)(acc[b, o] + bias[o]),
            op.act_min,
            op.act_max,
        ),
        name=OUT,
    )
    return finish([x, weight, bias, mult, rq, out], local_blocks=("acc",))
