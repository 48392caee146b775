"""Our TFLite frontend: real converter output imports bit-exact with TF Lite Micro, refusals are precise,
damaged files are errors that say where, never tracebacks."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from mcunet_tvm.errors import McunetError, ModelFileError, UnsupportedModelError
from mcunet_tvm.export.tflite_writer import program_to_tflite
from mcunet_tvm.frontend.tflite import SUPPORTED_OPS, import_tflite, read_model
from mcunet_tvm.frontend.tflite.importer import _build, convert
from mcunet_tvm.ir import KernelCall, Program, program_of
from mcunet_tvm.ops import ArgMax, Binary, Conv2D, Dense, Dequantize, Pad, Quantize, Reshape
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant import int8_ops
from mcunet_tvm.quant.int8_ops import QParams
from mcunet_tvm.reference import tflite_ops
from mcunet_tvm.reference.graph_ref import run_call, run_program, run_reference, sample_inputs
from mcunet_tvm.reference.tflm import run_tflm, run_tflm_outputs, run_tflm_tensors
from mcunet_tvm.targets import get_target

from conftest import FIXTURES
from opcases import run_compiled

CORPUS = FIXTURES / "corpus"
#: corpus models the frontend imports today (the rest are refused with the reasons below)
IMPORTED = ("resnet8", "ds_cnn", "mobilenet_v1_025_vww", "fc_autoencoder", "person_detect", "micro_speech",
            "efficientnet_lite0", "fomo_detector", "pytorch_style_nchw", "multi_io", "mobilenet_v3_small", "unet_small",
            "misc_ops", "int16x8_cnn")
REFUSED = {
    "lstm_kws": ("UNIDIRECTIONAL_SEQUENCE_LSTM", "operator #0"),
}


def _input(shape, seed: int, dtype: str = "int8") -> np.ndarray:
    """Seeded values over the whole range of ``dtype`` (int8, or int16 for a 16x8 model's input)."""
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, shape, dtype=dtype)


#: every model the frontend imports (the generated test fixtures besides the corpus; unsupported_op.tflite
#: was written with LOGISTIC when that was unsupported)
MODELS = {**{n: CORPUS / f"{n}.tflite" for n in IMPORTED},
          **{n: FIXTURES / f"{n}.tflite" for n in ("tiny_cnn", "tiny_valid_cnn", "unsupported_op")}}


@pytest.mark.parametrize("name", MODELS)
def test_model_as_imported_equals_tflm(name: str) -> None:
    """The numpy reference on the imported graph equals TF Lite Micro on the original file (every output),
    on three inputs."""
    path = MODELS[name]
    prog = program_of(import_tflite(path)[0])
    assert prog.macs() > 0
    for seed in range(3):
        xs = [_input(prog.shapes[n], seed + 10 * k, prog.dtype(n)) for k, n in enumerate(prog.inputs)]
        expected = run_tflm_outputs(path, xs)
        ours = run_program(prog, xs)
        assert len(ours) == len(expected) == len(read_model(path).outputs)
        for a, b in zip(ours, expected, strict=True):
            assert a.tobytes() == b.tobytes(), f"{name} seed {seed}"


@pytest.mark.parametrize("name", MODELS)
def test_every_operator_equals_tflm(name: str) -> None:
    """Operator by operator: each imported step, run by the numpy reference on TFLM's own input to it,
    writes TFLM's bytes (every tensor preserved): an oracle even where random weights flatten the output."""
    path = MODELS[name]
    ctx = convert(read_model(path))
    xs = [_input(ctx.shapes[i], 1 + k, ctx.model.tensors[i].dtype.lower()) for k, i in enumerate(ctx.model.inputs)]
    written = [s.output for s in ctx.steps if s.output >= 0]
    tflm = run_tflm_tensors(path, xs, [*ctx.model.inputs, *written])
    values = dict(zip(ctx.model.inputs, xs, strict=True))
    varied = 0
    for step in ctx.steps:
        call = KernelCall("k", step.lowered.op, (), tuple(step.lowered.consts), "")
        args = [tflm[i] if i in tflm else values[i] for i in step.inputs]
        values[step.output] = run_call(call, args).reshape(step.lowered.op.out_shape)
        if step.output >= 0:
            expected = tflm[step.output]
            assert values[step.output].tobytes() == expected.tobytes(), f"{name}: {step.lowered.op.kind}"
            varied += np.unique(expected).size > 1
    assert varied >= len(written) // 2  # most intermediate results are not constant: the check can fail


#: single-input fixtures of the binary operators (a constant operand): name -> (constant operand, function)
BINARY_FIXTURES = {"mul_const": (1, "mul"), "minimum_const": (1, "minimum"), "sub_const_relu": (0, "sub"),
                   "add_const_5d": (1, "add")}


@pytest.mark.parametrize("name", BINARY_FIXTURES)
def test_binary_with_constant_equals_tflm(name: str, tmp_path) -> None:
    """A broadcasting ADD/SUB/MUL/MINIMUM with a constant operand (either side, other rank, 5-D): one
    kernel taking the constant as an argument; the reference and the generated C (host) equal TFLM."""
    path = FIXTURES / "ops" / f"{name}.tflite"
    mod, shape = import_tflite(path)
    prog = program_of(mod)
    (call,) = prog.calls
    const, function = BINARY_FIXTURES[name]
    assert isinstance(call.op, Binary) and (call.op.function, call.op.const_operand) == (function, const)
    assert call.op.num_inputs == 1 and len(call.consts) == 1
    inputs = [_input(shape, seed) for seed in range(3)]
    compiled = compile_relax(mod, mcpu=None)
    outputs = run_compiled(compiled, "host", tmp_path, inputs)
    for seed, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        expected = run_tflm(path, x).output
        assert np.unique(expected).size > 10
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"{name} seed {seed}"
        assert output == expected.tobytes(), f"{name} seed {seed} (C)"


