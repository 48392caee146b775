"""Fast-path pieces of the kernels: SMMLAR requantisation, the depthwise row ring (stride 1 and 2), identical kernels.

The requantisation identity is checked in numpy against the reference's
TFLite arithmetic; the depthwise row kernel is checked bit-exact against the
host reference over random shapes (portable C) and on the Cortex-M7 (DSP
intrinsics), in place and not.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tvm
from tvm import relax, tirx

from mcunet_tvm import toolchain
from mcunet_tvm.codegen.tir_to_c import deduplicate
from mcunet_tvm.ir import new_main, program_of
from mcunet_tvm.kernels import KernelChoice, kernel_consts, make_kernel
from mcunet_tvm.kernels.depthwise.plan import ring_lane_bytes, row_buffer_shape, unrolls_small_image
from mcunet_tvm.kernels.elementwise import add_rescale_table
from mcunet_tvm.kernels.requant import MAX_FAST_EXPONENT, pack_fast_requant
from mcunet_tvm.ops import Conv2D
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant.fixedpoint import multiply_by_quantized_multiplier
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from opcases import add_case, conv_case, emit_op, mean_case, single_op_module

#: the plain kernel choice (what lowering gives a layer before the passes choose)
PLAIN = KernelChoice()


def _smmlar(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """SMMLAR: c + ((a * b + 2^31) >> 32), wrapping to int32 (Python ints: no overflow)."""
    out = [(int(ci) + ((int(ai) * int(bi) + (1 << 31)) >> 32)) for ai, bi, ci in zip(a, b, c, strict=True)]
    return np.array([((v + (1 << 31)) % (1 << 32)) - (1 << 31) for v in out], np.int64)


def test_fast_requantisation_equals_tflite() -> None:
    """(SMMLAR(2acc, m, rounding + (acc >> 31))) >> e == MultiplyByQuantizedMultiplier(acc) + zp."""
    rng = np.random.default_rng(0)
    n = 20000
    e = rng.integers(1, MAX_FAST_EXPONENT + 1, n)
    m = rng.integers(1 << 30, (1 << 31) - 1, n)
    bound = (1 << 30) - 2
    acc = np.concatenate([rng.integers(-bound, bound, n // 2), rng.integers(-300, 300, n - n // 2)])
    # exact ties of the final shift: acc * m / 2^31 = (k + 1/2) * 2^e
    ties = (rng.integers(-2000, 2000, 200) * 2 + 1) << (e[:200] - 1)
    acc[:200] = np.clip((ties << 31) // m[:200], -bound, bound)
    acc[200:210] = [0, -1, 1, -2, 2, bound, -bound, -3, 3, -(1 << 20)]
    for zp in (-128, -5, 0, 77, 127):
        packed = pack_fast_requant(-e, zp).astype(np.int64)
        exponent, rounding = packed[0::2], packed[1::2]
        assert np.array_equal(exponent, e)
        fast = _smmlar(2 * acc, m, rounding + (acc >> 31)) >> exponent
        expected = multiply_by_quantized_multiplier(acc, m, -e) + zp
        assert np.array_equal(fast, expected), zp


def _depthwise_cases(n: int, seed: int, small: bool = False):
    """Random depthwise layers the row kernel runs (``small``: images of at most
    ``plan.unrolls_small_image``: the tap kernel runs them fully unrolled)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        k = int(rng.choice([3, 3, 5, 7]))
        s = int(rng.choice([1, 1, 2])) if k >= 5 or small else 1
        h, w = int(rng.integers(k, 8 if small else 13)), int(rng.integers(k, 8 if small else 13))
        c = int(rng.integers(1, 11))
        case = conv_case(rng, h, w, c, c, k, s, padding=str(rng.choice(["same", "valid"])), depthwise=True)
        if unrolls_small_image(case[0], PLAIN) == small:
            cases.append(case)
    return cases


