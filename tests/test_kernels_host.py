"""Every operator x shapes/strides/kernels: generated C (compiled for the host) == numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from mcunet_tvm.frontend.tflite.importer import bilinear_map
from mcunet_tvm.ir import KernelCall, emit_call, new_main, program_of
from mcunet_tvm.kernels import KernelChoice
from mcunet_tvm.kernels.movement import copy_loops
from mcunet_tvm.ops import (
    ArgMax,
    Concat,
    Dequantize,
    Lut,
    MirrorPad,
    Quantize,
    ResizeBilinear,
    ResizeNearest,
    Slice,
    Softmax,
    Transpose,
)
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant.fixedpoint import prepare_softmax
from mcunet_tvm.reference.graph_ref import run_call, run_reference, sample_inputs
from mcunet_tvm.targets import get_target

from opcases import (
    add_case,
    batch_matmul_case,
    binary_case,
    conv_case,
    dense_case,
    emit_op,
    lowered_choice,
    mean_case,
    pad_case,
    pool_case,
    prelu_case,
    reduce_case,
    run_compiled,
    single_op_module,
    transpose_conv_case,
)

HOST = get_target("host")


def _cases():
    rng = np.random.default_rng(1234)
    cases = []
    for k in (1, 3, 5, 7):
        for s in (1, 2):
            cases.append((f"conv_k{k}_s{s}", conv_case(rng, 9, 11, 5, 7, k, s)))
            cases.append((f"dw_k{k}_s{s}", conv_case(rng, 10, 9, 6, 6, k, s, depthwise=True)))
    for name, (op, consts) in [("conv_k3_general_requant", conv_case(rng, 7, 8, 5, 6, 3, 1)),
                               ("dw_k3_general_requant", conv_case(rng, 8, 7, 5, 5, 3, 2, depthwise=True)),
                               ("dense_general_requant", dense_case(rng, 21, 6))]:
        cases.append((name, (op, consts, KernelChoice(fast_requant=False))))  # left shifts allowed
    cases.append(("conv_valid_k3_s2", conv_case(rng, 12, 12, 3, 8, 3, 2, padding="valid")))
    cases.append(("pointwise_odd", conv_case(rng, 7, 5, 13, 9, 1, 1)))
    cases.append(("pointwise_expand", conv_case(rng, 6, 6, 4, 24, 1, 1)))
    cases.append(("dense", dense_case(rng, 37, 11)))
    cases += _transpose_conv_cases(rng)
    cases.append(("add", add_case(rng, (1, 5, 6, 7))))
    for mode in ("avg", "max"):
        cases.append((f"{mode}pool_k2_s2", pool_case(rng, 8, 8, 5, 2, 2, mode)))
        cases.append((f"{mode}pool_k3_s2_pad", pool_case(rng, 9, 7, 3, 3, 2, mode, pad=1)))
    cases.append(("mean", mean_case(rng, 7, 6, 9)))
    cases.append(("mean_keepdims", mean_case(rng, 4, 4, 5, keepdims=True)))
    cases.append(("mean_lanes", mean_case(rng, 5, 5, 16)))  # four channels per word, 16-bit lane sums
    cases.append(("mean_lanes_keepdims", mean_case(rng, 3, 3, 8, keepdims=True)))
    cases.append(("mean_lanes_255_pixels", mean_case(rng, 15, 17, 4)))  # the most a lane sums exactly
    cases.append(("mean_256_pixels", mean_case(rng, 16, 16, 4)))  # one channel at a time
    for name, function, shape, axes, keep in [
            ("mean_02_keep", "mean", (3, 4, 5), (0, 2), True), ("mean_all", "mean", (1, 3, 4, 5), (0, 1, 2, 3), False),
            ("mean_last", "mean", (3, 4, 7), (2,), False), ("sum_123", "sum", (2, 3, 4, 2), (1, 2, 3), False),
            ("sum_axis1_keep", "sum", (1, 5, 6, 3), (1,), True), ("sum_middle", "sum", (4, 9, 1, 2), (1, 2), False),
            ("mean_c_large", "mean", (1, 2, 3, 700), (3,), False), ("sum_none", "sum", (2, 3), (), False)]:
        cases.append((f"reduce_{name}", reduce_case(rng, function, shape, axes, keep)))
    for name, shape, alpha in [("channels", (1, 5, 6, 7), (7,)), ("shared_hw", (1, 5, 5, 4), (1, 1, 4)),
                               ("full", (1, 3, 4, 5), (3, 4, 5)), ("rows", (2, 4, 3, 5), (4, 1, 1)),
                               ("scalar", (3, 9), ())]:
        cases.append((f"prelu_{name}", prelu_case(rng, shape, alpha)))
    for name, lhs, rhs, adj_x, adj_y, const in [
            ("plain", (2, 3, 4), (2, 4, 5), False, False, True), ("adj_x", (2, 4, 3), (2, 4, 5), True, False, True),
            ("adj_y", (2, 3, 4), (2, 6, 4), False, True, True), ("bcast_lhs", (3, 7), (2, 1, 7, 5), False, False, True),
            ("bcast_both", (2, 1, 3, 4), (1, 3, 4, 2), False, False, True),
            ("adj_xy_5d", (1, 2, 1, 9, 3), (2, 1, 4, 9), True, True, True),
            ("two_inputs", (1, 4, 4, 4), (1, 4, 4, 4), False, True, False)]:
        cases.append((f"batch_matmul_{name}", batch_matmul_case(rng, lhs, rhs, adj_x, adj_y, const)))
    cases.append(("pad", pad_case(rng, 5, 4, 3, ((0, 0), (1, 2), (2, 0), (0, 0)))))
    sm = prepare_softmax(0.05)
    cases.append(("softmax", (Softmax((1, 10), (1, 10), input_multiplier=sm.input_multiplier,
                                      input_left_shift=sm.input_left_shift, diff_min=sm.diff_min), [])))
    cases.append(("softmax_one_element", (Softmax((3, 1), (3, 1), input_multiplier=sm.input_multiplier,
                                                  input_left_shift=sm.input_left_shift, diff_min=sm.diff_min),
                                          [])))  # no reduction loop left
    cases.append(("transpose_nchw", (Transpose((1, 3, 5, 6), (1, 5, 6, 3), perm=(0, 2, 3, 1)), [])))
    cases.append(("transpose_3d", (Transpose((4, 3, 5), (5, 4, 3), perm=(2, 0, 1)), [])))
    rows, cols = np.array([0, 0, 0, 1, 1, 2, 2], np.int32), np.arange(9, dtype=np.int32) // 3
    cases.append(("resize_nearest_up", (ResizeNearest((1, 3, 4, 5), (1, 7, 9, 5)), [rows, cols])))
    for ac, hp in ((False, False), (True, False), (False, True)):
        for (h, w), (oh, ow) in (((3, 4), (7, 9)), ((6, 7), (4, 3))):
            maps = [bilinear_map(o, i, ac, hp) for o, i in ((oh, h), (ow, w))]
            cases.append((f"resize_bilinear_{h}x{w}_{oh}x{ow}_{'ac' if ac else 'hp' if hp else 'plain'}",
                          (ResizeBilinear((2, h, w, 5), (2, oh, ow, 5)), maps)))
    for axis in (1, 3):  # x and a 1x1 conv of x side by side (single_op_module's two inputs)
        shape = (1, 4, 5, 6)
        out = tuple(2 * d if i == axis else d for i, d in enumerate(shape))
        cases.append((f"concat_axis{axis}", (Concat(shape, out, axis=axis, in_shapes=(shape, shape)), [])))
    for n in (13, 64):  # a tail after the four-element loop, and none
        table = rng.integers(-128, 128, 256, dtype=np.int64).astype(np.int8)
        cases.append((f"lut_{n}", (Lut((1, 1, 1, n), (1, 1, 1, n), function="test"), [table])))
    cases.append(("quantize_float", (Quantize((1, 4, 5, 6), (1, 4, 5, 6), scale=0.0371, zero_point=-9), [])))
    cases.append(("dequantize", (Dequantize((1, 3, 4, 7), (1, 3, 4, 7), scale=0.0213, zero_point=5), [])))
    cases.append(("arg_max_axis1", (ArgMax((1, 6, 4, 3), (1, 4, 3), axis=1), [])))
    cases.append(("arg_max_last_int64", (ArgMax((2, 5, 7), (2, 5), axis=2, index_dtype="int64"), [])))
    for mode in ("avg", "max"):  # one-tap windows: strided copies (own generator: the cases above keep theirs)
        cases.append((f"{mode}pool_k1_s2", pool_case(np.random.default_rng(5), 5, 6, 3, 1, 2, mode)))
    return cases + _binary_cases(rng) + _copy_cases()


#: strided copies (in shape, out shape, begin, strides): 4-D with steps, backwards, one element of 4-D,
#: 6-D odd sizes, a whole 1-D tensor, contiguous rows of 2-D, a channel range of NHWC, both directions in 5-D
_SLICES = {
    "slice_4d_steps": ((1, 7, 9, 5), (1, 3, 4, 2), (0, 1, 0, 3), (1, 2, 2, 1)),
    "slice_3d_backwards": ((4, 5, 3), (2, 5, 3), (3, 4, 0), (-2, -1, 1)),
    "slice_one_element": ((2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 3, 4), (1, 1, 1, 1)),
    "slice_6d_odd": ((3, 1, 5, 3, 7, 3), (2, 1, 2, 3, 3, 2), (1, 0, 1, 0, 6, 0), (1, 1, 3, 1, -2, 2)),
    "slice_1d_whole": ((13,), (13,), (0,), (1,)),
    "slice_rows": ((9, 11), (4, 11), (3, 0), (1, 1)),
    "slice_channels": ((1, 3, 4, 10), (1, 3, 4, 3), (0, 0, 0, 7), (1, 1, 1, 1)),
    "slice_5d_mixed": ((2, 3, 4, 5, 3), (2, 2, 4, 3, 3), (1, 0, 3, 4, 0), (-1, 2, -1, -2, 1)),
}

#: mirror paddings (in shape, pads, mode): H and W of NHWC, every dimension of 3-D, 1-D, a one-element
#: dimension repeated, the largest pads each mode allows
_MIRRORS = {
    "mirror_reflect_hw": ((1, 4, 5, 3), ((0, 0), (2, 1), (1, 3), (0, 0)), "reflect"),
    "mirror_symmetric_3d": ((3, 4, 2), ((1, 2), (3, 0), (2, 2)), "symmetric"),
    "mirror_reflect_1d": ((7,), ((3, 6),), "reflect"),
    "mirror_symmetric_unit": ((1, 1, 3), ((1, 0), (0, 1), (0, 0)), "symmetric"),
    "mirror_reflect_widest": ((2, 3, 5), ((1, 1), (2, 2), (4, 4)), "reflect"),
}


def _copy_cases() -> list:
    cases = [(name, (Slice(i, o, begin=b, strides=s), [])) for name, (i, o, b, s) in _SLICES.items()]
    for name, (shape, pads, mode) in _MIRRORS.items():
        out = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
        cases.append((name, (MirrorPad(shape, out, pads=pads, mode=mode), [])))
    return cases


def _transpose_conv_cases(rng) -> list:
    """TRANSPOSE_CONV: strides 1-3, odd sizes and kernels (smaller than the stride too), SAME/VALID (padded
    by TFLM's rule), with and without bias, an output larger than the scatter reaches (bias only there),
    the general requantisation."""
    cases = []
    for name, args in {
        "tconv_k3_s1_same": (5, 7, 6, 5, 3, 1, "SAME"),
        "tconv_k3_s2_same": (5, 6, 4, 7, 3, 2, "SAME"),
        "tconv_k2_s2_valid_nobias": (4, 5, 9, 6, 2, 2, "VALID", False),
        "tconv_k4x3_s2_valid": (3, 5, 5, 4, (4, 3), 2, "VALID"),
        "tconv_k4_s2_same_pad1": (4, 3, 5, 6, 4, 2, "SAME"),
        "tconv_k5_s3_same_pad1": (3, 4, 5, 3, 5, 3, "SAME"),
        "tconv_k5_s3_valid_nobias": (3, 3, 3, 4, 5, 3, "VALID", False),
        "tconv_k2_s3_same": (4, 3, 6, 5, 2, 3, "SAME"),  # phases that no tap reaches: bias only
        "tconv_k3_s2_wide_out": (3, 4, 4, 3, 3, 2, "VALID", True, (9, 11)),
    }.items():
        cases.append((name, transpose_conv_case(rng, *args)))
    op, consts = transpose_conv_case(rng, 5, 5, 6, 4, 3, 2)
    cases.append(("tconv_k3_s2_general_requant", (op, consts, KernelChoice(fast_requant=False))))
    for name, args in {  # the dual-MAC form (UseSimdKernels): whole words of channels, then a tail
        "tconv_dual_k3_s2_same": (5, 6, 8, 5, 3, 2, "SAME"),
        "tconv_dual_k2_s2_valid_tail": (4, 3, 7, 6, 2, 2, "VALID", False),
        "tconv_dual_k3_s1_same_tail": (3, 5, 13, 4, 3, 1, "SAME"),
        "tconv_dual_k3_s2_looped_words": (3, 4, 37, 3, 3, 2, "SAME"),  # more words than are unrolled
    }.items():
        op, consts = transpose_conv_case(rng, *args)
        cases.append((name, (op, consts, lowered_choice(op, consts).with_(dual_mac=True))))
    return cases


#: operand shape patterns of the broadcasting binary kernel: same shape, squeeze-excite (per channel),
#: per row, rank 2 against rank 1, both operands broadcast, 5-D
_PATTERNS = {
    "same": ((1, 5, 6, 7), (1, 5, 6, 7)),
    "se": ((1, 6, 5, 16), (1, 1, 1, 16)),
    "rows": ((1, 5, 6, 7), (1, 5, 1, 1)),
    "rank2": ((3, 13), (13,)),
    "both": ((4, 1, 6), (1, 5, 6)),
}


def _binary_cases(rng) -> list:
    cases = []
    for function in ("add", "sub", "mul", "maximum", "minimum"):
        for pattern, (s0, s1) in _PATTERNS.items():
            cases.append((f"{function}_{pattern}", binary_case(rng, function, s0, s1)))
    extra = {
        "add_const_channels": ("add", (1, 4, 5, 6), (6,), 1, (-128, 127)),
        "sub_const_left_relu": ("sub", (1, 1, 6), (2, 5, 6), 0, (-40, 127)),
        "mul_const_scalar_clamp": ("mul", (1, 3, 4, 9), (), 1, (-100, 90)),
        "maximum_const_clamp": ("maximum", (1, 5, 7, 3), (1, 1, 3), 1, (-50, 60)),
        "minimum_const_5d": ("minimum", (1, 2, 3, 4, 5), (1, 2, 1, 4, 1), 1, (-128, 127)),
        "add_se_clamp": ("add", (1, 3, 3, 8), (1, 1, 1, 8), -1, (-20, 90)),
        "sub_rows_clamp": ("sub", (1, 4, 3, 5), (1, 4, 1, 1), -1, (0, 100)),
        "mul_se_relu6": ("mul", (1, 4, 4, 12), (1, 1, 1, 12), -1, (-128, 60)),
    }
    for name, (function, s0, s1, const, act) in extra.items():
        cases.append((name, binary_case(rng, function, s0, s1, const, act, zps=(10, -5, 0))))
    # a multiplier above one (a left shift), by a constant of -1, 0, 1: products small enough not to saturate
    op, (operand,) = binary_case(rng, "mul", (2, 9), (9,), 1, mul_gain=0.5, zps=(0, 0, 0))
    cases.append(("mul_left_shift", (op, [np.clip(operand, -1, 1)])))
    return cases


CASES = _cases()


@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_reference(name: str, case, tmp_path) -> None:
    op, consts, *choice = case
    mod = single_op_module(op, consts, *choice)
    compiled = compile_relax(mod, mcpu=None)
    prog = program_of(compiled.integer_module)
    rng = np.random.default_rng(len(name))
    inputs = [sample_inputs(prog, rng)[0] for _ in range(3)]
    for x, output in zip(inputs, run_compiled(compiled, "host", tmp_path, inputs), strict=True):
        assert output == run_reference(prog, x).tobytes(), name


def test_repeated_channels_then_depthwise_matches_reference(tmp_path) -> None:
    """A depthwise convolution of multiplier 3 as the frontend lowers it: the input's channels repeated (one
    CONCATENATION of the same tensor, three times along a new last axis) and the multiplier-1 depthwise kernel
    on the repeated channels; the generated C equals the reference, which equals the direct computation."""
    rng = np.random.default_rng(5)
    shape, m = (1, 6, 5, 4), 3
    wide = (*shape[:3], shape[3] * m)
    conv, consts = conv_case(rng, 6, 5, shape[3] * m, shape[3] * m, 3, 1, depthwise=True)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "int8"))
    with new_main(bb, x, {}) as result:
        column = bb.emit(relax.op.reshape(x, (*shape, 1)))
        concat = Concat((*shape, 1), (*shape, m), axis=4, in_shapes=((*shape, 1),) * m)
        repeated = bb.emit(relax.op.reshape(emit_call(bb, "k_repeat", concat, [column] * m, []), wide))
        result(emit_op(bb, "k_dw", conv, [repeated], consts))
    compiled = compile_relax(bb.get(), mcpu=None)
    prog = program_of(compiled.integer_module)
    inputs = [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(2)]
    for x_value, output in zip(inputs, run_compiled(compiled, "host", tmp_path, inputs), strict=True):
        direct = run_call(KernelCall("dw", conv, (), tuple(consts), ""), [np.repeat(x_value, m, axis=3)])
        assert run_reference(prog, x_value).tobytes() == direct.tobytes()
        assert output == direct.tobytes()


def test_copy_loops_merge_contiguous_runs() -> None:
    """Whole rows are one loop; a channel range of NHWC is a loop over pixels around a run of bytes; a
    backwards walk never merges with the run inside it; one-element dimensions vanish."""
    assert copy_loops((4, 11), (11, 1), (11, 1)) == [(44, 1, 1)]
    assert copy_loops((1, 3, 4, 3), (120, 40, 10, 1), (36, 12, 3, 1)) == [(12, 10, 3), (3, 1, 1)]
    assert copy_loops((3, 5), (-5, 1), (5, 1)) == [(3, -5, 5), (5, 1, 1)]
    assert copy_loops((1, 1), (7, 1), (1, 1)) == []


def test_copy_descriptors_refuse_reads_outside_the_input() -> None:
    with pytest.raises(ValueError, match="3 elements from 2 by 1"):
        Slice((4,), (3,), begin=(2,), strides=(1,))
    with pytest.raises(ValueError, match="2 elements from 0 by -1"):
        Slice((4,), (2,), begin=(0,), strides=(-1,))
    with pytest.raises(ValueError, match="at most"):
        MirrorPad((1, 3), (1, 6), pads=((0, 0), (3, 0)), mode="reflect")
    assert MirrorPad((1, 3), (1, 6), pads=((0, 0), (3, 0)), mode="symmetric").out_shape == (1, 6)


def _near_halves(scale: float, n: int) -> np.ndarray:
    halves = ((np.arange(n) - n // 2 + 0.5) * np.float32(scale)).astype(np.float32)
    return np.stack([np.nextafter(halves, np.float32(np.inf)), np.nextafter(halves, np.float32(-np.inf)), halves])


#: kernels on inputs made of their corner cases: (op, input)
_CORNERS = {
    # x / scale exactly k / 2 for every k over +-300: ties round away from zero, and both clamps
    "quantize_halves": (Quantize((2, 600), (2, 600), scale=0.25, zero_point=3),
                        (np.arange(-600, 600) * 0.125).astype(np.float32).reshape(2, 600)),
    # halves and their float neighbours, beyond the int8 range, signed zeros
    # x / scale near k + 1/2 (the float32 values next to each half, and the half as float32 rounds it)
    "quantize_near_halves": (Quantize((3, 400), (3, 400), scale=0.0371, zero_point=-9), _near_halves(0.0371, 400)),
    "dequantize_every_value": (Dequantize((1, 256), (1, 256), scale=0.0213, zero_point=-128),
                               np.arange(-128, 128, dtype=np.int8).reshape(1, 256)),
    # ties everywhere: the first maximum wins
    "arg_max_ties": (ArgMax((1, 6, 4, 3), (1, 4, 3), axis=1),
                     np.random.default_rng(3).integers(-1, 2, (1, 6, 4, 3)).astype(np.int8)),
}


@pytest.mark.parametrize("name", _CORNERS)
def test_edge_kernels_on_corner_cases(name: str, tmp_path) -> None:
    """QUANTIZE from float32 on ties and their neighbours, DEQUANTIZE of every int8 value, ARG_MAX on ties:
    the generated C equals the reference, which equals TFLM's arithmetic (``reference/tflite_ops.py``)."""
    op, x = _CORNERS[name]
    compiled = compile_relax(single_op_module(op, []), mcpu=None)
    prog = program_of(compiled.integer_module)
    (output,) = run_compiled(compiled, "host", tmp_path, [x])
    expected = run_reference(prog, x)
    assert output == expected.tobytes(), name
    if isinstance(op, Quantize):
        assert np.unique(expected).size > 100  # both clamps and most values in between


def test_float_between_int8_kernels(tmp_path) -> None:
    """DEQUANTIZE then QUANTIZE (to another scale) between two int8 tensors: a float32 tensor inside the
    arena (4 bytes per element, aligned), the C equal to the reference on every int8 value."""
    from tvm import relax

    from mcunet_tvm.ir import emit_call, new_main

    shape = (1, 4, 8, 8)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, "int8"))
    with new_main(bb, x, {}) as result:
        f = emit_call(bb, "k_dequantize", Dequantize(shape, shape, scale=0.05, zero_point=-3), [x], [])
        result(emit_call(bb, "k_quantize", Quantize(shape, shape, scale=0.0731, zero_point=11), [f], []))
    compiled = compile_relax(bb.get(), mcpu=None)
    prog = program_of(compiled.integer_module)
    middle = prog.calls[0].output
    assert prog.dtype(middle) == "float32" and prog.nbytes(middle) == 4 * 256
    assert compiled.plan.layout.offsets[middle] % 4 == 0
    x = np.arange(-128, 128, dtype=np.int8).reshape(shape)
    (output,) = run_compiled(compiled, "host", tmp_path, [x])
    expected = run_reference(prog, x)
    assert output == expected.tobytes() and np.unique(expected).size > 100