#: single-op fixtures of kernels with their own generator: name -> the op kinds the import makes
KERNEL_FIXTURES = {"mean_02_keep": ("reduce",), "mean_all": ("reduce",), "sum_neg": ("reduce",),
                   "mean_hw_keep": ("mean",), "resize_bilinear_up_hp": ("resize_bilinear",),
                   "resize_bilinear_down_ac": ("resize_bilinear",), "prelu_full": ("prelu",),
                   "prelu_shared": ("prelu",), "batch_matmul": ("batch_matmul",),
                   "batch_matmul_adj_x": ("batch_matmul",), "batch_matmul_adj_y": ("batch_matmul",),
                   "batch_matmul_bcast": ("batch_matmul",), "depthwise_m2": ("concat", "conv2d"),
                   "depthwise_m2_dilated": ("concat", "conv2d"), "depthwise_m3_s2_relu6": ("concat", "conv2d")}


@pytest.mark.parametrize("name", KERNEL_FIXTURES)
def test_kernel_fixture_compiled_equals_tflm(name: str, tmp_path) -> None:
    """Each kernel kind the frontend maps a TFLite operator to, on its fixture: the reference and the
    generated C (host) equal TFLM on three inputs."""
    path = FIXTURES / "ops" / f"{name}.tflite"
    mod, shape = import_tflite(path)
    prog = program_of(mod)
    assert tuple(c.op.kind for c in prog.calls if c.op.kind != "reshape") == KERNEL_FIXTURES[name]
    inputs = [_input(shape, seed) for seed in range(3)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs)
    varied = set()
    for seed, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        expected = run_tflm(path, x).output
        varied.update(np.unique(expected).tolist())
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"{name} seed {seed}"
        assert output == expected.tobytes(), f"{name} seed {seed} (C)"
    assert len(varied) > 2  # the outputs are not constant: the check can fail


def test_pads_fold_into_the_next_convolution() -> None:
    """pytorch_style_nchw writes a PAD before each stride-2 convolution (VALID): each folds into the
    convolution's padding, so no Pad kernel is left (the as-imported and every-operator checks above
    compare the result with TF Lite Micro)."""
    path = CORPUS / "pytorch_style_nchw.tflite"
    pads = sum(op.name in ("PAD", "PADV2") for op in read_model(path).operators)
    calls = program_of(import_tflite(path)[0]).calls
    assert pads == 4
    assert not any(isinstance(c.op, Pad) for c in calls)
    assert sum(isinstance(c.op, Conv2D) and c.op.strides == (2, 2) and c.op.padding == (1, 1, 1, 1)
               for c in calls) == pads


def test_pytorch_style_compiled_equals_tflm(tmp_path) -> None:
    """pytorch_style_nchw with its PADs folded, compiled to C and run on the host, writes TF Lite Micro's bytes."""
    path = CORPUS / "pytorch_style_nchw.tflite"
    mod, shape = import_tflite(path)
    inputs = [_input(shape, seed) for seed in range(2)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs)
    for seed, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        expected = run_tflm(path, x).output
        assert np.unique(expected).size > 2
        assert output == expected.tobytes(), f"seed {seed}"


_XQ = QParams(0.02, -7)


