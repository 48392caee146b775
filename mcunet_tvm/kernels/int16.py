"""Kernels of 16x8 models (int16 activations, int8 weights): TFLM's ``reference_integer_ops`` int16
arithmetic in scalar TIR.

Convolutions and fully connected layers sum ``x * w`` (the input zero point is 0) and requantise
with the 64-bit ``MultiplyByQuantizedMultiplier`` (an int64 bias: the multiplier rounded to 15 bits,
``(acc * m15 + 2^(14 - shift)) >> (15 - shift)``) or the 32-bit one (an int32 bias), then clamp in
int16. Where a sum of products cannot leave int32 (at most :data:`INT32_PRODUCTS` products of
|w| <= 128 and |x| <= 32768) the products are summed in int32 and widened once (the same int64
value), so only the bias and the requantisation are 64-bit. ADD is TFLM's general path with left
shift 15; SOFTMAX reads the two 513-entry tables (constant arguments) as TFLM's ``LUTLookup``.
"""

from __future__ import annotations

import math

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import AddInt16, Conv2DInt16, DenseInt16, SoftmaxInt16
from .common import OUT, arg, finish, guarded, inside
from .requant import requantize

#: the most int8 x int16 products an int32 sum holds exactly (128 * 32768 each)
INT32_PRODUCTS = ((1 << 31) - 1) // (128 * 32768)


def _i32(v: int):
    return tirx.const(v, "int32")


def _i64(v: int):
    return tirx.const(v, "int64")


def requantize_64(acc, multiplier, shift):
    """TFLite's 64-bit ``MultiplyByQuantizedMultiplier(int64_t acc, int32_t m, int shift)``, wrapped to
    int32 as the C cast does."""
    m = multiplier.asobject() if hasattr(multiplier, "asobject") else multiplier
    s = shift.asobject() if hasattr(shift, "asobject") else shift
    reduced = tirx.Select(m < _i32(0x7FFF0000), (m + _i32(1 << 15)) >> _i32(16), _i32(0x7FFF))
    total = (_i32(15) - s).astype("int64")
    rounded = acc * reduced.astype("int64") + (_i64(1) << (total - _i64(1)))
    return (rounded >> total).astype("int32")


def clamp_to_int16(value, lo: int, hi: int):
    """Clamp an int32 expression to [lo, hi] (within int16) and narrow it."""
    return tirx.min(tirx.max(value, _i32(lo)), _i32(hi)).astype("int16")


def _epilogue(op: Conv2DInt16 | DenseInt16, acc, bias, mult, shift, k, wide_sum: bool):
    """``acc + bias[k]`` requantised by channel ``k``'s multiplier and shift, clamped: int64 with the
    64-bit form (``op.acc64``; ``wide_sum``: ``acc`` is already int64), int32 with the 32-bit one."""
    if op.acc64:
        total = (acc if wide_sum else acc.astype("int64")) + bias[k]
        value = requantize_64(total, mult[k], shift[k])
    else:
        value = requantize(acc + bias[k], mult[k], shift[k])
    return clamp_to_int16(value, op.act_min, op.act_max)


def _sum_dtype(op: Conv2DInt16 | DenseInt16, products: int) -> str:
    """The accumulator type: int32 unless an int64 accumulation (``acc64``) could leave int32."""
    return "int64" if op.acc64 and products > INT32_PRODUCTS else "int32"


