"""Integer fully connected layer: (N, In) x (Out, In)^T, requantised, int8 out; BATCH_MATMUL (per batch, both
operands offset by their zero points)."""

from __future__ import annotations

from tvm import te, tirx

from ..ops import BatchMatmul, Dense
from .common import OUT, arg, finish
from .requant import channel_requantizer, clamp_to_int8, requant_args, requantize_const


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


def _batch_index(shape, batch) -> tuple:
    """The batch indices of an operand of ``shape`` (its matrix dimensions excluded) for the output's
    ``batch`` indices: aligned on the right, 0 where the operand broadcasts."""
    dims = shape[:-2]
    tail = batch[len(batch) - len(dims) :] if dims else ()
    return tuple(0 if d == 1 else b for d, b in zip(dims, tail, strict=True))


def batch_matmul(op: BatchMatmul) -> tirx.PrimFunc:
    """``out[b, i, j] = requant(sum_k (lhs[b, i, k] - lhs_zp) * (rhs[b, k, j] - rhs_zp))`` (``adj_x`` /
    ``adj_y`` swap an operand's matrix indices; broadcast batch dimensions read index 0), one int32 sum
    per output. Parameters: ``lhs``, then ``rhs`` (an activation or the constant), then the output."""
    lhs = arg(0, op.in_shape, "int8", "lhs")
    rhs = arg(1, op.rhs_shape, "int8", "rhs")
    depth = op.depth
    r = te.reduce_axis((0, depth), name="r")

    def total(*idx):
        batch, (i, j) = idx[:-2], idx[-2:]
        a = lhs[(*_batch_index(op.in_shape, batch), *((r, i) if op.adj_x else (i, r)))]
        b = rhs[(*_batch_index(op.rhs_shape, batch), *((j, r) if op.adj_y else (r, j)))]
        return te.sum((a.astype("int32") - tirx.const(op.lhs_zp, "int32"))
                      * (b.astype("int32") - tirx.const(op.rhs_zp, "int32")), axis=[r])

    acc = te.compute(op.out_shape, total, name="acc")
    bound = 255 * 255 * depth
    out = te.compute(op.out_shape, lambda *idx: clamp_to_int8(
        requantize_const(acc(*idx), op.multiplier, op.shift, bound, op.out_zp), -128, 127), name=OUT)
    return finish([lhs, rhs, out], local_blocks=("acc",))
