"""Integer conv2d (NHWC, int8) with fused requantisation; depthwise is in ``depthwise.py``.

One kernel computes ``clamp(requant(sum((x - zp_in) * w) + bias) + zp_out)``.
Padding is folded into the loads (a tap outside the image contributes zero),
so no padded copy of the input is ever materialised.
"""

from __future__ import annotations

from tvm import te, tirx

from ..ops import Conv2D
from .common import OUT, arg, finish, in_bounds, window_arg
from .requant import channel_requantizer, clamp_to_int8, requant_args


def conv2d(op: Conv2D, fast: bool) -> tirx.PrimFunc:
    """A regular convolution's plain kernel (``fast``: the fast requantisation)."""
    _, h, w, c = op.in_shape
    oc = op.out_shape[3]
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]

    x, load = window_arg(0, op, op.in_shape, "x")
    weight = arg(1, (oc, kh, kw, c), "int8", "w")
    bias = arg(2, (oc,), "int32", "bias")
    mult = arg(3, (oc,), "int32", "mult")
    rq_shape, rq_name = requant_args(oc, fast)
    rq = arg(4, rq_shape, "int32", rq_name)
    rh = te.reduce_axis((0, kh), name="rh")
    rw = te.reduce_axis((0, kw), name="rw")

    def tap(b, i, j, ch, ki, kj):
        ih = i * sh + ki * dh - pt
        iw = j * sw + kj * dw - pl
        value = load(b, ih, iw, ch).astype("int32") - tirx.const(op.in_zp, "int32")
        return tirx.if_then_else(in_bounds(ih, iw, h, w), value, tirx.const(0, "int32"))

    rc = te.reduce_axis((0, c), name="rc")
    acc = te.compute(
        op.out_shape,
        lambda b, i, j, k: te.sum(
            tap(b, i, j, rc, rh, rw) * weight[k, rh, rw, rc].astype("int32"),
            axis=[rh, rw, rc],
        ),
        name="acc",
    )
    out = te.compute(
        op.out_shape,
        lambda b, i, j, k: clamp_to_int8(
            channel_requantizer(op, fast, mult, rq, k)(acc[b, i, j, k] + bias[k]),
            op.act_min,
            op.act_max,
        ),
        name=OUT,
    )
    return finish([x, weight, bias, mult, rq, out], local_blocks=("acc",))
