"""Shape-generic kernels (``--optimize size``): bit-exact, shared between layers, weights packed right."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tvm
from tvm import relax

from mcunet_tvm import toolchain
from mcunet_tvm.ir import new_main
from mcunet_tvm.kernels import KernelChoice, kernel_consts
from mcunet_tvm.kernels.choice import choice_of, signature_of
from mcunet_tvm.kernels.depthwise.plan import row_buffer_shape, unrolls_small_image
from mcunet_tvm.kernels.requant import pack_fast_requant
from mcunet_tvm.kernels.simd import (
    SimdConfig,
    channel_records,
    doubled_input,
    pack_records,
    pair_weights,
    paired_weights,
    shape_generic,
)
from mcunet_tvm.passes import UseSharedKernels, UseSimdKernels
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from opcases import conv_case, emit_op, lowered_choice, run_compiled, single_op_module


def _sxtb16(word: np.ndarray, ror8: bool) -> np.ndarray:
    """The two int16 lanes SXTB16 (ROR 8) takes from a little-endian word of four int8 bytes."""
    return word[[1, 3]] if ror8 else word[[0, 2]]


@pytest.mark.parametrize("shape", [(5, 1, 1, 24), (4, 3, 3, 3), (3, 1, 1, 10)])
def test_pair_weights_give_each_channel_its_lanes_for_each_staged_word(shape) -> None:
    """Word A of (pair, row, word) widens to the lanes 0/2 weights of both channels, word B to lanes 1/3."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, shape, dtype=np.int8)
    oc, kh, seg = shape[0], shape[1], shape[2] * shape[3]
    words = -(-seg // 4)
    packed = pair_weights(w)
    assert packed.size == -(-oc // 2) * 2 * kh * words * 4  # odd channel counts pair with zeros
    rows = np.zeros((oc + oc % 2, kh, words * 4), np.int8)
    rows[:oc, :, :seg] = w.reshape(oc, kh, seg)
    for o in range(oc + oc % 2):
        for ki in range(kh):
            for q in range(words):
                for h in range(2):
                    at = ((((o // 2) * kh + ki) * words + q) * 2 + h) * 4
                    lanes = _sxtb16(packed[at : at + 4], ror8=bool(o % 2))
                    assert np.array_equal(lanes, rows[o, ki, q * 4 + h : q * 4 + 4 : 2]), (o, ki, q, h)


@pytest.mark.parametrize(("oc", "doubled", "group"), [(6, False, 1), (5, True, 1), (7, False, 2), (8, True, 2)])
def test_channel_records_hold_weights_then_constants(oc: int, doubled: bool, group: int) -> None:
    """Record r: the channel-pair weight words of its ``group`` pairs (side by side for each word
    position), then per channel its bias (doubled or not), multiplier and (exponent, rounding);
    missing channels (an odd count, a partial last group) are zeros."""
    rng = np.random.default_rng(oc)
    w = rng.integers(-127, 128, (oc, 1, 1, 12), dtype=np.int8)
    bias = rng.integers(-5000, 5000, oc).astype(np.int32)
    mult = rng.integers(1 << 30, 1 << 31, oc).astype(np.int32)
    rq = pack_fast_requant(-rng.integers(1, 10, oc), -3)
    n_records = -(-oc // (2 * group))
    records = pack_records(w, bias, mult, rq, doubled, group).reshape(n_records, -1)
    pair_words = pair_weights(w).view("<i4").reshape((oc + 1) // 2, -1)
    per_pair = pair_words.shape[1]
    assert records.shape[1] == group * (per_pair + 8)
    for pair in range(n_records * group):
        r, j = divmod(pair, group)
        got = records[r, : group * per_pair].reshape(per_pair, group)[:, j]
        want = pair_words[pair] if pair < pair_words.shape[0] else np.zeros(per_pair, np.int32)
        assert np.array_equal(got, want), pair
    consts = records[:, group * per_pair:]
    for o in range(n_records * 2 * group):
        r, m = divmod(o, 2 * group)
        real = o < oc
        assert consts[r, m] == (bias[o] * (2 if doubled else 1) if real else 0)
        assert consts[r, 2 * group + m] == (mult[o] if real else 0)
        got = tuple(consts[r, 4 * group + 2 * m: 4 * group + 2 * m + 2])
        assert got == (tuple(rq[2 * o: 2 * o + 2]) if real else (0, 0))


def test_staged_kernels_of_fast_layers_take_channel_records() -> None:
    """One array for staged channel-pair kernels of fast layers; the separate arrays elsewhere."""
    rng = np.random.default_rng(3)
    op, consts = conv_case(rng, 6, 6, 16, 24, 1, 1)
    staged = SimdConfig(pixels=4, channels=2)
    fast = lowered_choice(op, consts).fast_requant
    assert fast and channel_records(op, staged, fast)
    named = kernel_consts(op, consts, KernelChoice(simd=staged, fast_requant=fast))
    assert [n for n, _ in named] == ["weight"] and named[0][1].dtype == np.int32
    scale = 2 if doubled_input(op, staged, fast) else 1  # the bias as the kernel starts from it
    records = named[0][1].reshape(12, -1)  # 12 pairs: 8 weight words (16 channels), then 8 constants
    assert records.shape[1] == 16 and list(records[:, 8]) == list(consts[1][0::2] * scale)
    assert not channel_records(op, dataclasses.replace(staged, shared=True), fast)
    assert not channel_records(op, staged, False)
    assert not channel_records(op, SimdConfig(pixels=4, channels=1), fast)
    channels = KernelChoice(simd=SimdConfig(order="channels"), fast_requant=fast)
    assert [n for n, _ in kernel_consts(op, consts, channels)] == [
        "weight", "bias", "multiplier", "rq"]  # (the shifts packed for the fast requantisation)


def _scalars(func) -> list[int]:
    """The scalar layer values a shape-generic kernel takes (its signature's ``scalar`` roles)."""
    return [v for role, v in signature_of(func).roles if role == "scalar"]


def _chain(shapes: list[tuple[int, int]], hw: tuple[int, int], seed: int) -> tuple[tvm.IRModule, tuple]:
    """An integer module of 1x1 convolutions ``cin -> cout`` (each with its own zero points)."""
    rng = np.random.default_rng(seed)
    ops = [conv_case(rng, *hw, cin, cout, 1, 1) for cin, cout in shapes]
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(ops[0][0].in_shape, "int8"))
    with new_main(bb, x, {}) as result:
        value = x
        for n, (op, consts) in enumerate(ops):
            value = emit_op(bb, f"k{n}_conv2d", op, [value], consts)
        result(value)
    return bb.get(), ops[0][0].in_shape


#: reductions kept unrolled (3, 7, 8, 13, 16 channels) or of an odd word count (20, 36), run-time
#: ones (24, 40, 48); odd output channel counts; pixel counts not a multiple of the tile.
#: The last item: whether some layers must share a kernel (equal code but for run-time values).
CHAINS = [
    ([(3, 8), (8, 24), (24, 40), (40, 48), (48, 24), (24, 64)], (3, 5), True),
    ([(16, 20), (20, 36), (36, 13), (13, 48), (48, 7), (7, 24)], (1, 7), False),
    ([(24, 48), (48, 24), (24, 48), (48, 24), (24, 9)], (2, 3), True),
]


def _compile_and_run(tmp_path, target_name: str, mod, in_shape, optimize: str, seed: int):
    compiled = compile_relax(mod, mcpu=get_target(target_name).mcpu, simd=True, optimize=optimize)
    x = np.random.default_rng(seed).integers(-128, 128, in_shape, dtype=np.int8)
    (out,) = run_compiled(compiled, target_name, tmp_path, [x])
    assert out == run_reference(compiled.program, x).tobytes(), optimize
    return compiled, out


@pytest.mark.parametrize("index", range(len(CHAINS)))
def test_shared_pointwise_kernels_on_host(tmp_path, index: int) -> None:
    """Portable C: every layer of the chain bit-exact; layers differing only in sizes share code."""
    shapes, hw, shares = CHAINS[index]
    mod, in_shape = _chain(shapes, hw, seed=index)
    compiled, _ = _compile_and_run(tmp_path, "host", mod, in_shape, "size", index)
    kernels = compiled.program.kernels
    assert all(choice_of(f).simd.shared and _scalars(f) for f in kernels.values())
    assert bool(compiled.kernel_aliases) == shares


@pytest.mark.parametrize("index", range(len(CHAINS)))
def test_shared_kernels_equal_specialised_ones_on_qemu(tmp_path, index: int) -> None:
    """Cortex-M7 (DSP intrinsics): size-optimised == speed-optimised == host reference."""
    shapes, hw, _ = CHAINS[index]
    mod, in_shape = _chain(shapes, hw, seed=10 + index)
    _, small = _compile_and_run(tmp_path / "size", "cortex-m7", mod, in_shape, "size", index)
    _, fast = _compile_and_run(tmp_path / "speed", "cortex-m7", mod, in_shape, "speed", index)
    assert small == fast


def test_staged_kernels_take_channel_pair_weights() -> None:
    rng = np.random.default_rng(3)
    short, _ = conv_case(rng, 4, 4, 16, 6, 1, 1)
    long, long_consts = conv_case(rng, 4, 4, 48, 6, 1, 1)
    shared = SimdConfig(pixels=4, channels=2, shared=True)
    assert shape_generic(short, shared) and shape_generic(long, shared)
    assert not shape_generic(long, SimdConfig(pixels=4, channels=2))  # the speed build
    assert paired_weights(long, shared) and paired_weights(long, SimdConfig(pixels=4, channels=2))
    packed = dict(kernel_consts(long, long_consts, KernelChoice(simd=shared)))["weight"]
    assert np.array_equal(packed, pair_weights(long_consts[0]))
    # unstaged (too few channel tiles reuse a widened window) or odd tiles keep OHWI weights
    assert not paired_weights(long, SimdConfig(pixels=4, channels=4))
    assert not paired_weights(long, SimdConfig(pixels=4, channels=1))
    unstaged = KernelChoice(simd=SimdConfig(pixels=4, channels=4))
    assert dict(kernel_consts(long, long_consts, unstaged))["weight"] is long_consts[0]
    # a 3x3 convolution and a windowed (patch) pointwise layer keep their specialised kernels
    conv, _ = conv_case(rng, 6, 6, 16, 8, 3, 1)
    assert not shape_generic(conv, shared)
    assert not shape_generic(dataclasses.replace(short, windows=((0, 0, 4, 4),)), shared)


def test_use_shared_kernels_pass_in_a_user_pipeline() -> None:
    """The pass swaps kernel bodies only, and only where a shape-generic form exists."""
    mod, _ = _chain([(8, 24), (24, 48)], (3, 3), seed=5)
    simd = UseSimdKernels()(mod)
    shared = UseSharedKernels()(simd)
    for gvar, func in shared.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc):
            assert choice_of(func).simd.shared and not choice_of(simd[gvar]).simd.shared
    assert UseSharedKernels()(mod).same_as(mod)  # plain kernels have no shared form: untouched


def test_optimize_size_end_to_end(build_cli) -> None:
    """``build --optimize size`` on a whole network: bit-exact on QEMU, fewer kernels, less code."""
    args = ("--target", "cortex-m7", "--model", "demo-cnn", "--run", "--quiet")
    code_speed, speed, _ = build_cli(*args, out="speed")
    code_size, size, _ = build_cli(*args, "--optimize", "size", out="size")
    assert code_speed == code_size == 0
    for report in (speed, size):
        assert report["qemu"]["bit_exact"] and report["qemu"]["bit_exact_tflm"]
        assert report["arena_bytes"] >= report["arena_lower_bound_bytes"]
    assert size["kernels"]["kernel_functions"] < speed["kernels"]["kernel_functions"]
    assert size["code_bytes"] < speed["code_bytes"]
    assert size["arena_bytes"] == speed["arena_bytes"]  # same schedule, same plan


@pytest.mark.parametrize("index", range(4))
def test_compact_depthwise_kernels_on_host(tmp_path, index: int) -> None:
    """``--optimize size`` runs 3x3 depthwise row kernels one output pair per iteration, small images
    too (not the speed build's unrolled tap kernel: less code), the ring planned for them: bit-exact."""
    rng = np.random.default_rng(40 + index)
    h, w = int(rng.integers(3, 12)), int(rng.integers(3, 12))
    op, consts = conv_case(rng, h, w, 5, 5, 3, 1, padding=["same", "valid"][index % 2], depthwise=True)
    mod = single_op_module(op, consts)
    target = get_target("host")
    compiled = compile_relax(mod, mcpu=target.mcpu, inplace=bool(index // 2), optimize="size")
    (func,) = compiled.program.kernels.values()
    assert choice_of(func).compact
    call = compiled.program.calls[0]
    kh, row = row_buffer_shape(call.op, call.choice)
    assert call.choice.scratch_bytes(call.op) == kh * row
    small = unrolls_small_image(op, KernelChoice())
    assert call.choice.unroll_small_image != small  # (a small image's op now asks for the ring)
    sources = compiled.write(tmp_path)
    objects = toolchain.compile_objects(target, sources, [tmp_path], tmp_path / "obj")
    exe = toolchain.link(target, objects, tmp_path / "model.elf")
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    out = toolchain.run(target, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output)).output
    assert out == run_reference(compiled.program, x).tobytes()


def test_unknown_optimisation_goal_is_a_clear_error() -> None:
    from mcunet_tvm.errors import UnsupportedModelError

    mod, _ = _chain([(8, 16)], (2, 2), seed=1)
    with pytest.raises(UnsupportedModelError) as err:
        compile_relax(mod, mcpu="cortex-m7", optimize="tiny")
    assert "tiny" in err.value.format() and "speed, size" in err.value.format()
