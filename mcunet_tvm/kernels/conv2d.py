"""Integer conv2d and depthwise conv2d (NHWC, int8) with fused requantisation.

One kernel computes ``clamp(requant(sum((x - zp_in) * w) + bias) + zp_out)``.
Padding is folded into the loads (a tap outside the image contributes zero),
so no padded copy of the input is ever materialised.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D
from .common import OUT, SCRATCH, arg, finish, in_bounds, window_arg
from .requant import clamp_to_int8, requantize


def conv2d(op: Conv2D) -> tirx.PrimFunc:
    if op.depthwise and op.inplace:
        return _depthwise_inplace(op)
    _, h, w, c = op.in_shape
    oc = op.out_shape[3]
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]
    wshape = (kh, kw, c) if op.depthwise else (oc, kh, kw, c)

    x, load = window_arg(0, op, op.in_shape, "x")
    weight = arg(1, wshape, "int8", "w")
    bias = arg(2, (oc,), "int32", "bias")
    mult = arg(3, (oc,), "int32", "mult")
    shift = arg(4, (oc,), "int32", "shift")
    rh = te.reduce_axis((0, kh), name="rh")
    rw = te.reduce_axis((0, kw), name="rw")

    def tap(b, i, j, ch, ki, kj):
        ih = i * sh + ki * dh - pt
        iw = j * sw + kj * dw - pl
        value = load(b, ih, iw, ch).astype("int32") - tirx.const(op.in_zp, "int32")
        return tirx.if_then_else(in_bounds(ih, iw, h, w), value, tirx.const(0, "int32"))

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


def _depthwise_inplace(op: Conv2D) -> tirx.PrimFunc:
    """Depthwise conv whose output may alias its input (MCUNet in-place depthwise).

    Channel by channel: the whole output channel is computed into a scratch
    buffer of OH x OW bytes (an argument: the planner places it in the arena),
    then copied to the output. In NHWC an output element of channel c lands on
    an input byte of channel c too (both are at index = c mod C), so with the
    output at the input's address only channel c's already consumed input is
    overwritten. Written imperatively with TVM's TIR IRBuilder because the
    scratch buffer is reused across channels, which TE cannot express.
    """
    if op.windows:
        raise ValueError("an in-place depthwise conv reads a whole buffer, not a window")
    _, h, w, c = op.in_shape
    _, oh, ow, _ = op.out_shape
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]
    i32 = lambda v: tirx.const(v, "int32")  # noqa: E731
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer(op.in_shape, "int8"))
            weight = T.arg("p1_w", T.buffer((kh, kw, c), "int8"))
            bias = T.arg("p2_bias", T.buffer((c,), "int32"))
            mult = T.arg("p3_mult", T.buffer((c,), "int32"))
            shift = T.arg("p4_shift", T.buffer((c,), "int32"))
            scratch = T.arg(SCRATCH, T.buffer((oh * ow,), "int8"))
            out = T.arg(OUT, T.buffer(op.out_shape, "int8"))
            with T.serial(0, c) as k:
                with T.grid(oh, ow) as (i, j):
                    acc = T.alloc_buffer((1,), "int32")
                    T.buffer_store(acc, bias[k], [0])
                    with T.grid(kh, kw) as (ki, kj):
                        ih = i * sh + ki * dh - pt
                        iw = j * sw + kj * dw - pl
                        value = (x[0, ih, iw, k].astype("int32") - i32(op.in_zp)) * weight[ki, kj, k].astype("int32")
                        if any(op.padding):
                            value = tirx.if_then_else(in_bounds(ih, iw, h, w), value, i32(0))
                        T.buffer_store(acc, acc[0] + value, [0])
                    result = requantize(acc[0], mult[k], shift[k]) + i32(op.out_zp)
                    T.buffer_store(scratch, clamp_to_int8(result, op.act_min, op.act_max), [i * ow + j])
                with T.grid(oh, ow) as (i, j):
                    T.buffer_store(out, scratch[i * ow + j], [0, i, j, k])
    return builder.get().with_attr("mcunet.op", op.to_json())