HOST_CASES = _depthwise_cases(24, seed=21)
QEMU_CASES = _depthwise_cases(6, seed=22)
SMALL_CASES = _depthwise_cases(8, seed=23, small=True)


def _check(tmp_path, target_name: str, op: Conv2D, consts, inplace: bool, ring: bool = True) -> None:
    target = get_target(target_name)
    compiled = compile_relax(single_op_module(op, consts), mcpu=target.mcpu, inplace=inplace)
    call = compiled.program.calls[0]
    assert (row_buffer_shape(call.op, call.choice) is not None) == ring
    if ring:
        kh, row = row_buffer_shape(call.op, call.choice)
        assert call.choice.scratch_bytes(call.op) == kh * row  # the ring only, in place or not
    sources = compiled.write(tmp_path)
    objects = toolchain.compile_objects(target, sources, [tmp_path], tmp_path / "obj")
    exe = toolchain.link(target, objects, tmp_path / "model.elf")
    prog = program_of(compiled.integer_module)
    rng = np.random.default_rng(op.in_shape[1] * 31 + op.in_shape[2])
    for _ in range(2):
        x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
        out = toolchain.run(target, exe, x.tobytes(), prog.nbytes(prog.output)).output
        assert out == run_reference(compiled.program, x).tobytes(), op


@pytest.mark.parametrize("index", range(len(HOST_CASES)))
def test_depthwise_row_kernel_on_host(tmp_path, index: int) -> None:
    op, consts = HOST_CASES[index]
    _check(tmp_path, "host", op, consts, inplace=bool(index % 2))


@pytest.mark.parametrize("index", range(len(QEMU_CASES)))
def test_depthwise_row_kernel_on_qemu(tmp_path, index: int) -> None:
    op, consts = QEMU_CASES[index]
    _check(tmp_path, "cortex-m7", op, consts, inplace=bool(index % 2))


@pytest.mark.parametrize("index", range(len(SMALL_CASES)))
def test_small_depthwise_images_unrolled_on_qemu(tmp_path, index: int) -> None:
    """At most 25 outputs a channel: the tap kernel with every pixel unrolled (border taps outside the
    image dropped, or multiplying the zero point from the folded bias), strides 1 and 2, in place or not."""
    op, consts = SMALL_CASES[index]
    _check(tmp_path, "cortex-m7", op, consts, inplace=bool(index % 2), ring=False)
    _check(tmp_path / "host", "host", op, consts, inplace=bool(index % 2), ring=False)


def test_dilated_depthwise_keeps_the_tap_kernel() -> None:
    op, _ = conv_case(np.random.default_rng(1), 9, 9, 4, 4, 3, 1, depthwise=True)
    op = dataclasses.replace(op, dilation=(2, 2))
    assert row_buffer_shape(op, PLAIN) is None and PLAIN.scratch_bytes(op) == 0
    strided, _ = conv_case(np.random.default_rng(1), 9, 9, 4, 4, 3, 2, depthwise=True)
    assert row_buffer_shape(strided, PLAIN) is None  # 3x3 stride 2: tap by tap is cheaper
    strided, _ = conv_case(np.random.default_rng(1), 11, 11, 4, 4, 5, 2, depthwise=True)
    assert row_buffer_shape(strided, PLAIN) is not None


def test_identical_kernels_are_compiled_once() -> None:
    """Same code, different op metadata (scales): one definition; different code: two."""
    rng = np.random.default_rng(2)
    op, _ = conv_case(rng, 6, 6, 8, 8, 1, 1)
    same = dataclasses.replace(op, in_scales=(0.5,), out_scale=0.25)
    other = dataclasses.replace(op, in_zp=(op.in_zp + 1) % 127)  # baked into the code
    kernels = {"k1": make_kernel(op), "k2": make_kernel(same), "k3": make_kernel(other)}
    assert isinstance(kernels["k2"], tirx.PrimFunc)
    unique, aliases = deduplicate(kernels)
    assert set(unique) == {"k1", "k3"} and aliases == {"k2": "k1"}