def conv2d_int16(op: Conv2DInt16) -> tirx.PrimFunc:
    """CONV_2D or DEPTHWISE_CONV_2D (any depth multiplier) of a 16x8 model, TFLM's loop: per output pixel
    and channel the taps inside the image (the kernel rows and columns unrolled, each bounds check only
    where the tap can leave the image, hoisted out of the channel loop), then ``acc + bias``
    requantised and clamped in int16."""
    n, h, w, c = op.in_shape
    _, oh, ow, oc = op.out_shape
    kh, kw = op.kernel
    sh, sw = op.strides
    dh, dw = op.dilation
    pt, pl = op.padding[0], op.padding[1]
    m = op.depth_multiplier
    dtype = _sum_dtype(op, kh * kw * (1 if op.depthwise else c))
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer(op.in_shape, "int16"))
            weight = T.arg("p1_w", T.buffer((kh, kw, oc) if op.depthwise else (oc, kh, kw, c), "int8"))
            bias = T.arg("p2_bias", T.buffer((oc,), "int64" if op.acc64 else "int32"))
            mult = T.arg("p3_mult", T.buffer((oc,), "int32"))
            shift = T.arg("p4_shift", T.buffer((oc,), "int32"))
            out = T.arg(OUT, T.buffer(op.out_shape, "int16"))
            acc = T.alloc_buffer((1,), dtype)
            with T.grid(n, oh, ow, oc) as (b, i, j, k):
                T.buffer_store(acc, tirx.const(0, dtype), [0])
                for ky in range(kh):
                    ih = i * sh + ky * dh - pt

                    def row(ky=ky, ih=ih):
                        for kx in range(kw):
                            iw = j * sw + kx * dw - pl

                            def tap(kx=kx, iw=iw):
                                if op.depthwise:
                                    ch = tirx.floordiv(k, m) if m > 1 else k
                                    product = x[b, ih, iw, ch].astype(dtype) * weight[ky, kx, k].astype(dtype)
                                    T.buffer_store(acc, acc[0] + product, [0])
                                    return
                                with T.serial(0, c) as ch:
                                    product = x[b, ih, iw, ch].astype(dtype) * weight[k, ky, kx, ch].astype(dtype)
                                    T.buffer_store(acc, acc[0] + product, [0])

                            guarded(inside(iw, w, kx * dw - pl, (ow - 1) * sw + kx * dw - pl), tap)

                    guarded(inside(ih, h, ky * dh - pt, (oh - 1) * sh + ky * dh - pt), row)
                T.buffer_store(out, _epilogue(op, acc[0], bias, mult, shift, k, dtype == "int64"), [b, i, j, k])
    return builder.get()


def dense_int16(op: DenseInt16) -> tirx.PrimFunc:
    """FULLY_CONNECTED of a 16x8 model: (N, In) int16 x (Out, In) int8, the epilogue of the convolution."""
    batch, n_in = op.in_shape
    n_out = op.out_shape[-1]
    x = arg(0, op.in_shape, "int16", "x")
    weight = arg(1, (n_out, n_in), "int8", "w")
    bias = arg(2, (n_out,), "int64" if op.acc64 else "int32", "bias")
    mult = arg(3, (n_out,), "int32", "mult")
    shift = arg(4, (n_out,), "int32", "shift")
    dtype = _sum_dtype(op, n_in)
    r = te.reduce_axis((0, n_in), name="r")
    acc = te.compute((batch, n_out), lambda b, o: te.sum(
        x[b, r].astype(dtype) * weight[o, r].astype(dtype), axis=[r]), name="acc")
    out = te.compute((batch, n_out), lambda b, o: _epilogue(
        op, acc[b, o], bias, mult, shift, o, dtype == "int64"), name=OUT)
    return finish([x, weight, bias, mult, shift, out], local_blocks=("acc",))


def add_int16(op: AddInt16) -> tirx.PrimFunc:
    """ADD of two int16 tensors of one shape: ``(x - zp) << 15`` rescaled per input, the sum rescaled,
    ``+ out_zp``, clamped (TFLM's ``AddElementwise``)."""
    n = math.prod(op.out_shape)
    a = arg(0, (n,), "int16", "a")
    b = arg(1, (n,), "int16", "b")

    def scaled(t, i, zp: int, m: int, s: int):
        shifted = (t[i].astype("int32") - _i32(zp)) * _i32(1 << op.left_shift)
        return requantize(shifted, _i32(m), _i32(s))

    def body(i):
        total = (scaled(a, i, op.in1_zp, op.in1_multiplier, op.in1_shift)
                 + scaled(b, i, op.in2_zp, op.in2_multiplier, op.in2_shift))
        value = requantize(total, _i32(op.out_multiplier), _i32(op.out_shift), op.out_zp)
        return clamp_to_int16(value, op.act_min, op.act_max)

    return finish([a, b, te.compute((n,), body, name=OUT)])


