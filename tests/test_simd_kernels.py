"""SIMD micro-kernels: bit-exact with the plain kernels and the host reference, every schedule."""

from __future__ import annotations

import numpy as np
import pytest

from mcunet_tvm.kernels import KernelChoice, output_overlap
from mcunet_tvm.kernels.choice import choice_of
from mcunet_tvm.kernels.simd import (
    CONFIG_SPACE,
    SimdConfig,
    channel_records,
    config_space,
    doubled_input,
    flat_window,
    fused_steps,
    paired_weights,
    record_pairs,
    simd_supported,
    staged_input_bytes,
    staged_rows,
)
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from opcases import conv_case, dense_case, run_compiled, single_op_module, transpose_conv_case


def _random_cases(n: int, seed: int):
    """Convs with kernel 1-7, stride 1-2, same/valid padding, odd channel counts; dense layers."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        if i % 6 == 5:
            cases.append(dense_case(rng, int(rng.integers(1, 70)), int(rng.integers(1, 20))))
            continue
        k = int(rng.choice([1, 1, 3, 5, 7]))
        s = int(rng.choice([1, 2]))
        h, w = int(rng.integers(k, 14)), int(rng.integers(k, 14))
        cin, cout = int(rng.integers(1, 19)), int(rng.integers(1, 13))
        cases.append(conv_case(rng, h, w, cin, cout, k, s, padding=str(rng.choice(["same", "valid"]))))
    return cases


def _build_and_run(tmp_path, target_name: str, op, consts, simd: bool, cfg: SimdConfig | None, inputs,
                   choice: KernelChoice | None = None):
    target = get_target(target_name)
    compiled = compile_relax(single_op_module(op, consts, choice), mcpu=target.mcpu, simd=simd,
                             schedule=(lambda _: cfg) if cfg else None)
    if simd:
        assert all(choice_of(f).simd is not None for f in compiled.program.kernels.values())
    return compiled, run_compiled(compiled, target_name, tmp_path, inputs)


HOST_CASES = _random_cases(36, seed=11)


@pytest.mark.parametrize("index", range(len(HOST_CASES)))
def test_simd_kernel_matches_reference_on_host(tmp_path, index: int) -> None:
    """The portable C build of each SIMD primitive, every schedule in turn."""
    op, consts = HOST_CASES[index]
    # the general requantisation (left shifts, large accumulators) too
    choice = KernelChoice(fast_requant=False) if index % 3 == 0 else None
    assert simd_supported(op)
    space = config_space(op)
    cfg = space[index % len(space)]
    rng = np.random.default_rng(index)
    inputs = [rng.integers(-128, 128, op.in_shape, dtype=np.int8) for _ in range(2)]
    compiled, outs = _build_and_run(tmp_path, "host", op, consts, True, cfg, inputs, choice)
    for x, out in zip(inputs, outs, strict=True):
        assert out == run_reference(compiled.program, x).tobytes(), (op, cfg)


QEMU_CASES = _random_cases(8, seed=5)


@pytest.mark.parametrize("index", range(len(QEMU_CASES)))
def test_simd_kernel_equals_plain_kernel_on_qemu(tmp_path, index: int) -> None:
    """On the Cortex-M7 (DSP intrinsics): SIMD == plain TIR kernel == host reference."""
    op, consts = QEMU_CASES[index]
    choice = KernelChoice(fast_requant=False) if index % 2 else None
    space = config_space(op)
    cfg = space[(3 * index) % len(space)]
    x = np.random.default_rng(index).integers(-128, 128, op.in_shape, dtype=np.int8)
    compiled, (simd_out,) = _build_and_run(tmp_path / "simd", "cortex-m7", op, consts, True, cfg, [x], choice)
    _, (plain_out,) = _build_and_run(tmp_path / "plain", "cortex-m7", op, consts, False, None, [x], choice)
    assert simd_out == plain_out == run_reference(compiled.program, x).tobytes(), (op, cfg)


@pytest.mark.parametrize("args", [(5, 6, 8, 5, 3, 2, "SAME"), (4, 3, 13, 6, 2, 2, "VALID", False),
                                  (3, 4, 37, 3, 3, 2, "SAME"), (3, 5, 32, 4, 3, 1, "SAME")])
def test_transpose_conv_dual_mac_on_qemu(tmp_path, args) -> None:
    """On the Cortex-M4 (SXTAB16, SMLAD): TRANSPOSE_CONV's dual-MAC form (``UseSimdKernels``: unrolled and
    looped channel words, tails) == its plain kernel == host reference."""
    rng = np.random.default_rng(len(args) + args[2])
    op, consts = transpose_conv_case(rng, *args)
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    outs = {}
    for simd in (True, False):
        compiled = compile_relax(single_op_module(op, consts), mcpu=get_target("cortex-m4").mcpu, simd=simd)
        assert [c.choice.dual_mac for c in compiled.program.calls] == [simd]
        (outs[simd],) = run_compiled(compiled, "cortex-m4", tmp_path / str(simd), [x])
    assert outs[True] == outs[False] == run_reference(compiled.program, x).tobytes()


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_simd_kernels_on_other_dsp_cores(tmp_path, target: str) -> None:
    rng = np.random.default_rng(3)
    for n, (op, consts) in enumerate([conv_case(rng, 9, 7, 11, 6, 3, 2), dense_case(rng, 45, 9)]):
        x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
        compiled, (out,) = _build_and_run(tmp_path / str(n), target, op, consts, True, None, [x])
        assert out == run_reference(compiled.program, x).tobytes()


def test_pointwise_output_overlapping_its_input_with_pixel_tiles(tmp_path) -> None:
    """A shrinking pointwise conv may write over its input; wide pixel tiles must respect that."""
    rng = np.random.default_rng(8)
    op, consts = conv_case(rng, 9, 7, 24, 6, 1, 1)
    cfg = SimdConfig(pixels=4, channels=2)
    # the tile-aware rule: output pixels of a tile end before the tile's first input pixel
    assert output_overlap(op, cfg)[0][1] == -4 * 6
    assert output_overlap(op, SimdConfig(order="channels")) == ()
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    compiled, (out,) = _build_and_run(tmp_path, "cortex-m7", op, consts, True, cfg, [x])
    plan, graph = compiled.plan, compiled.program.memory_graph()
    src, dst = compiled.program.calls[0].inputs[0], compiled.program.calls[0].output
    in_off, out_off = plan.offset_of(graph, src), plan.offset_of(graph, dst)
    assert out_off < in_off + compiled.program.nbytes(src) and in_off < out_off + compiled.program.nbytes(dst), \
        "the planner did not overlap the output with its dying input"
    assert out == run_reference(compiled.program, x).tobytes()


def test_config_space_keeps_pointwise_overlap() -> None:
    rng = np.random.default_rng(0)
    pointwise, _ = conv_case(rng, 5, 5, 8, 16, 1, 1)
    conv, _ = conv_case(rng, 5, 5, 8, 16, 3, 1)
    assert all(c.order == "pixels" for c in config_space(pointwise))
    assert any(c.order == "channels" for c in config_space(conv))
    assert set(config_space(conv)) <= set(CONFIG_SPACE)


def _fast(case):
    """The case with the fast requantisation forced on (its bias is small enough for any input)."""
    op, consts = case
    return op, [consts[0], np.clip(consts[1], -1000, 1000).astype(np.int32), consts[2], -np.abs(consts[3]) - 1]


FAST = KernelChoice(fast_requant=True)


@pytest.mark.parametrize("shape", [(6, 5, 40, 45, 1, 1), (11, 9, 3, 37, 3, 2), (7, 6, 10, 101, 3, 1)])
def test_doubled_staging_and_fused_micro_steps_on_qemu(tmp_path, shape) -> None:
    """Staged kernels that stage 2 (x - zp) (doubled accumulators), with channel-pair weights, asm micro-steps
    over a looped row (40 channels), a padded strided window with tails (3 channels), looped rows of a 3x3
    window (10 channels), odd channel counts."""
    h, w, cin, cout, k, s = shape
    rng = np.random.default_rng(cin)
    op, consts = _fast(conv_case(rng, h, w, cin, cout, k, s))
    cfg = SimdConfig(pixels=4, channels=2)
    assert doubled_input(op, cfg, True) and paired_weights(op, cfg)
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    compiled, (simd_out,) = _build_and_run(tmp_path / "simd", "cortex-m7", op, consts, True, cfg, [x], FAST)
    _, (plain_out,) = _build_and_run(tmp_path / "plain", "cortex-m7", op, consts, False, None, [x], FAST)
    assert simd_out == plain_out == run_reference(compiled.program, x).tobytes()
    # tiles of more than two staged words run the asm micro-steps (two pixels per LDRD)
    assert ("mcunet_smlad4d" in (tmp_path / "simd" / "mcunet_kernels.c").read_text()) == fused_steps(*staged_rows(op))


@pytest.mark.parametrize("pixels", [1, 2])
def test_grouped_records_of_four_channel_tiles_on_qemu(tmp_path, pixels: int) -> None:
    """Tiles of four channels take records of two channel pairs (their weight words side by side);
    dense layers (one pixel) and convolutions, a partial last record, bit-exact on the M7."""
    rng = np.random.default_rng(60 + pixels)
    cases = [_fast(dense_case(rng, 40, 10)), _fast(conv_case(rng, 6, 7, 12, 14, 1, 1)),
             _fast(conv_case(rng, 7, 6, 5, 10, 3, 2))]
    cfg = SimdConfig(pixels=pixels, channels=4)
    for n, (op, consts) in enumerate(cases):
        assert channel_records(op, cfg, True) and record_pairs(cfg) == 2
        x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
        compiled, (out,) = _build_and_run(tmp_path / str(n), "cortex-m7", op, consts, True, cfg, [x], FAST)
        assert out == run_reference(compiled.program, x).tobytes(), op


@pytest.mark.parametrize("shape", [(11, 9, 3, 16, 3, 2, "same"), (9, 8, 2, 6, 3, 1, "same"),
                                   (10, 9, 1, 5, 5, 2, "same"), (8, 7, 3, 7, 3, 1, "valid")])
def test_flat_windows_on_qemu(tmp_path, shape) -> None:
    """Few input channels: the whole window staged as one segment (kernel rows spliced word by word
    inside the image, byte by byte across the border), every schedule kind, bit-exact on the M7."""
    h, w, cin, cout, k, s, padding = shape
    rng = np.random.default_rng(cin * k + s)
    op, consts = conv_case(rng, h, w, cin, cout, k, s, padding=padding)
    assert flat_window(op) and staged_rows(op) == (1, -(-(k * k * cin) // 4))
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    _, (plain_out,) = _build_and_run(tmp_path / "plain", "cortex-m7", op, consts, False, None, [x])
    for n, cfg in enumerate([SimdConfig(pixels=4, channels=2), SimdConfig(pixels=2, channels=1)]):
        assert staged_input_bytes(op, cfg)
        compiled, (out,) = _build_and_run(tmp_path / str(n), "cortex-m7", op, consts, True, cfg, [x])
        assert out == plain_out == run_reference(compiled.program, x).tobytes(), cfg


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_depthwise_with_doubled_weights_on_qemu(tmp_path, k: int, s: int) -> None:
    """Fast-requantised depthwise kernels (row and tap forms) multiply doubled weights: still bit-exact."""
    rng = np.random.default_rng(10 * k + s)
    op, consts = _fast(conv_case(rng, 11, 9, 7, 7, k, s, depthwise=True))
    x = rng.integers(-128, 128, op.in_shape, dtype=np.int8)
    compiled, (out,) = _build_and_run(tmp_path, "cortex-m7", op, consts, False, None, [x], FAST)
    assert out == run_reference(compiled.program, x).tobytes()