@pytest.mark.parametrize("shifts", [(-1, -3, -19), (0, -2, -22), (0, 0, 0), (1, -1, -23), (-2, 1, -10)])
def test_add_requantisation_forms_match_reference(tmp_path, shifts) -> None:
    """ADD picks the SMMLAR form, the shift-free form or the general one per constant; all equal TFLite."""
    rng = np.random.default_rng(sum(shifts) + 40)
    op, _ = add_case(rng, (1, 5, 7, 9))
    op = dataclasses.replace(op, in1_shift=shifts[0], in2_shift=shifts[1], out_shift=shifts[2],
                             act_min=-100 if shifts[2] % 2 else -128)
    _assert_op_matches_reference(tmp_path, op, rng)


@pytest.mark.parametrize("halved", [(False, True), (True, True)])
def test_add_input_of_the_larger_scale_is_halved_exactly(tmp_path, halved) -> None:
    """TFLite gives the input of the larger scale the multiplier 2^30 (one half), shift 0: the kernel
    scales it with one multiply (SRDHM(x 2^L, 2^30) = x 2^(L-1)), still equal to TFLite."""
    rng = np.random.default_rng(7 + sum(halved))
    op, _ = add_case(rng, (1, 5, 7, 9))
    half = {"multiplier": 1 << 30, "shift": 0}
    op = dataclasses.replace(op, **{f"in{i + 1}_{k}": v for i, h in enumerate(halved) if h for k, v in half.items()})
    _assert_op_matches_reference(tmp_path, op, rng)
    script = make_kernel(op).script()
    if add_rescale_table(op) is None:  # the halved input: x * 2^(L-1), one multiply
        assert "mcunet_smmlar" in script and "524288" in script  # 2^19
    else:  # the other input's rescaling is the table; the halved input, doubled for free: x << L
        assert "p2_table" in script and "mcunet_smmlar" in script


@pytest.mark.parametrize("big", [0, 1])
def test_add_rescaling_table_on_qemu(tmp_path, big: int) -> None:
    """The input of the smaller scale is rescaled by a compile-time table of its 256 values (twice
    TFLite's rescaling, minus the other input's zero-point term): entry by entry equal to TFLite's
    arithmetic, and the kernel bit-exact on the Cortex-M7 whichever input it is."""
    rng = np.random.default_rng(50 + big)
    op, _ = add_case(rng, (1, 6, 5, 12))
    half = {"multiplier": 1 << 30, "shift": 0}
    op = dataclasses.replace(op, **{f"in{big + 1}_{k}": v for k, v in half.items()})
    table = add_rescale_table(op)
    assert table is not None and table.dtype == np.int32 and table.shape == (256,)
    zp_big, zp_small = (op.in1_zp, op.in2_zp) if big == 0 else (op.in2_zp, op.in1_zp)
    mult, shift = (op.in2_multiplier, op.in2_shift) if big == 0 else (op.in1_multiplier, op.in1_shift)
    for u in (0, 1, 127, 128, 200, 255):
        x = u - 256 if u >= 128 else u
        expected = 2 * int(multiply_by_quantized_multiplier(np.array([(x - zp_small) << op.left_shift]), mult,
                                                            shift)[0]) - (zp_big << op.left_shift)
        assert int(table[u]) == expected, u
    assert [n for n, _ in kernel_consts(op, [], PLAIN)] == ["table"]
    _assert_op_matches_reference(tmp_path, op, rng, "cortex-m7")


@pytest.mark.parametrize("shape", [(5, 5, 1280), (3, 3, 12), (15, 17, 8), (16, 16, 4), (7, 6, 9)])
def test_mean_on_qemu(tmp_path, shape) -> None:
    """MEAN over H x W: four channels per SXTAB16 pair while 128 x H x W fits a 16-bit lane (255 pixels),
    else (and for channel counts not a multiple of 4) one channel at a time; both equal TFLite."""
    rng = np.random.default_rng(sum(shape))
    op, _ = mean_case(rng, *shape)
    lanes = "mcunet_sxtab16" in make_kernel(op).script()
    assert lanes == (shape[2] % 4 == 0 and shape[0] * shape[1] <= 255)
    _assert_op_matches_reference(tmp_path, op, rng, "cortex-m7")


