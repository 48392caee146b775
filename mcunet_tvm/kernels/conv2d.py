"""Integer conv2d and depthwise conv2d (NHWC, int8) with fused requantisation.

One kernel computes ``clamp(requant(sum((x - zp_in) * w) + bias) + zp_out)``.
Padding is folded into the loads (a tap outside the image contributes zero),
so no padded copy of the input is ever materialised.
"""

from __future__ import annotations

from tvm import s_tir, te, tirx

from ..ops import Conv2D
from .common import OUT, arg, finish, in_bounds
from .requant import clamp_to_int8, requantize


def conv2d(op: Conv2D) -> tirx.PrimFunc:
    _, h, w, c = op.in_shape
    oc = op.out_shape[3]
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]
    wshape = (kh, kw, c) if op.depthwise else (oc, kh, kw, c)

    x = arg(0, op.in_shape, "int8", "x")
    weight = arg(1, wshape, "int8", "w")
    bias = arg(2, (oc,), "int32", "bias")
    mult = arg(3, (oc,), "int32", "mult")
    shift = arg(4, (oc,), "int32", "shift")
    rh = te.reduce_axis((0, kh), name="rh")
    rw = te.reduce_axis((0, kw), name="rw")

    def tap(b, i, j, ch, ki, kj):
        ih = i * sh + ki * dh - pt
        iw = j * sw + kj * dw - pl
        value = x[b, ih, iw, ch].astype("int32") - tirx.const(op.in_zp, "int32")
        return tirx.if_then_else(in_bounds(ih, iw, h, w), value, tirx.const(0, "int32"))

    if op.depthwise and op.inplace:
        return _depthwise_inplace(op, x, weight, bias, mult, shift, tap, rh, rw)
    if op.depthwise:
        acc = te.compute(
            op.out_shape,
            lambda b, i, j, k: te.sum(
                tap(b, i, j, k, rh, rw) * weight[rh, rw, k].astype("int32"), axis=[rh, rw]
            ),
            name="acc",
        )
    else:
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
            requantize(acc[b, i, j, k] + bias[k], mult[k], shift[k])
            + tirx.const(op.out_zp, "int32"),
            op.act_min,
            op.act_max,
        ),
        name=OUT,
    )
    return finish([x, weight, bias, mult, shift, out], op, local_blocks=("acc",))


def _depthwise_inplace(op: Conv2D, x, weight, bias, mult, shift, tap, rh, rw) -> tirx.PrimFunc:
    """Depthwise conv whose output may alias its input (MCUNet in-place depthwise).

    Channel by channel: the whole output channel is computed into a temporary
    of OH x OW bytes, then copied to the output. In NHWC an output element of
    channel c lands on an input byte of channel c too (both are at index
    = c mod C), so with the output at the input's address only channel c's
    already consumed input is overwritten.
    """
    _, oh, ow, c = op.out_shape
    acc = te.compute(
        (c, oh, ow),
        lambda k, i, j: te.sum(tap(0, i, j, k, rh, rw) * weight[rh, rw, k].astype("int32"), axis=[rh, rw]),
        name="acc",
    )
    tmp = te.compute(
        (c, oh, ow),
        lambda k, i, j: clamp_to_int8(
            requantize(acc[k, i, j] + bias[k], mult[k], shift[k]) + tirx.const(op.out_zp, "int32"),
            op.act_min,
            op.act_max,
        ),
        name="channel",
    )
    out = te.compute(op.out_shape, lambda b, i, j, k: tmp[k, i, j], name=OUT)
    func = te.create_prim_func([x, weight, bias, mult, shift, out])
    sch = s_tir.Schedule(func)
    b, i, j, k = sch.get_loops(sch.get_sblock(OUT))
    sch.reorder(b, k, i, j)
    channel = sch.get_sblock("channel")
    sch.compute_at(channel, k)
    inner = sch.get_loops(channel)
    acc_block = sch.get_sblock("acc")
    sch.compute_at(acc_block, inner[-1])
    loops = sch.get_loops(acc_block)
    if len(loops) > len(inner):
        sch.decompose_reduction(acc_block, loops[len(inner)])
    return sch.mod["main"].with_attr("mcunet.op", op.to_json())