def _conv(in_shape, cout: int, k: int, s: int, padding, depthwise: bool, seed: int):
    """A convolution with random int8 weights whose outputs spread over the int8 range."""
    rng = np.random.default_rng(seed)
    n, h, w, c = in_shape
    cout = c if depthwise else cout
    out_shape = (n, (h + padding[0] + padding[2] - k) // s + 1, (w + padding[1] + padding[3] - k) // s + 1, cout)
    weight = rng.integers(-127, 128, (k, k, c) if depthwise else (cout, k, k, c), dtype=np.int8)
    scales = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    taps = k * k * (1 if depthwise else c)
    oq = QParams(float(_XQ.scale * scales.mean() * np.sqrt(taps) * 74 * 74 / 40), 5)
    bias = rng.integers(-2000, 2000, cout).astype(np.int32)
    return int8_ops.conv2d(in_shape, out_shape, _XQ, oq, weight, scales, bias, strides=(s, s), padding=padding,
                           dilation=(1, 1), depthwise=depthwise)


def _exported(tmp_path, steps, in_shape) -> object:
    """A .tflite written by our exporter from ``steps`` ((lowered, input names, output name), "x" the input,
    the last output the model's)."""
    shapes = {"x": tuple(in_shape)} | {out: tuple(low.op.out_shape) for low, _, out in steps}
    calls = tuple(KernelCall("k", low.op, tuple(ins), tuple(low.consts), out) for low, ins, out in steps)
    prog = Program(shapes, calls, ("x",), (steps[-1][2],), input_qparams=(_XQ.scale, _XQ.zero_point))
    path = tmp_path / "model.tflite"
    path.write_bytes(program_to_tflite(prog))
    return path


#: (input shape, output channels, kernel, stride, padding (top, left, bottom, right), depthwise): PyTorch's
#: symmetric padding, asymmetric and wider than the window (outputs reading nothing but padding), the row
#: ring of the depthwise kernel at stride 1 and 2
FOLDED = {"conv_asymmetric": ((1, 9, 10, 4), 6, 3, 2, (2, 0, 1, 3), False),
          "dw_pytorch_s2": ((1, 8, 8, 4), 4, 3, 2, (1, 1, 1, 1), True),
          "dw_wide_padding": ((1, 8, 9, 5), 5, 3, 1, (0, 2, 3, 1), True),
          "dw_ring_s1": ((1, 8, 9, 5), 5, 3, 1, (1, 0, 2, 1), True),
          "dw_ring_s2_5x5": ((1, 11, 11, 4), 4, 5, 2, (2, 1, 2, 3), True)}


@pytest.mark.parametrize("target", ["host", "cortex-m4"])
@pytest.mark.parametrize("name", FOLDED)
def test_pad_folds_bit_exact(name: str, target: str, tmp_path) -> None:
    """A PAD + VALID convolution (our exporter writes any padding but SAME so) imports as one convolution with
    that padding; the reference and the generated C (host; the DSP kernels on the M4) equal TF Lite Micro."""
    in_shape, cout, k, s, padding, depthwise = FOLDED[name]
    path = _exported(tmp_path, [(_conv(in_shape, cout, k, s, padding, depthwise, 3), ["x"], "y")], in_shape)
    assert [op.name for op in read_model(path).operators] == ["PAD", "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"]
    _check_folded(path, in_shape, padding, target, tmp_path)


def test_pad_before_same_convolution_folds(tmp_path) -> None:
    """A PAD before a SAME convolution: the PAD's widths add to TFLite's SAME padding (here (1, 0, 1, 1))."""
    in_shape, pads = (1, 7, 8, 4), ((0, 0), (2, 0), (1, 1), (0, 0))
    padded = (1, 9, 10, 4)
    pad = int8_ops.Lowered(Pad(in_shape, padded, pads=pads, value=_XQ.zero_point))
    conv = _conv(padded, 6, 3, 2, (1, 0, 1, 1), False, 6)
    path = _exported(tmp_path, [(pad, ["x"], "p"), (conv, ["p"], "y")], in_shape)
    assert [(op.name, op.options.get("Padding")) for op in read_model(path).operators] == [("PAD", None),
                                                                                           ("CONV_2D", "SAME")]
    _check_folded(path, in_shape, (3, 1, 1, 2), "host", tmp_path)


def test_pad_before_depth_multiplier_folds(tmp_path) -> None:
    """A PAD before a DEPTHWISE_CONV_2D of depth multiplier 2 (written with the exporter's writer: the exporter
    knows multiplier 1 only): the channels are repeated from the unpadded input, the PAD is the padding."""
    import tflite

    from mcunet_tvm.export.tflite_writer import _Writer

    t, b = tflite.TensorType, tflite.BuiltinOperator
    rng = np.random.default_rng(0)
    w = _Writer()
    x = w.tensor("x", (1, 6, 7, 3), t.INT8, [_XQ.scale], [_XQ.zero_point])
    pads = w.tensor("pads", (4, 2), t.INT32, data=np.array([[0, 0], [1, 2], [2, 0], [0, 0]], np.int32))
    xp = w.tensor("xp", (1, 9, 9, 3), t.INT8, [_XQ.scale], [_XQ.zero_point])
    w.op(b.PAD, [x, pads], [xp])
    weight = w.tensor("w", (1, 3, 3, 6), t.INT8, [0.01] * 6, [0] * 6,
                      rng.integers(-127, 128, (1, 3, 3, 6), dtype=np.int8), qdim=3)
    bias = w.tensor("b", (6,), t.INT32, [0.0002] * 6, [0] * 6, rng.integers(-500, 500, 6).astype(np.int32))
    y = w.tensor("y", (1, 4, 4, 6), t.INT8, [0.05], [3])

    def options(fb) -> int:
        tflite.DepthwiseConv2DOptionsStart(fb)
        tflite.DepthwiseConv2DOptionsAddPadding(fb, tflite.Padding.VALID)
        tflite.DepthwiseConv2DOptionsAddStrideH(fb, 2)
        tflite.DepthwiseConv2DOptionsAddStrideW(fb, 2)
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(fb, 2)
        return tflite.DepthwiseConv2DOptionsEnd(fb)

    w.op(b.DEPTHWISE_CONV_2D, [xp, weight, bias], [y], (tflite.BuiltinOptions.DepthwiseConv2DOptions, options))
    path = tmp_path / "model.tflite"
    path.write_bytes(w.finish([x], [y]))
    mod, shape = import_tflite(path)
    prog = program_of(mod)
    kernels = [c.op for c in prog.calls if not isinstance(c.op, Reshape)]
    assert [k.kind for k in kernels] == ["concat", "conv2d"] and kernels[0].in_shape[:4] == (1, 6, 7, 3)
    assert kernels[1].padding == (1, 2, 2, 0) and kernels[1].in_shape == (1, 6, 7, 6)
    inputs = [_input(shape, seed) for seed in range(3)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path / "c", inputs)
    for seed, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        expected = run_tflm(path, x).output
        assert np.unique(expected).size > 10
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"seed {seed}"
        assert output == expected.tobytes(), f"seed {seed} (C)"


def _check_folded(path, in_shape, padding, target: str, tmp_path) -> None:
    """``path`` imports as one convolution of ``in_shape`` with ``padding``; the reference and the generated C
    on ``target`` equal TF Lite Micro."""
    mod, shape = import_tflite(path)
    prog = program_of(mod)
    (call,) = prog.calls
    assert isinstance(call.op, Conv2D) and call.op.padding == padding and call.op.in_shape == in_shape
    inputs = [_input(shape, seed) for seed in range(3)]
    outputs = run_compiled(compile_relax(mod, mcpu=get_target(target).mcpu), target, tmp_path / "c", inputs)
    for seed, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        expected = run_tflm(path, x).output
        assert np.unique(expected).size > 10
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"seed {seed}"
        assert output == expected.tobytes(), f"seed {seed} (C)"


def _unfolded_steps(kind: str) -> tuple[list, tuple[int, ...]]:
    """A PAD before a convolution that must stay: channels padded, a fill that is not the zero point (PADV2),
    the padded tensor read twice (by the convolution and an ADD)."""
    in_shape = (1, 6, 7, 3)
    pads = ((0, 0), (1, 1), (1, 1), (0, 2) if kind == "channels" else (0, 0))
    padded = tuple(d + a + b for d, (a, b) in zip(in_shape, pads, strict=True))
    value = 40 if kind == "value" else _XQ.zero_point
    pad = int8_ops.Lowered(Pad(in_shape, padded, pads=pads, value=value))
    k = 1 if kind == "two_readers" else 3
    conv = _conv(padded, padded[3], k, 1, (0, 0, 0, 0), False, 5)
    steps = [(pad, ["x"], "p"), (conv, ["p"], "y")]
    if kind == "two_readers":
        conv = dataclasses.replace(conv, op=dataclasses.replace(conv.op, out_zp=_XQ.zero_point, out_scale=_XQ.scale))
        add = int8_ops.add(padded, padded, _XQ, _XQ, QParams(0.04, 3))
        steps = [(pad, ["x"], "p"), (conv, ["p"], "c"), (add, ["p", "c"], "y")]
    return steps, in_shape


@pytest.mark.parametrize("kind", ["channels", "value", "two_readers"])
def test_pad_that_must_not_fold(kind: str, tmp_path) -> None:
    """A PAD the convolution after it cannot take stays a Pad kernel, and the import equals TF Lite Micro."""
    steps, in_shape = _unfolded_steps(kind)
    path = _exported(tmp_path, steps, in_shape)
    assert read_model(path).operators[0].name == ("PADV2" if kind == "value" else "PAD")
    prog = program_of(import_tflite(path)[0])
    assert [type(c.op) for c in prog.calls][:2] == [Pad, Conv2D]
    for seed in range(3):
        x = _input(in_shape, seed)
        expected = run_tflm(path, x).output
        assert np.unique(expected).size > 10
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"{kind} seed {seed}"


@pytest.mark.parametrize("name", ["padv2_value", "pad_channels"])
def test_lone_pad_fixtures_stay_pads(name: str) -> None:
    """Single PAD fixtures (no convolution to fold into) import as one Pad kernel."""
    (call,) = program_of(import_tflite(FIXTURES / "ops" / f"{name}.tflite")[0]).calls
    assert isinstance(call.op, Pad)


#: movement fixtures compiled to C and run on the host: several outputs, backwards strides with a shrunk
#: axis, outputs that are views of copies, several inputs, mirrored blocks
COMPILED_MOVEMENT = ("split_axis3", "split_v_infer", "strided_slice_negative", "strided_slice_shrink",
                     "unpack_neg_axis", "pack3_last", "mirror_pad_symmetric")


@pytest.mark.parametrize("name", COMPILED_MOVEMENT)
def test_movement_compiled_equals_tflm(name: str, tmp_path) -> None:
    """SPLIT, SPLIT_V, STRIDED_SLICE, UNPACK, PACK, MIRROR_PAD: the generated C (host) writes TFLM's bytes
    for every output."""
    path = FIXTURES / "ops" / f"{name}.tflite"
    mod = import_tflite(path)[0]
    prog = program_of(mod)
    inputs = [[_input(prog.shapes[n], seed + 10 * k) for k, n in enumerate(prog.inputs)] for seed in range(2)]
    compiled = compile_relax(mod, mcpu=None)
    for seed, (xs, output) in enumerate(zip(inputs, run_compiled(compiled, "host", tmp_path, inputs),
                                            strict=True)):
        expected = b"".join(t.tobytes() for t in run_tflm_outputs(path, xs))
        assert output == expected, f"{name} seed {seed}"


def _binary_refusal(name: str, change) -> str:
    """The error text of importing fixture ``name`` after ``change(model)`` edits what was read."""
    model = read_model(FIXTURES / "ops" / f"{name}.tflite")
    with pytest.raises(McunetError) as info:
        convert(change(model))
    return info.value.format()


def _with_tensor(model, index: int, **changes):
    tensors = list(model.tensors)
    tensors[index] = dataclasses.replace(tensors[index], **changes)
    return dataclasses.replace(model, tensors=tuple(tensors))


def _with_op(model, **changes):
    return dataclasses.replace(model, operators=(dataclasses.replace(model.operators[0], **changes),))


def test_binary_refusals_are_precise() -> None:
    """Two constants, per-channel constants, shapes that do not broadcast, scales TFLM refuses, a fused
    activation the clamp cannot express: each refused naming the operator and the reason."""
    op = read_model(FIXTURES / "ops" / "mul_const.tflite").operators[0]
    c = op.inputs[1]
    text = _binary_refusal("mul_const", lambda m: _with_op(m, inputs=(c, c)))
    assert "operator #0 MUL" in text and "both operands" in text and "constants" in text
    per_channel = dataclasses.replace(read_model(FIXTURES / "ops" / "mul_const.tflite").tensors[c].quantization,
                                      scales=(0.1,) * 7, zero_points=(0,) * 7)
    text = _binary_refusal("mul_const", lambda m: _with_tensor(m, c, quantization=per_channel))
    assert "quantised per channel (7 scales)" in text and "per tensor" in text
    text = _binary_refusal("mul_const", lambda m: _with_tensor(m, c, shape=(5,), data=np.zeros(5, np.int8)))
    assert "[3, 4, 7] and [5] do not broadcast" in text
    out = read_model(FIXTURES / "ops" / "add_const_5d.tflite").operators[0].outputs[0]
    tiny = dataclasses.replace(read_model(FIXTURES / "ops" / "add_const_5d.tflite").tensors[out].quantization,
                               scales=(1e-9,))
    text = _binary_refusal("add_const_5d", lambda m: _with_tensor(m, out, quantization=tiny))
    assert "operator #0 ADD" in text and "QuantizeMultiplierSmallerThanOneExp" in text
    text = _binary_refusal("sub_const_relu", lambda m: _with_op(m, options={"FusedActivationFunction": "TANH"}))
    assert "fused activation TANH" in text and "RELU_N1_TO_1" in text


def test_batch_matmul_with_symmetric_constant_is_dense(tmp_path) -> None:
    """A constant right-hand operand with batch dimensions of 1 whose values less its zero point fit int8 (zero
    point 0 here, with adj_x) is a transpose and a fully connected layer: the reference and the generated C
    equal TFLM's arithmetic (``tflite_ops.batch_matmul``, itself checked against TFLM)."""
    model = read_model(FIXTURES / "ops" / "batch_matmul_bcast.tflite")
    op = model.operators[0]
    (lhs, rhs), out = op.inputs, op.outputs[0]
    weights = np.random.default_rng(3).integers(-128, 128, (1, 3, 5), dtype=np.int8)
    model = _with_tensor(model, rhs, shape=(1, 3, 5), data=weights,
                         quantization=dataclasses.replace(model.tensors[rhs].quantization, zero_points=(0,)))
    model = _with_op(_with_tensor(model, out, shape=(2, 2, 4, 5)), options={**op.options, "AdjX": True})
    mod = _build(convert(model))
    prog = program_of(mod)
    assert [c.op.kind for c in prog.calls if c.op.kind != "reshape"] == ["transpose", "dense"]
    ql, qr, qo = (model.tensors[i].quantization for i in (lhs, rhs, out))
    inputs = [_input((2, 2, 3, 4), seed) for seed in range(3)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs)
    for x, output in zip(inputs, outputs, strict=True):
        expected = tflite_ops.batch_matmul(x, weights, ql.scales[0], ql.zero_points[0], qr.scales[0], 0,
                                           qo.scales[0], qo.zero_points[0], adj_x=True)
        assert np.unique(expected).size > 10
        assert run_reference(prog, x).tobytes() == expected.tobytes()
        assert output == expected.tobytes()


def test_batch_matmul_of_two_activations(tmp_path) -> None:
    """Both operands at run time (the fixture's constant made a second model input): the BATCH_MATMUL kernel
    reads both; the reference and the generated C equal TFLM's arithmetic (``tflite_ops.batch_matmul``)."""
    model = read_model(FIXTURES / "ops" / "batch_matmul_adj_y.tflite")
    (lhs, rhs), out = model.operators[0].inputs, model.operators[0].outputs[0]
    model = dataclasses.replace(_with_tensor(model, rhs, data=None), inputs=(lhs, rhs))
    mod = _build(convert(model))
    prog = program_of(mod)
    (call,) = prog.calls
    assert call.op.kind == "batch_matmul" and call.op.num_inputs == 2 and not call.consts
    ql, qr, qo = (model.tensors[i].quantization for i in (lhs, rhs, out))
    pairs = [(_input((2, 3, 4), seed), _input((2, 6, 4), seed + 5)) for seed in range(3)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, [np.concatenate([a.ravel(), b.ravel()])
                                                                            for a, b in pairs])
    for (a, b), output in zip(pairs, outputs, strict=True):
        expected = tflite_ops.batch_matmul(a, b, ql.scales[0], ql.zero_points[0], qr.scales[0], qr.zero_points[0],
                                           qo.scales[0], qo.zero_points[0], adj_y=True)
        assert np.unique(expected).size > 10
        assert run_program(prog, [a, b])[0].tobytes() == expected.tobytes()
        assert output == expected.tobytes()


def test_batch_matmul_refusals_are_precise() -> None:
    """A constant left-hand operand, depths that differ: refused naming the operator and the reason."""
    op = read_model(FIXTURES / "ops" / "batch_matmul.tflite").operators[0]
    text = _binary_refusal("batch_matmul", lambda m: _with_op(m, inputs=(op.inputs[1], op.inputs[1])))
    assert "operator #0 BATCH_MATMUL" in text and "left-hand operand" in text
    text = _binary_refusal("batch_matmul", lambda m: _with_op(m, options={**op.options, "AdjY": True}))
    assert "depths 4 and 5" in text
def test_transpose_conv_refusals_are_precise() -> None:
    """An output shape computed at run time, one that disagrees with the filters, a filter of another depth,
    an int8 bias: each refused naming the operator and the reason."""
    name = "transpose_conv_s2_same"
    shape, _, x, bias = read_model(FIXTURES / "ops" / f"{name}.tflite").operators[0].inputs
    text = _binary_refusal(name, lambda m: _with_tensor(m, shape, data=None))
    assert "operator #0 TRANSPOSE_CONV" in text and "output shape" in text and "computed at run time" in text
    text = _binary_refusal(name, lambda m: _with_tensor(m, shape, data=np.array([1, 10, 12, 5], np.int32)))
    assert "output shape [1, 10, 12, 5]" in text and "4 filters" in text
    text = _binary_refusal(name, lambda m: _with_tensor(m, x, shape=(1, 5, 6, 2)))
    assert "depth 3 for an input of depth 2" in text
    text = _binary_refusal(name, lambda m: _with_tensor(m, bias, dtype="INT8", data=np.zeros(4, np.int8)))
    assert "bias" in text and "int32" in text


def test_movement_refusals_are_precise() -> None:
    """What TFLM refuses or computes unlike TensorFlow, bytes whose quantisation changes, empty results,
    constant inputs and inconsistent attributes: each refused naming the operator and the reason."""
    fixture = FIXTURES / "ops"
    sliced = read_model(fixture / "strided_slice_masks.tflite").operators[0]
    text = _binary_refusal("strided_slice_masks", lambda m: _with_op(m, options={**sliced.options, "EllipsisMask": 1}))
    assert "operator #0 STRIDED_SLICE" in text and "ignores ellipsis_mask" in text
    strides = sliced.inputs[3]
    text = _binary_refusal("strided_slice_masks", lambda m: _with_tensor(m, strides, data=np.array([1, 0, 1, 1])))
    assert "stride value has to be non-zero" in text
    begin = sliced.inputs[1]
    text = _binary_refusal("strided_slice_masks", lambda m: _with_op(m, options={**sliced.options, "BeginMask": 0,
                                                                                "EndMask": 0}))
    assert "empty result" in text
    text = _binary_refusal("strided_slice_masks", lambda m: _with_op(m, inputs=(begin, *sliced.inputs[1:])))
    assert "input 0" in text and "constant tensor where STRIDED_SLICE takes an activation" in text
    split = read_model(fixture / "split_axis3.tflite")
    q = dataclasses.replace(split.tensors[split.outputs[1]].quantization, scales=(0.5,))
    text = _binary_refusal("split_axis3", lambda m: _with_tensor(m, m.outputs[1], quantization=q))
    assert "operator #0 SPLIT" in text and "quantised unlike its input" in text
    text = _binary_refusal("split_axis3", lambda m: _with_op(m, options={"NumSplits": 2}))
    assert "SPLIT of dimension 6 into 2 parts with 3 outputs" in text
    pad = read_model(fixture / "mirror_pad_reflect.tflite").operators[0]
    wide = np.array([[0, 0], [4, 0], [0, 0], [0, 0]])
    text = _binary_refusal("mirror_pad_reflect", lambda m: _with_tensor(m, pad.inputs[1], data=wide))
    assert "REFLECT paddings" in text and "at most [0, 3, 4, 1]" in text
    pack = read_model(fixture / "pack_axis1.tflite")
    q = dataclasses.replace(pack.tensors[pack.inputs[1]].quantization, zero_points=(3,))
    text = _binary_refusal("pack_axis1", lambda m: _with_tensor(m, m.inputs[1], quantization=q))
    assert "operator #0 PACK" in text and "quantised unlike its input" in text


def test_fully_connected_on_4d_reads_rows() -> None:
    """DS-CNN's FULLY_CONNECTED takes the pooled (1, 1, 1, C) tensor: a view to (1, C), then the dense."""
    prog = program_of(import_tflite(CORPUS / "ds_cnn.tflite")[0])
    dense = [i for i, c in enumerate(prog.calls) if isinstance(c.op, Dense)]
    assert dense and isinstance(prog.calls[dense[0] - 1].op, Reshape)
    assert prog.calls[dense[0]].op.in_shape == (1, prog.calls[dense[0]].op.in_shape[1])


def test_fused_activation_of_add_is_its_clamp() -> None:
    """ResNet-8's ADD with a fused RELU: the clamp starts at the output zero point."""
    prog = program_of(import_tflite(CORPUS / "resnet8.tflite")[0])
    adds = [c.op for c in prog.calls if c.op.kind == "add"]
    assert adds and all(op.act_min == op.out_zp and op.act_max == 127 for op in adds)


def test_logistic_is_a_table() -> None:
    prog = program_of(import_tflite(FIXTURES / "unsupported_op.tflite")[0])
    luts = [c for c in prog.calls if c.op.kind == "lut"]
    assert len(luts) == 1 and luts[0].op.function == "LOGISTIC" and luts[0].consts[0].shape == (256,)
    assert np.all(np.diff(luts[0].consts[0][np.argsort(np.arange(256, dtype=np.uint8).view(np.int8))]) >= 0)


def test_depthwise_on_one_channel_is_a_convolution() -> None:
    """micro_speech: a depthwise conv of multiplier 8 on one channel becomes a regular convolution."""
    prog = program_of(import_tflite(CORPUS / "micro_speech.tflite")[0])
    convs = [c for c in prog.calls if isinstance(c.op, Conv2D)]
    assert len(convs) == 1 and not convs[0].op.depthwise and convs[0].consts[0].shape[0] == 8


def test_person_detect_per_channel_depthwise_scales() -> None:
    """Depthwise filters quantised along dimension 3 keep one scale per channel."""
    prog = program_of(import_tflite(CORPUS / "person_detect.tflite")[0])
    dw = [c.op for c in prog.calls if isinstance(c.op, Conv2D) and c.op.depthwise]
    assert dw and all(len(op.weight_scales) == op.out_shape[3] for op in dw)
    assert any(len(set(op.weight_scales)) > 1 for op in dw)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_models_say_what_and_where(name: str) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(CORPUS / f"{name}.tflite")
    text = info.value.format()
    assert "corrupt" not in text
    for needle in REFUSED[name]:
        assert needle in text, text
    if "operator #" in text:
        assert "supported TFLite operators" in text or "supported" in text


def test_unsupported_operator_lists_the_supported_ones() -> None:
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(CORPUS / "lstm_kws.tflite")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in info.value.what and "operator #0" in info.value.where
    assert all(op in info.value.hint for op in SUPPORTED_OPS)


def test_reader_decodes_options_and_quantisation() -> None:
    model = read_model(CORPUS / "ds_cnn.tflite")
    conv = model.operators[0]
    assert conv.name == "CONV_2D" and conv.options["Padding"] in ("SAME", "VALID")
    assert conv.options["StrideH"] >= 1 and conv.options["FusedActivationFunction"] == "RELU"
    filt = model.tensors[conv.inputs[1]]
    assert filt.is_const and filt.data.dtype == np.int8 and filt.data.shape == filt.shape
    assert filt.quantization.axis == 0 and len(filt.quantization.scales) == filt.shape[0]


def _mutants(data: bytes, count: int, seed: int):
    """Seeded damaged copies: bytes flipped, runs overwritten, the file cut short."""
    rng = random.Random(seed)
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.randrange(3)
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(8, len(buf))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            start = rng.randrange(8, len(buf))
            buf[start : start + rng.randint(1, 16)] = bytes(rng.randrange(256) for _ in range(16))[: len(buf) - start]
        else:
            buf = buf[: rng.randrange(8, len(buf))]
        yield bytes(buf)


@pytest.mark.parametrize("name", ["tiny_cnn", "corpus/ds_cnn", "ops/split_v", "ops/strided_slice_negative",
                                  "ops/mirror_pad_reflect"])
def test_damaged_files_are_errors_not_tracebacks(name: str, tmp_path) -> None:
    """Every damaged copy either reads and converts, or fails with an error of ours naming the file."""
    data = (FIXTURES / f"{name}.tflite").read_bytes()
    outcomes = {"ok": 0, "error": 0}
    for i, mutant in enumerate(_mutants(data, 150, seed=7)):
        path = tmp_path / f"m{i}.tflite"
        try:
            convert(read_model(path, data=mutant))
            outcomes["ok"] += 1
        except McunetError as exc:
            assert str(path) in exc.where, exc.format()
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0, outcomes


def test_truncated_file_names_the_part() -> None:
    data = (FIXTURES / "tiny_cnn.tflite").read_bytes()
    with pytest.raises(ModelFileError) as info:
        read_model("cut.tflite", data=data[:300])
    assert "corrupt" in info.value.what and info.value.where == "cut.tflite"


def test_corpus_manifest_lists_every_file() -> None:
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    files = {m["file"] for m in manifest["models"]}
    assert {f"{n}.tflite" for n in (*IMPORTED, *REFUSED)} == files


def test_readme_lists_the_supported_operators() -> None:
    from mcunet_tvm.frontend.tflite.importer import supported_ops_markdown

    readme = (FIXTURES.parents[1] / "README.md").read_text()
    assert supported_ops_markdown() in readme, "run scripts/supported_ops.py --write"


OP_FIXTURES = sorted((FIXTURES / "ops").glob("*.tflite"))


@pytest.mark.parametrize("path", OP_FIXTURES, ids=[p.stem for p in OP_FIXTURES])
def test_single_op_fixture_imports_exactly_or_is_refused(path) -> None:
    """Every single-operator fixture either imports and equals TF Lite Micro on varied inputs (one of
    them every int8 value in turn), or is refused with an error of ours."""
    try:
        mod = import_tflite(path)[0]
    except UnsupportedModelError as exc:
        assert exc.where.startswith(str(path)), exc.format()
        pytest.skip(f"refused: {exc.what}")
    prog = program_of(mod)
    sweep = [_sweep(prog, n) for n in prog.inputs]
    rng = np.random.default_rng(0)
    for xs in (sweep, sample_inputs(prog, rng), sample_inputs(prog, rng)):
        for a, b in zip(run_program(prog, xs), run_tflm_outputs(path, xs), strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _sweep(prog, name: str) -> np.ndarray:
    """Every int8 value in turn (int16: the whole int16 range in even steps, both ends included); for a
    float32 input, every half step of the int8 range of the QUANTIZE reading it (ties of the rounding)
    and beyond it (the clamps)."""
    shape = prog.shapes[name]
    n = int(np.prod(shape))
    if prog.dtype(name) == "int8":
        return (np.arange(n) % 256).astype(np.uint8).view(np.int8).reshape(shape)
    if prog.dtype(name) == "int16":
        return np.linspace(-32768, 32767, n).round().astype(np.int16).reshape(shape)
    (q,) = [c.op for c in prog.calls if isinstance(c.op, Quantize) and name in c.inputs]
    if q.dtype == "int16":  # half steps spread over the int16 range and beyond it
        halves = np.round(np.linspace(-32776, 32776, n) * 2) / 2 - q.zero_point
        return (halves * np.float32(q.scale)).astype(np.float32).reshape(shape)
    halves = (np.arange(n) % 600 - 300 - 2 * q.zero_point) * 0.5
    return (halves * np.float32(q.scale)).astype(np.float32).reshape(shape)


#: fixtures with float32 edges: name -> (input dtype, output dtype)
FLOAT_EDGES = {"float_edges_dwconv": ("float32", "float32"), "float_input_dwconv": ("float32", "int8"),
               "float_edges_mul_const": ("float32", "float32"), "float_input_arg_max": ("float32", "int32")}


@pytest.mark.parametrize("name", FLOAT_EDGES)
def test_float_edges_import_as_quantize_and_dequantize(name: str, tmp_path) -> None:
    """The converter's float32 edges (no inference_input_type / inference_output_type): a QUANTIZE kernel
    from the float32 input, a DEQUANTIZE kernel to the float32 output, 4 bytes per element at the edges;
    the reference and the generated C (host) equal TFLM on float inputs."""
    path = FIXTURES / "ops" / f"{name}.tflite"
    mod, _ = import_tflite(path)
    prog = program_of(mod)
    dtypes = FLOAT_EDGES[name]
    assert (prog.dtype(prog.input), prog.dtype(prog.output)) == dtypes
    assert isinstance(prog.calls[0].op, Quantize)
    assert isinstance(prog.calls[-1].op, Dequantize) == (dtypes[1] == "float32")
    assert prog.nbytes(prog.input) == 4 * int(np.prod(prog.shapes[prog.input]))
    inputs = [_sweep(prog, prog.input), *(sample_inputs(prog, np.random.default_rng(s))[0] for s in range(2))]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs)
    for k, (x, output) in enumerate(zip(inputs, outputs, strict=True)):
        (expected,) = run_tflm_outputs(path, [x])
        assert expected.dtype == np.dtype(dtypes[1]) and np.unique(expected).size > 1
        assert run_reference(prog, x).tobytes() == expected.tobytes(), f"{name} input {k}"
        assert output == expected.tobytes(), f"{name} input {k} (C)"


@pytest.mark.parametrize("name", ["arg_max_axis1", "arg_max_last"])
def test_arg_max_writes_int32_indices(name: str, tmp_path) -> None:
    """ARG_MAX: int32 indices (4 bytes each) from the generated C equal TFLM's, ties included."""
    path = FIXTURES / "ops" / f"{name}.tflite"
    mod, shape = import_tflite(path)
    prog = program_of(mod)
    (call,) = prog.calls
    assert isinstance(call.op, ArgMax) and prog.dtype(prog.output) == "int32"
    ties = np.random.default_rng(5).integers(-1, 2, shape).astype(np.int8)
    inputs = [ties, _input(shape, 0)]
    for x, output in zip(inputs, run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs), strict=True):
        (expected,) = run_tflm_outputs(path, [x])
        assert expected.dtype == np.int32 and output == expected.tobytes()


