"""Host reference: execute an integer :class:`Program` with numpy.

This shares nothing with the generated kernels but the operator descriptors:
each op is recomputed by the independent numpy implementations in
:mod:`mcunet_tvm.reference.intops` (themselves checked against TF Lite
Micro), so a bug in a TIR kernel, the C code generator or the memory plan
shows up as a byte mismatch.
"""

from __future__ import annotations

import numpy as np

from ..ir import KernelCall, Program
from ..ops import (
    Add,
    AddInt16,
    ArgMax,
    BatchMatmul,
    Binary,
    Concat,
    Conv2D,
    Conv2DInt16,
    Dense,
    DenseInt16,
    Dequantize,
    InputRows,
    Insert,
    Lut,
    Mean,
    MirrorPad,
    Pad,
    Pool2D,
    Prelu,
    Quantize,
    Reduce,
    Requantize,
    Reshape,
    ResizeBilinear,
    ResizeNearest,
    Slice,
    Softmax,
    SoftmaxInt16,
    Transpose,
    TransposeConv2D,
)
from ..quant.fixedpoint import AddParams
from . import intops, tflite_ops


def _window(op, i: int, buffer: np.ndarray, shape) -> np.ndarray:
    """The part of ``buffer`` that input ``i`` of ``op`` reads (see ``OpDesc.windows``)."""
    win = op.window(i)
    if not win:
        return buffer
    r0, c0 = win[0], win[1]
    return buffer[:, r0 : r0 + shape[1], c0 : c0 + shape[2], :]


def run_call(call: KernelCall, inputs: list[np.ndarray]) -> np.ndarray:
    """Compute one kernel call in numpy."""
    op = call.op
    shapes = op.input_shapes if isinstance(op, Binary) else [op.in_shape] * len(inputs)
    inputs = [_window(op, i, b, shape) for i, (b, shape) in enumerate(zip(inputs, shapes, strict=True))]
    x = inputs[0]
    if isinstance(op, Conv2D):
        fn = intops.depthwise_conv2d if op.depthwise else intops.conv2d
        return fn(x, *call.consts, strides=op.strides, padding=op.padding, dilation=op.dilation, in_zp=op.in_zp,
                  out_zp=op.out_zp, act_min=op.act_min, act_max=op.act_max)
    if isinstance(op, Conv2DInt16):
        return intops.conv2d_int16(x, *call.consts, op)
    if isinstance(op, DenseInt16):
        return intops.dense_int16(x, *call.consts, op)
    if isinstance(op, AddInt16):
        return intops.add_int16(x, inputs[1], op)
    if isinstance(op, SoftmaxInt16):
        return intops.softmax_int16(x, *call.consts, op)
    if isinstance(op, TransposeConv2D):
        return intops.transpose_conv2d(x, *call.consts, out_hw=op.out_shape[1:3], strides=op.strides,
                                       padding=op.padding, in_zp=op.in_zp, out_zp=op.out_zp, act_min=op.act_min,
                                       act_max=op.act_max)
    if isinstance(op, Dense):
        w, bias, mult, shift = call.consts
        return intops.dense(x, w, bias, mult, shift, op.in_zp, op.out_zp, op.act_min, op.act_max)
    if isinstance(op, BatchMatmul):
        rhs = np.asarray(call.consts[0] if op.const_rhs else inputs[1]).reshape(op.rhs_shape)
        return intops.batch_matmul(x, rhs, op)
    if isinstance(op, Add):
        params = AddParams(
            left_shift=op.left_shift,
            input1_multiplier=op.in1_multiplier,
            input1_shift=op.in1_shift,
            input2_multiplier=op.in2_multiplier,
            input2_shift=op.in2_shift,
            output_multiplier=op.out_multiplier,
            output_shift=op.out_shift,
        )
        return intops.add(x, inputs[1], params, op.in1_zp, op.in2_zp, op.out_zp, op.act_min, op.act_max)
    if isinstance(op, Binary):
        return _binary(op, inputs, call.consts)
    if isinstance(op, Prelu):
        return intops.prelu(x, np.asarray(call.consts[0]).reshape(op.alpha_shape), op)
    if isinstance(op, Pool2D):
        fn = intops.avg_pool2d if op.mode == "avg" else intops.max_pool2d
        return fn(x, op.pool, op.strides, op.padding, op.act_min, op.act_max)
    if isinstance(op, Mean):
        return intops.mean_hw(x, op.in_zp, op.out_zp, op.multiplier, op.shift, keepdims=len(op.out_shape) == 4)
    if isinstance(op, Reduce):
        return intops.reduce(x, op.axes, op.in_zp, op.out_zp, op.multiplier, op.shift, op.dtype).reshape(op.out_shape)
    if isinstance(op, Softmax):
        return intops.softmax(x, op.input_multiplier, op.input_left_shift, op.diff_min)
    if isinstance(op, Pad):
        return intops.pad(x, op.pads, op.value)
    if isinstance(op, Transpose):
        return np.transpose(x, op.perm)
    if isinstance(op, Concat):
        return np.concatenate(inputs, axis=op.axis)
    if isinstance(op, ResizeNearest):
        rows, cols = call.consts
        return x[:, rows][:, :, cols]
    if isinstance(op, ResizeBilinear):
        return intops.resize_bilinear(x, *call.consts)
    if isinstance(op, Slice):
        return x[np.ix_(*(b + s * np.arange(n) for b, s, n in zip(op.begin, op.strides, op.out_shape, strict=True)))]
    if isinstance(op, MirrorPad):
        return np.pad(x, op.pads, mode=op.mode)
    if isinstance(op, Lut):
        return call.consts[0][x.view(np.uint8)]
    if isinstance(op, Quantize):
        return tflite_ops.quantize_float(x, op.scale, op.zero_point, op.dtype)
    if isinstance(op, Requantize):
        return intops.requantize(x, op)
    if isinstance(op, Dequantize):
        return tflite_ops.dequantize(x, op.scale, op.zero_point)
    if isinstance(op, ArgMax):
        return np.argmax(x, axis=op.axis).astype(op.index_dtype)
    if isinstance(op, Reshape):
        return x.reshape(op.out_shape)
    if isinstance(op, InputRows):
        return x[:, op.row0 : op.row0 + op.out_shape[1]]
    if isinstance(op, Insert):
        full = np.zeros(op.out_shape, np.int8) if op.first else inputs[1].copy()
        r0, c0 = op.offset
        full[:, r0 : r0 + x.shape[1], c0 : c0 + x.shape[2], :] = x
        return full
    raise NotImplementedError(op.kind)


