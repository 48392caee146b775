"""Write an integer :class:`Program` as a full-integer ``.tflite`` flatbuffer.

This lets TF Lite Micro run *exactly* the network we compile (same int8
weights, same scales and zero points), which gives two things: a second,
external bit-exact reference for models that did not come from a ``.tflite``
(PyTorch, MCUNet configs), and TFLM's arena size for side-by-side memory
benchmarks. The quantisation provenance recorded by ``LowerQDQToInteger``
(float scales in each op descriptor) makes TFLM derive the same fixed-point
multipliers we use.

PyTorch pads symmetrically; TFLite convolutions only know SAME (TensorFlow's
asymmetric rule) and VALID, so other paddings are written as an explicit PAD
op (filled with the input zero point) followed by a VALID convolution.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import tflite

from ..errors import UnsupportedModelError
from ..ir import KernelCall, Program
from ..ops import Add, Conv2D, Dense, Mean, Pad, Pool2D, Reshape, Softmax

_B = tflite.BuiltinOperator
_T = tflite.TensorType


def _same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class _Writer:
    def __init__(self) -> None:
        self.buffers: list[bytes] = [b""]
        self.tensors: list[dict] = []
        self.ops: list[tuple[int, list[int], list[int], tuple | None]] = []
        self.opcodes: list[int] = []

    def buffer(self, data: np.ndarray) -> int:
        self.buffers.append(np.ascontiguousarray(data).tobytes())
        return len(self.buffers) - 1

    def tensor(self, name, shape, ttype, scales=None, zps=None, data=None, qdim=0) -> int:
        self.tensors.append(
            dict(name=name, shape=list(shape), type=ttype, scales=scales, zps=zps, qdim=qdim,
                 buffer=self.buffer(data) if data is not None else 0)
        )
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options: tuple | None = None) -> None:
        if code not in self.opcodes:
            self.opcodes.append(code)
        self.ops.append((self.opcodes.index(code), inputs, outputs, options))

    # ---- serialisation -------------------------------------------------
    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024 + sum(len(x) for x in self.buffers))

        def vec(start_fn, items, prepend):
            start_fn(b, len(items))
            for item in reversed(items):
                prepend(item)
            return b.EndVector()

        buffer_offs = []
        for data in self.buffers:
            data_off = b.CreateByteVector(data) if data else None
            tflite.BufferStart(b)
            if data_off is not None:
                tflite.BufferAddData(b, data_off)
            buffer_offs.append(tflite.BufferEnd(b))
        tensor_offs = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = vec(tflite.TensorStartShapeVector, t["shape"], b.PrependInt32)
            quant = None
            if t["scales"] is not None:
                scales = vec(tflite.QuantizationParametersStartScaleVector, list(t["scales"]), b.PrependFloat32)
                zps = vec(tflite.QuantizationParametersStartZeroPointVector, list(t["zps"]), b.PrependInt64)
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, scales)
                tflite.QuantizationParametersAddZeroPoint(b, zps)
                tflite.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
                quant = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t["type"])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensor_offs.append(tflite.TensorEnd(b))
        op_offs = []
        for opcode_index, ins, outs, options in self.ops:
            ins_v = vec(tflite.OperatorStartInputsVector, ins, b.PrependInt32)
            outs_v = vec(tflite.OperatorStartOutputsVector, outs, b.PrependInt32)
            opt_off = options[1](b) if options else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcode_index)
            tflite.OperatorAddInputs(b, ins_v)
            tflite.OperatorAddOutputs(b, outs_v)
            if options:
                tflite.OperatorAddBuiltinOptionsType(b, options[0])
                tflite.OperatorAddBuiltinOptions(b, opt_off)
            op_offs.append(tflite.OperatorEnd(b))
        tensors_v = vec(tflite.SubGraphStartTensorsVector, tensor_offs, b.PrependUOffsetTRelative)
        ops_v = vec(tflite.SubGraphStartOperatorsVector, op_offs, b.PrependUOffsetTRelative)
        in_v = vec(tflite.SubGraphStartInputsVector, inputs, b.PrependInt32)
        out_v = vec(tflite.SubGraphStartOutputsVector, outputs, b.PrependInt32)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_v)
        tflite.SubGraphAddOperators(b, ops_v)
        tflite.SubGraphAddInputs(b, in_v)
        tflite.SubGraphAddOutputs(b, out_v)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)
        code_offs = []
        for code in self.opcodes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddVersion(b, 1)
            code_offs.append(tflite.OperatorCodeEnd(b))
        codes_v = vec(tflite.ModelStartOperatorCodesVector, code_offs, b.PrependUOffsetTRelative)
        subgraphs_v = vec(tflite.ModelStartSubgraphsVector, [subgraph], b.PrependUOffsetTRelative)
        buffers_v = vec(tflite.ModelStartBuffersVector, buffer_offs, b.PrependUOffsetTRelative)
        desc = b.CreateString("mcunet-tvm export")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_v)
        tflite.ModelAddSubgraphs(b, subgraphs_v)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, buffers_v)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _activation(call: KernelCall, scale: float, zp: int) -> int:
    op = call.op
    lo, hi = getattr(op, "act_min", -128), getattr(op, "act_max", 127)
    if (lo, hi) == (-128, 127):
        return tflite.ActivationFunctionType.NONE
    relu_lo = max(-128, zp)
    relu6_hi = min(127, zp + round(6.0 / scale))
    if (lo, hi) == (relu_lo, 127):
        return tflite.ActivationFunctionType.RELU
    if (lo, hi) == (relu_lo, relu6_hi):
        return tflite.ActivationFunctionType.RELU6
    raise UnsupportedModelError(
        f"activation clamp [{lo}, {hi}] has no TFLite fused-activation equivalent",
        where=f"{op.kind} -> {call.output}",
    )


def program_to_tflite(prog: Program) -> bytes:
    """Serialise ``prog`` as a .tflite flatbuffer (int8 in, int8 out)."""
    w = _Writer()
    qp: dict[str, tuple[float, int]] = {}
    index: dict[str, int] = {}

    if prog.input_qparams is None:
        raise UnsupportedModelError("the program does not record its input quantisation")
    qp[prog.input] = prog.input_qparams
    index[prog.input] = w.tensor("input", prog.shapes[prog.input], _T.INT8, [qp[prog.input][0]], [qp[prog.input][1]])

    def out_tensor(call: KernelCall, scale: float, zp: int) -> int:
        qp[call.output] = (scale, zp)
        index[call.output] = w.tensor(call.output, prog.shapes[call.output], _T.INT8, [scale], [zp])
        return index[call.output]

    for n, call in enumerate(prog.calls):
        op = call.op
        x = index[call.inputs[0]]
        in_scale, in_zp = qp[call.inputs[0]]
        if isinstance(op, Conv2D):
            _write_conv(w, n, call, x, in_scale, in_zp, out_tensor(call, op.out_scale, op.out_zp))
        elif isinstance(op, Dense):
            weight, bias, _, _ = call.consts
            ws = np.asarray(op.weight_scales, np.float32)
            wscales = [float(ws[0])] if np.all(ws == ws[0]) else ws.tolist()
            wt = w.tensor(f"w{n}", weight.shape, _T.INT8, wscales, [0] * len(wscales), weight)
            bt = w.tensor(f"b{n}", bias.shape, _T.INT32, [float(np.float32(in_scale) * np.float32(s)) for s in wscales],
                          [0] * len(wscales), bias.astype(np.int32))
            out = out_tensor(call, op.out_scale, op.out_zp)
            act = _activation(call, op.out_scale, op.out_zp)
            w.op(_B.FULLY_CONNECTED, [x, wt, bt], [out], (tflite.BuiltinOptions.FullyConnectedOptions,
                 lambda b, act=act: _fc_options(b, act)))
        elif isinstance(op, Add):
            out = out_tensor(call, op.out_scale, op.out_zp)
            act = _activation(call, op.out_scale, op.out_zp)
            w.op(_B.ADD, [x, index[call.inputs[1]]], [out],
                 (tflite.BuiltinOptions.AddOptions, lambda b, act=act: _add_options(b, act)))
        elif isinstance(op, Pool2D):
            out = out_tensor(call, in_scale, in_zp)
            pad = _padding_kind(op.in_shape, op.pool, op.strides, (1, 1), op.padding, call)
            act = _activation(call, in_scale, in_zp)
            code = _B.AVERAGE_POOL_2D if op.mode == "avg" else _B.MAX_POOL_2D
            w.op(code, [x], [out], (tflite.BuiltinOptions.Pool2DOptions,
                 lambda b, op=op, pad=pad, act=act: _pool_options(b, op, pad, act)))
        elif isinstance(op, Mean):
            axis = w.tensor(f"axis{n}", (2,), _T.INT32, data=np.array([1, 2], np.int32))
            out = out_tensor(call, op.out_scale, op.out_zp)
            keep = len(op.out_shape) == 4
            w.op(_B.MEAN, [x, axis], [out], (tflite.BuiltinOptions.ReducerOptions,
                 lambda b, keep=keep: _reducer_options(b, keep)))
        elif isinstance(op, Softmax):
            out = out_tensor(call, 1.0 / 256.0, -128)
            w.op(_B.SOFTMAX, [x], [out], (tflite.BuiltinOptions.SoftmaxOptions, _softmax_options))
        elif isinstance(op, Reshape):
            shape = w.tensor(f"shape{n}", (len(op.out_shape),), _T.INT32,
                             data=np.array(op.out_shape, np.int32))
            out = out_tensor(call, in_scale, in_zp)
            w.op(_B.RESHAPE, [x, shape], [out])
        elif isinstance(op, Pad):
            pads = w.tensor(f"pads{n}", (len(op.pads), 2), _T.INT32, data=np.array(op.pads, np.int32))
            out = out_tensor(call, in_scale, in_zp)
            if op.value == in_zp:
                w.op(_B.PAD, [x, pads], [out])
            else:  # PADV2: the fill value as a scalar quantised like the input
                fill = w.tensor(f"fill{n}", (), _T.INT8, [in_scale], [in_zp], np.array(op.value, np.int8))
                w.op(_B.PADV2, [x, pads, fill], [out])
        else:
            raise UnsupportedModelError(f"cannot export operator {op.kind} to TFLite")
    return w.finish([index[prog.input]], [index[prog.output]])


def _padding_kind(in_shape, kernel, strides, dilation, padding, call) -> int:
    if not any(padding):
        return tflite.Padding.VALID
    same = (*_same_padding(in_shape[1], kernel[0], strides[0], dilation[0]),
            *_same_padding(in_shape[2], kernel[1], strides[1], dilation[1]))
    if (padding[0], padding[2], padding[1], padding[3]) == same:
        return tflite.Padding.SAME
    raise UnsupportedModelError(
        f"padding {padding} is neither SAME nor VALID", where=f"{call.op.kind} -> {call.output}"
    )


def _write_conv(w: _Writer, n: int, call: KernelCall, x: int, in_scale: float, in_zp: int, out: int) -> None:
    op: Conv2D = call.op
    weight, bias, _, _ = call.consts
    try:
        pad = _padding_kind(op.in_shape, op.kernel, op.strides, op.dilation, op.padding, call)
    except UnsupportedModelError:
        # explicit PAD (with the input zero point, i.e. real zero) + VALID conv
        pt, pl, pb, pr = op.padding
        padded = (op.in_shape[0], op.in_shape[1] + pt + pb, op.in_shape[2] + pl + pr, op.in_shape[3])
        pads = w.tensor(f"pads{n}", (4, 2), _T.INT32, data=np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32))
        xp = w.tensor(f"padded{n}", padded, _T.INT8, [in_scale], [in_zp])
        w.op(_B.PAD, [x, pads], [xp])
        x, pad = xp, tflite.Padding.VALID
    scales = list(op.weight_scales)
    cout = op.out_shape[3]
    if op.depthwise:
        wdata = weight.reshape(1, *weight.shape)  # (1, KH, KW, C)
        qdim = 3
    else:
        wdata = weight  # OHWI
        qdim = 0
    wt = w.tensor(f"w{n}", wdata.shape, _T.INT8, scales, [0] * cout, wdata, qdim=qdim)
    bt = w.tensor(f"b{n}", (cout,), _T.INT32, [float(np.float32(in_scale) * np.float32(s)) for s in scales],
                  [0] * cout, bias.astype(np.int32))
    act = _activation(call, op.out_scale, op.out_zp)
    if op.depthwise:
        w.op(_B.DEPTHWISE_CONV_2D, [x, wt, bt], [out], (tflite.BuiltinOptions.DepthwiseConv2DOptions,
             lambda b: _dw_options(b, op, pad, act)))
    else:
        w.op(_B.CONV_2D, [x, wt, bt], [out], (tflite.BuiltinOptions.Conv2DOptions,
             lambda b: _conv_options(b, op, pad, act)))


def _conv_options(b, op: Conv2D, pad: int, act: int) -> int:
    tflite.Conv2DOptionsStart(b)
    tflite.Conv2DOptionsAddPadding(b, pad)
    tflite.Conv2DOptionsAddStrideH(b, op.strides[0])
    tflite.Conv2DOptionsAddStrideW(b, op.strides[1])
    tflite.Conv2DOptionsAddDilationHFactor(b, op.dilation[0])
    tflite.Conv2DOptionsAddDilationWFactor(b, op.dilation[1])
    tflite.Conv2DOptionsAddFusedActivationFunction(b, act)
    return tflite.Conv2DOptionsEnd(b)


def _dw_options(b, op: Conv2D, pad: int, act: int) -> int:
    tflite.DepthwiseConv2DOptionsStart(b)
    tflite.DepthwiseConv2DOptionsAddPadding(b, pad)
    tflite.DepthwiseConv2DOptionsAddStrideH(b, op.strides[0])
    tflite.DepthwiseConv2DOptionsAddStrideW(b, op.strides[1])
    tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
    tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, op.dilation[0])
    tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, op.dilation[1])
    tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
    return tflite.DepthwiseConv2DOptionsEnd(b)


def _fc_options(b, act: int) -> int:
    tflite.FullyConnectedOptionsStart(b)
    tflite.FullyConnectedOptionsAddFusedActivationFunction(b, act)
    return tflite.FullyConnectedOptionsEnd(b)


def _add_options(b, act: int) -> int:
    tflite.AddOptionsStart(b)
    tflite.AddOptionsAddFusedActivationFunction(b, act)
    return tflite.AddOptionsEnd(b)


def _pool_options(b, op: Pool2D, pad: int, act: int) -> int:
    tflite.Pool2DOptionsStart(b)
    tflite.Pool2DOptionsAddPadding(b, pad)
    tflite.Pool2DOptionsAddStrideH(b, op.strides[0])
    tflite.Pool2DOptionsAddStrideW(b, op.strides[1])
    tflite.Pool2DOptionsAddFilterHeight(b, op.pool[0])
    tflite.Pool2DOptionsAddFilterWidth(b, op.pool[1])
    tflite.Pool2DOptionsAddFusedActivationFunction(b, act)
    return tflite.Pool2DOptionsEnd(b)


def _reducer_options(b, keep: bool) -> int:
    tflite.ReducerOptionsStart(b)
    tflite.ReducerOptionsAddKeepDims(b, keep)
    return tflite.ReducerOptionsEnd(b)


def _softmax_options(b) -> int:
    tflite.SoftmaxOptionsStart(b)
    tflite.SoftmaxOptionsAddBeta(b, 1.0)
    return tflite.SoftmaxOptionsEnd(b)