def test_dynamic_range_and_float_models_are_refused_precisely() -> None:
    """A float model, a weights-only (dynamic-range) one and float32 inside an int8 model: refused at the
    first operator computing in float32 (float edges around an int8 body import, see above)."""
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(FIXTURES / "float_cnn.tflite")
    assert "not a full-integer model" in info.value.what and "operator #0 CONV_2D" in info.value.where
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(FIXTURES / "dynamic_range.tflite")
    assert "dynamic-range" in info.value.what and "operator #0 CONV_2D" in info.value.where
    assert "representative_dataset" in info.value.hint
    model = read_model(FIXTURES / "ops" / "float_input_arg_max.tflite")
    arg_max = model.operators[1]  # reading the float32 input itself instead of the QUANTIZE's result
    inside = dataclasses.replace(model, operators=(model.operators[0], dataclasses.replace(
        arg_max, inputs=(model.inputs[0], *arg_max.inputs[1:]))))
    with pytest.raises(UnsupportedModelError) as info:
        convert(inside)
    assert "ARG_MAX computes in float32 inside the model" in info.value.what and "operator #1" in info.value.where


def test_most_single_op_fixtures_import() -> None:
    """A floor on coverage (raise it as operators land): how many single-op fixtures import."""
    imported = 0
    for path in OP_FIXTURES:
        try:
            import_tflite(path)
            imported += 1
        except UnsupportedModelError:
            pass
    assert imported >= 119, imported
