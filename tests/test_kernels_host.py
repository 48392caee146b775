"""Every operator x shapes/strides/kernels: generated C (compiled for the host) == numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from mcunet_tvm.ir import program_of
from mcunet_tvm.kernels import KernelChoice
from mcunet_tvm.ops import Concat, Lut, ResizeNearest, Softmax, Transpose
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant.fixedpoint import prepare_softmax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from opcases import (
    add_case,
    binary_case,
    conv_case,
    dense_case,
    mean_case,
    pad_case,
    pool_case,
    run_compiled,
    single_op_module,
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
    for axis in (1, 3):  # x and a 1x1 conv of x side by side (single_op_module's two inputs)
        shape = (1, 4, 5, 6)
        out = tuple(2 * d if i == axis else d for i, d in enumerate(shape))
        cases.append((f"concat_axis{axis}", (Concat(shape, out, axis=axis, in_shapes=(shape, shape)), [])))
    for n in (13, 64):  # a tail after the four-element loop, and none
        table = rng.integers(-128, 128, 256, dtype=np.int64).astype(np.int8)
        cases.append((f"lut_{n}", (Lut((1, 1, 1, n), (1, 1, 1, n), function="test"), [table])))
    for mode in ("avg", "max"):  # one-tap windows: strided copies (own generator: the cases above keep theirs)
        cases.append((f"{mode}pool_k1_s2", pool_case(np.random.default_rng(5), 5, 6, 3, 1, 2, mode)))
    return cases + _binary_cases(rng)


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
    inputs = [rng.integers(-128, 128, prog.shapes[prog.input], dtype=np.int8) for _ in range(3)]
    for x, output in zip(inputs, run_compiled(compiled, "host", tmp_path, inputs), strict=True):
        assert output == run_reference(prog, x).tobytes(), name
