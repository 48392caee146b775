"""Helium (MVE) kernels on the Cortex-M55: bit-exact with the host reference and the DSP kernels."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

from mcunet_tvm.kernels import KernelChoice, kernel_consts
from mcunet_tvm.kernels.choice import choice_of
from mcunet_tvm.kernels.helium import fold_input_zero_point, helium_supported, helium_tile
from mcunet_tvm.kernels.simd import SimdConfig, helium_config
from mcunet_tvm.passes import LowerQDQToInteger, UseSimdKernels
from mcunet_tvm.pipeline import compile_relax, has_mve
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from opcases import conv_case, dense_case, run_compiled, single_op_module


def _cases(n: int, seed: int):
    """1x1 convolutions with input channels below, at and above 16 (full vectors, tails), odd
    output channel and pixel counts; dense layers."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        if i % 4 == 3:
            cases.append(dense_case(rng, int(rng.integers(1, 90)), int(rng.integers(1, 14))))
            continue
        cin = int(rng.choice([3, 8, 15, 16, 17, 32, 40, 57]))
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        cases.append(conv_case(rng, h, w, cin, int(rng.integers(1, 12)), 1, 1))
    return cases


def _run(tmp_path, target_name: str, mod, in_shape, seed: int, **kwargs):
    compiled = compile_relax(mod, mcpu=get_target(target_name).mcpu, **kwargs)
    x = np.random.default_rng(seed).integers(-128, 128, in_shape, dtype=np.int8)
    (out,) = run_compiled(compiled, target_name, tmp_path, [x])
    assert out == run_reference(compiled.program, x).tobytes()
    return compiled, out


QEMU_CASES = _cases(12, seed=55)


@pytest.mark.parametrize("index", range(len(QEMU_CASES)))
def test_helium_kernel_on_the_cortex_m55(tmp_path, index: int) -> None:
    """VMLADAVA kernels (full vectors and the predicated tail) == host reference == DSP kernel."""
    op, consts = QEMU_CASES[index]
    choice = KernelChoice(fast_requant=False) if index % 3 == 1 else None
    assert helium_supported(op)
    mod = single_op_module(op, consts, choice)
    compiled, out = _run(tmp_path / "mve", "cortex-m55", mod, op.in_shape, index)
    schedules = [choice_of(f).simd for f in compiled.program.kernels.values()]
    assert all(s is not None and s.helium for s in schedules)
    _, dsp_out = _run(tmp_path / "dsp", "cortex-m7", mod, op.in_shape, index)
    assert out == dsp_out


def test_helium_portable_c_on_the_host(tmp_path) -> None:
    """The same kernels through mcunet_simd.h's portable primitives (a user pipeline with the pass)."""
    for n, (op, consts) in enumerate(_cases(8, seed=7)):
        integer = UseSimdKernels(mve=True)(single_op_module(op, consts))
        _run(tmp_path / str(n), "host", integer, op.in_shape, n, simd=False)


def test_helium_choice_and_constants() -> None:
    assert has_mve("cortex-m55") and not has_mve("cortex-m7") and not has_mve(None)
    rng = np.random.default_rng(1)
    op, consts = conv_case(rng, 4, 4, 24, 10, 1, 1)
    conv3, _ = conv_case(rng, 6, 6, 8, 8, 3, 1)
    assert helium_config(conv3) is None  # spatial convolutions keep the DSP kernel
    cfg = helium_config(op, SimdConfig(pixels=4, channels=2))
    assert cfg.helium and cfg.pixels * cfg.channels <= 6  # VMLADAVA writes even registers only
    assert all(p * c <= 6 for p, c in (helium_tile(op, 4, 4), helium_tile(op, 8, 1), helium_tile(op, 1, 8)))
    bias = dict(kernel_consts(op, consts, KernelChoice(simd=cfg)))["bias"]
    expected = consts[1].astype(np.int64) - op.in_zp * consts[0].reshape(10, -1).astype(np.int64).sum(1)
    assert np.array_equal(bias, expected) and np.array_equal(bias, fold_input_zero_point(consts[1], consts[0],
                                                                                       op.in_zp))
    plain = SimdConfig(order="channels")  # an unstaged DSP kernel takes TFLite's bias as it is
    assert dict(kernel_consts(op, consts, KernelChoice(simd=plain)))["bias"] is consts[1]


def test_lower_then_helium_in_a_user_pipeline() -> None:
    """LowerQDQToInteger then UseSimdKernels(mve=True) on a QDQ module gives Helium kernels for 1x1 layers."""
    import tflite
    from tvm.relax.frontend.tflite import from_tflite

    from conftest import FIXTURES

    mod = from_tflite(tflite.Model.GetRootAsModel((FIXTURES / "tiny_cnn.tflite").read_bytes(), 0))
    integer = UseSimdKernels(mve=True)(LowerQDQToInteger()(mod))
    kinds = {bool(s.helium) for f in integer.functions.values()
             if isinstance(f, tvm.tirx.PrimFunc) and (s := choice_of(f).simd) is not None}
    assert True in kinds