def _assert_op_matches_reference(tmp_path, op, rng, target_name: str = "host") -> None:
    target = get_target(target_name)
    compiled = compile_relax(single_op_module(op, []), mcpu=target.mcpu)
    sources = compiled.write(tmp_path)
    exe = toolchain.link(target, toolchain.compile_objects(target, sources, [tmp_path], tmp_path / "obj"),
                         tmp_path / "model")
    prog = program_of(compiled.integer_module)
    for _ in range(3):
        x = rng.integers(-128, 128, prog.shapes[prog.input], dtype=np.int8)
        out = toolchain.run(target, exe, x.tobytes(), prog.nbytes(prog.output)).output
        assert out == run_reference(compiled.program, x).tobytes()


def _after_pointwise(op: Conv2D, consts, rng) -> tvm.IRModule:
    """An integer module: a 1x1 conv (4C -> C, its own zero points) feeding depthwise ``op``, so the
    depthwise step does not hold the schedule's most live bytes."""
    _, h, w, c = op.in_shape
    point, point_consts = conv_case(rng, h, w, 4 * c, c, 1, 1)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(point.in_shape, "int8"))
    with new_main(bb, x, {}) as result:
        value = x
        for n, (o, c) in enumerate([(point, point_consts), (op, consts)]):
            value = emit_op(bb, f"k{n}_conv2d", o, [value], c)
        result(value)
    return bb.get()


@pytest.mark.parametrize(("w", "k", "s"), [(16, 3, 1), (8, 3, 1), (21, 5, 2), (12, 7, 1), (6, 3, 1)])
def test_depthwise_ring_lanes_on_qemu(tmp_path, w: int, k: int, s: int) -> None:
    """Wide outputs run on an int16 ring (taps paired without widening), narrow ones on an int8 ring;
    both bit-exact on the Cortex-M7, with odd and even output widths. Where the depthwise step holds
    the most live bytes the ring is int8 whatever the width (memory first: ``aot.ring_width``)."""
    rng = np.random.default_rng(w * k)
    op, consts = conv_case(rng, 7, w, 5, 5, k, s, padding="same", depthwise=True)
    wide = op.out_shape[2] >= 8
    assert ring_lane_bytes(op, PLAIN) == (2 if wide else 1)
    rows, row_bytes = row_buffer_shape(op, PLAIN)
    assert rows == 2 * k and row_bytes % 4 == 0 and row_bytes >= (w + k - 1 + 4) * ring_lane_bytes(op, PLAIN)
    target = get_target("cortex-m7")
    for name, mod, at_peak, inplace in [("chain", _after_pointwise(op, consts, rng), False, True),
                                        ("alone", single_op_module(op, consts), True, bool(w % 2))]:
        compiled = compile_relax(mod, mcpu=target.mcpu, inplace=inplace)
        last = compiled.program.calls[-1]
        assert ring_lane_bytes(last.op, last.choice) == (2 if wide and not at_peak else 1), name
        assert last.choice.wide_ring != (wide and at_peak), name  # narrowed only where it set the peak
        assert compiled.plan.arena_bytes >= compiled.plan.lower_bound_bytes
        sources = compiled.write(tmp_path / name)
        exe = toolchain.link(target, toolchain.compile_objects(target, sources, [tmp_path / name],
                                                               tmp_path / name / "obj"), tmp_path / name / "m.elf")
        prog = program_of(compiled.integer_module)
        x = rng.integers(-128, 128, prog.shapes[prog.input], dtype=np.int8)
        out = toolchain.run(target, exe, x.tobytes(), prog.nbytes(prog.output)).output
        assert out == run_reference(compiled.program, x).tobytes(), name