def _lookup(table, value):
    """TFLM's ``LUTLookup`` of the int16 ``value`` (an int32 expression, evaluated once by the caller) in a
    513-entry table: the entry of the top 9 bits plus the slope to the next (an int16 difference) times
    the low 7 bits, rounded."""
    index = _i32(256) + (value >> _i32(7))
    base = table[index].astype("int32")
    slope = (table[index + _i32(1)].astype("int32") - base).astype("int16").astype("int32")
    delta = (slope * (value & _i32(0x7F)) + _i32(64)) >> _i32(7)
    return (base + delta).astype("int16")


def _sat16(value):
    return tirx.min(tirx.max(value, _i32(-32768)), _i32(32767))


#: the int32 scalars of one softmax row, slots of its local buffer
_MAX, _SUM, _ARG, _HEADROOM, _RECIP = range(5)


def softmax_int16(op: SoftmaxInt16) -> tirx.PrimFunc:
    """SOFTMAX of a 16x8 model over the last axis, TFLM's ``SoftmaxInt16``: per row the maximum, each
    exponential (stored in the output, as TFLM does) and their int32 sum, the reciprocal from the
    second table, then each output ``(exp * recip + round) >> (31 - headroom)`` clamped to [0, 32767].
    The row's scalars live in a local buffer (stores the simplifier keeps as they are)."""
    depth = int(op.in_shape[-1])
    rows = math.prod(op.in_shape) // depth
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((rows * depth,), "int16"))
            exp_table = T.arg("p1_exp", T.buffer((513,), "int16"))
            recip_table = T.arg("p2_recip", T.buffer((513,), "int16"))
            out = T.arg(OUT, T.buffer((rows * depth,), "int16"))
            v = T.alloc_buffer((5,), "int32")
            with T.serial(0, rows) as i:
                T.buffer_store(v, _i32(-32768), [_MAX])
                with T.serial(0, depth) as c:
                    T.buffer_store(v, tirx.max(v[_MAX], x[i * depth + c].astype("int32")), [_MAX])
                T.buffer_store(v, _i32(0), [_SUM])
                with T.serial(0, depth) as c:
                    diff = x[i * depth + c].astype("int32") - v[_MAX]
                    scaled = requantize(diff, _i32(op.input_multiplier), _i32(op.input_left_shift))
                    T.buffer_store(v, _sat16(scaled + _i32(32767)), [_ARG])
                    T.buffer_store(out, _lookup(exp_table, v[_ARG]), [i * depth + c])
                    T.buffer_store(v, v[_SUM] + out[i * depth + c].astype("int32"), [_SUM])
                T.buffer_store(v, tirx.call_pure_extern("int32", "__builtin_clz", v[_SUM].astype("uint32")),
                               [_HEADROOM])
                shifted = (((v[_SUM].astype("int64") << (v[_HEADROOM] - _i32(1)).astype("int64"))
                            + _i64(1 << 13)) >> _i64(14)).astype("int32")
                T.buffer_store(v, _sat16(shifted - _i32((1 << 15) + (1 << 16))), [_ARG])
                T.buffer_store(v, _lookup(recip_table, v[_ARG]).astype("int32"), [_RECIP])
                with T.serial(0, depth) as c:
                    right = (_i32(31) - v[_HEADROOM]).astype("int64")
                    product = (out[i * depth + c].astype("int64") * v[_RECIP].astype("int64")
                               + (_i64(1) << (right - _i64(1))))
                    value = (product >> right).astype("int32")
                    T.buffer_store(out, tirx.min(tirx.max(value, _i32(0)), _i32(32767)).astype("int16"),
                                   [i * depth + c])
    return builder.get()
