"""16x8 models (int16 activations, int8 weights): the generated C equals TF Lite Micro on the host for
single-op fixtures of every int16 kernel family; operators without an int16 variant are refused naming
the operator, its index and the tensor. (The int16x8_cnn corpus model runs on QEMU in test_e2e_qemu.py;
every i16_* fixture's reference is checked against TFLM in test_tflite_frontend.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from mcunet_tvm.errors import UnsupportedModelError
from mcunet_tvm.frontend.tflite import import_tflite
from mcunet_tvm.ir import program_of
from mcunet_tvm.ops import Requantize
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_program, run_reference, sample_inputs
from mcunet_tvm.reference.tflm import run_tflm_outputs

from conftest import FIXTURES
from opcases import run_compiled, single_op_module

OPS = FIXTURES / "ops"
#: one fixture per int16 kernel (conv int64 and int32 bias, depthwise multiplier 2, dense, add, the
#: broadcasting binary operators, mean, softmax, pools, the copies, the float edges)
COMPILED = ("i16_conv_relu", "i16_conv_int32_bias", "i16_dwconv_m2_s2_relu", "i16_dense_int32_bias", "i16_add_relu",
            "i16_mean_hw", "i16_softmax_wide", "i16_avg_pool", "i16_max_pool", "i16_concat", "i16_pad",
            "i16_strided_slice", "i16_transpose", "i16_float_edges_dwconv",
            # broadcasting and constant operands (the Binary kernel on int16)
            "i16_add_bcast", "i16_add_const_relu6", "i16_sub_bcast", "i16_sub_const_first", "i16_mul_bcast",
            "i16_mul_const", "i16_mul_same", "i16_maximum_bcast", "i16_minimum")


@pytest.mark.parametrize("name", COMPILED)
def test_int16_kernels_equal_tflm_on_the_host(name: str, tmp_path) -> None:
    path = OPS / f"{name}.tflite"
    mod = import_tflite(path)[0]
    prog = program_of(mod)
    assert "int16" in {prog.dtype(c.output) for c in prog.calls}
    rng = np.random.default_rng(3)
    inputs = [sample_inputs(prog, rng) for _ in range(2)]
    outputs = run_compiled(compile_relax(mod, mcpu=None), "host", tmp_path, inputs)
    for xs, output in zip(inputs, outputs, strict=True):
        expected = run_tflm_outputs(path, xs)
        assert np.unique(expected[0]).size > 1
        assert b"".join(a.tobytes() for a in run_program(prog, xs)) == b"".join(e.tobytes() for e in expected)
        assert output == b"".join(e.tobytes() for e in expected), name


def test_int16_operator_without_a_variant_is_refused_precisely() -> None:
    """LOGISTIC on int16: refused naming the operator, its index, the tensor and the int16 variants."""
    with pytest.raises(UnsupportedModelError) as info:
        import_tflite(OPS / "i16_logistic.tflite")
    text = info.value.format()
    assert "operator #0 LOGISTIC" in info.value.where and "corrupt" not in text
    assert "INT16" in info.value.what and "the int16 variant of LOGISTIC is not supported" in info.value.what
    assert "CONV_2D" in info.value.what  # the int16 variants are listed


def test_int16_bias_type_sets_the_accumulator() -> None:
    """An int64 bias accumulates in int64 (the 64-bit requantisation), an int32 one in int32 (TFLM's
    choice by bias type); constants keep their element types."""
    for name, acc64, bias in (("i16_conv_relu", True, np.int64), ("i16_conv_int32_bias", False, np.int32)):
        (call,) = program_of(import_tflite(OPS / f"{name}.tflite")[0]).calls
        assert call.op.acc64 is acc64 and call.consts[1].dtype == bias


def test_int16_model_edges_on_the_command_line(build_cli, tmp_path) -> None:
    """A 16x8 model's `--input` is raw int16 little-endian, its output.bin int16 little-endian (TFLM's bytes);
    the header gives the int16 edges' shapes, scales and zero points."""
    path = FIXTURES / "corpus" / "int16x8_cnn.tflite"
    x = np.random.default_rng(7).integers(-32768, 32768, (1, 16, 16, 3), dtype=np.int16)
    raw = tmp_path / "input.bin"
    raw.write_bytes(x.astype("<i2").tobytes())
    code, report, out = build_cli("--target", "host", "--model", str(path), "--input", str(raw), "--run")
    assert code == 0 and report["input_dtypes"] == ["int16"] and report["output_dtypes"] == ["int16"]
    (expected,) = run_tflm_outputs(path, [x])
    assert (out / "output.bin").read_bytes() == expected.astype("<i2").tobytes()
    header = (out / "mcunet_model.h").read_text()
    assert "MCUNET_INPUT_SHAPE {1, 16, 16, 3}  /* int16 */" in header and "MCUNET_OUTPUT_ZERO_POINT 0" in header


#: QUANTIZE between int8 and int16 (TFLM's Requantize) on every int8 value / a sweep of int16 ones
_REQUANT = {
    "int8_to_int16": (Requantize((1, 256), (1, 256), from_dtype="int8", to_dtype="int16", in_zp=-3, out_zp=0,
                                 multiplier=1518500250, shift=9),
                      np.arange(-128, 128, dtype=np.int8).reshape(1, 256)),
    "int16_to_int8": (Requantize((2, 500), (2, 500), from_dtype="int16", to_dtype="int8", in_zp=0, out_zp=5,
                                 multiplier=1717986918, shift=-7),
                      np.linspace(-32768, 32767, 1000).round().astype(np.int16).reshape(2, 500)),
}


@pytest.mark.parametrize("name", _REQUANT)
def test_requantize_kernels_equal_the_reference(name: str, tmp_path) -> None:
    """Both directions of the int8/int16 Requantize: the generated C equals the reference on every input
    value (both clamps reached)."""
    op, x = _REQUANT[name]
    compiled = compile_relax(single_op_module(op, []), mcpu=None)
    prog = program_of(compiled.integer_module)
    (output,) = run_compiled(compiled, "host", tmp_path, [x])
    expected = run_reference(prog, x)
    info = np.iinfo(op.to_dtype)
    assert expected.dtype == np.dtype(op.to_dtype) and {info.min, info.max} <= set(expected.ravel().tolist())
    assert output == expected.tobytes(), name


@pytest.mark.parametrize("name,target", [("i16_add_const_relu6", "cortex-m4"), ("i16_sub_bcast", "cortex-m7"),
                                         ("i16_mul_bcast", "cortex-m7")])
def test_int16_binary_operators_on_qemu(build_cli, name: str, target: str) -> None:
    """The broadcasting int16 ADD/SUB/MUL kernels on the Cortex-M: bit-exact with TF Lite Micro on the file
    and with the reference on the graph as imported."""
    code, report, _ = build_cli("--target", target, "--model", str(OPS / f"{name}.tflite"), "--run")
    assert code == 0
    assert report["qemu"]["bit_exact"] and report["qemu"]["bit_exact_tflm"]