def _binary(op: Binary, inputs: list[np.ndarray], consts) -> np.ndarray:
    """A :class:`Binary` from its integer parameters, operands broadcast as numpy does."""
    acts = iter(inputs)
    a, b = (np.asarray(consts[0]).reshape(shape) if i == op.const_operand else next(acts).reshape(shape)
            for i, shape in enumerate(op.operand_shapes))
    if op.function in ("add", "sub"):
        params = AddParams(op.left_shift, op.in1_multiplier, op.in1_shift, op.in2_multiplier, op.in2_shift,
                           op.out_multiplier, op.out_shift)
        fn = intops.add if op.function == "add" else intops.sub
        out = fn(a, b, params, op.in1_zp, op.in2_zp, op.out_zp, op.act_min, op.act_max, op.dtype)
    elif op.function == "mul":
        out = intops.mul(a, b, op.in1_zp, op.in2_zp, op.out_zp, op.out_multiplier, op.out_shift, op.act_min,
                         op.act_max, op.dtype)
    else:
        out = np.clip((np.maximum if op.function == "maximum" else np.minimum)(a, b), op.act_min, op.act_max)
    return out.astype(op.dtype).reshape(op.out_shape)


def run_reference(prog: Program, x: np.ndarray) -> np.ndarray:
    """The model's output for the NHWC input ``x`` (a model with one input and one output; int8 unless
    the model's edges are of another type)."""
    return run_program(prog, [x])[prog.outputs.index(prog.output)]


def run_program(prog: Program, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of the model, in order, for its inputs in order."""
    if len(inputs) != len(prog.inputs):
        raise ValueError(f"the model takes {len(prog.inputs)} inputs, {len(inputs)} given")
    values = {name: np.asarray(x, prog.dtype(name)).reshape(prog.shapes[name])
              for name, x in zip(prog.inputs, inputs, strict=True)}
    for call in prog.calls:
        out = run_call(call, [values[n] for n in call.inputs])
        values[call.output] = np.asarray(out, prog.dtype(call.output)).reshape(prog.shapes[call.output])
    return [values[name] for name in prog.outputs]


def sample_inputs(prog: Program, rng: np.random.Generator) -> list[np.ndarray]:
    """Random inputs of the model, one per input in order: int8 (int16) uniform over every value; float32
    uniform over the int8 (int16) range of the QUANTIZE that reads it (a little beyond it, so clamping is
    exercised), or over [-1, 1]."""
    return [_sample(prog, name, rng) for name in prog.inputs]


def _sample(prog: Program, name: str, rng: np.random.Generator) -> np.ndarray:
    shape = prog.shapes[name]
    if prog.dtype(name) in ("int8", "int16"):
        info = np.iinfo(prog.dtype(name))
        return rng.integers(info.min, info.max + 1, shape, dtype=prog.dtype(name))
    quantize = next((c.op for c in prog.calls if isinstance(c.op, Quantize) and name in c.inputs), None)
    if quantize is None:
        return rng.uniform(-1.0, 1.0, shape).astype(prog.dtype(name))
    info = np.iinfo(quantize.dtype)
    lo, hi = info.min - 8 - quantize.zero_point, info.max + 8 - quantize.zero_point
    return (rng.uniform(lo, hi, shape) * quantize.scale).astype(np.float32)
