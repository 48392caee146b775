"""Average and max pooling (NHWC int8 or int16), TFLite semantics.

Average pooling divides by the number of taps inside the image (padding is
not counted) and rounds half away from zero, as TF Lite Micro does.
"""

from __future__ import annotations

from tvm import te, tirx

from ..ops import INT_RANGE, Pool2D
from .common import OUT, finish, in_bounds, window_arg


def _i32(v: int):
    return tirx.const(v, "int32")


def pool2d(op: Pool2D) -> tirx.PrimFunc:
    _, h, w, _ = op.in_shape
    ph, pw = op.pool
    sh, sw = op.strides
    pt, pl = op.padding[0], op.padding[1]
    x, load = window_arg(0, op, op.in_shape, "x")
    rh = te.reduce_axis((0, ph), name="rh")
    rw = te.reduce_axis((0, pw), name="rw")

    def tap(b, i, j, k, fill):
        ih = i * sh + rh - pt
        iw = j * sw + rw - pl
        return tirx.if_then_else(in_bounds(ih, iw, h, w), load(b, ih, iw, k).astype("int32"), _i32(fill))

    if op.pool == (1, 1) and not any(op.padding):
        # one tap: no reduction. (With a unit max-reduction the accumulator's init, update and read share one
        # scope, and the C renderer's operand locals, like TVM's SSAGetID, reused the load made before the
        # update for the read after it: every output -128.)
        def finalize(b, i, j, k):
            return load(b, i * sh, j * sw, k).astype("int32")

        local = ()
    elif op.mode == "max":
        local = ("acc",)
        acc = te.compute(
            op.out_shape, lambda b, i, j, k: te.max(tap(b, i, j, k, INT_RANGE[op.dtype][0]), axis=[rh, rw]),
            name="acc"
        )

        def finalize(b, i, j, k):
            return acc[b, i, j, k]
    else:
        local = ("acc",)
        acc = te.compute(
            op.out_shape, lambda b, i, j, k: te.sum(tap(b, i, j, k, 0), axis=[rh, rw]), name="acc"
        )

        def finalize(b, i, j, k):
            h0 = i * sh - pt
            w0 = j * sw - pl
            count = (tirx.min(h0 + ph, h) - tirx.max(h0, 0)) * (tirx.min(w0 + pw, w) - tirx.max(w0, 0))
            total = acc[b, i, j, k]
            half = tirx.truncdiv(count, _i32(2))
            return tirx.Select(
                total > _i32(0),
                tirx.truncdiv(total + half, count),
                tirx.truncdiv(total - half, count),
            )

    out = te.compute(
        op.out_shape,
        lambda *idx: tirx.min(tirx.max(finalize(*idx), _i32(op.act_min)), _i32(op.act_max)).astype(op.dtype),
        name=OUT,
    )
    return finish([x, out], local_blocks=local)
