"""Our TFLite frontend: real converter output imports bit-exact with TF Lite Micro, refusals are precise,
damaged files are errors that say where, never tracebacks."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from mcunet_tvm.errors import McunetError, ModelFileError, UnsupportedModelError
from mcunet_tvm.frontend.tflite import SUPPORTED_OPS, import_tflite, read_model
from mcunet_tvm.frontend.tflite.importer import convert
from mcunet_tvm.ir import KernelCall, program_of
from mcunet_tvm.ops import ArgMax, Binary, Conv2D, Dense, Dequantize, Quantize, Reshape
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_call, run_program, run_reference, sample_inputs
from mcunet_tvm.reference.tflm import run_tflm, run_tflm_outputs, run_tflm_tensors

from conftest import FIXTURES
from opcases import run_compiled

CORPUS = FIXTURES / "corpus"
#: corpus models the frontend imports today (the rest are refused with the reasons below)
IMPORTED = ("resnet8", "ds_cnn", "mobilenet_v1_025_vww", "fc_autoencoder", "person_detect", "micro_speech",
            "efficientnet_lite0", "fomo_detector", "pytorch_style_nchw", "multi_io", "mobilenet_v3_small")
REFUSED = {
    "unet_small": ("TRANSPOSE_CONV", "operator #"),
    "lstm_kws": ("UNIDIRECTIONAL_SEQUENCE_LSTM", "operator #0"),
    "int16x8_cnn": ("INT16", "16x8"),
    "misc_ops": ("MIRROR_PAD", "operator #0"),
}


def _input(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)


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
        xs = [_input(prog.shapes[n], seed + 10 * k) for k, n in enumerate(prog.inputs)]
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
    xs = [_input(ctx.shapes[i], 1 + k) for k, i in enumerate(ctx.model.inputs)]
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


@pytest.mark.parametrize("name", ["tiny_cnn", "corpus/ds_cnn"])
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
    """Every int8 value in turn; for a float32 input, every half step of the int8 range of the QUANTIZE
    reading it (ties of the rounding) and beyond it (the clamps)."""
    shape = prog.shapes[name]
    n = int(np.prod(shape))
    if prog.dtype(name) == "int8":
        return (np.arange(n) % 256).astype(np.uint8).view(np.int8).reshape(shape)
    (q,) = [c.op for c in prog.calls if isinstance(c.op, Quantize) and name in c.inputs]
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
    assert imported >= 54, imported
