"""The passes compose as ordinary tvm.transform.Pass objects inside a user's own pipeline."""

from __future__ import annotations

import numpy as np
import tflite
import tvm
from tvm.relax.frontend.tflite import from_tflite

from mcunet_tvm.passes import InplaceDepthwise, LowerQDQToInteger
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.reference.tflm import run_tflm

from conftest import FIXTURES


def test_user_pipeline_then_compile() -> None:
    mod = from_tflite(tflite.Model.GetRootAsModel((FIXTURES / "tiny_cnn.tflite").read_bytes(), 0))
    integer = tvm.transform.Sequential([LowerQDQToInteger(), InplaceDepthwise()])(mod)
    assert all(
        b.value.op.name in ("relax.call_tir", "relax.reshape")
        for block in integer["main"].body.blocks for b in block.bindings if hasattr(b.value, "op")
    )
    compiled = compile_relax(integer, mcpu="cortex-m7")
    assert set(compiled.files) == {
        "mcunet_kernels.c", "mcunet_kernels.h", "mcunet_model.c", "mcunet_model.h", "mcunet_simd.h",
        "CMakeLists.txt", "README.md",
    }
    x = np.random.default_rng(4).integers(-128, 128, (1, 16, 16, 3), dtype=np.int8)
    expected = run_tflm(FIXTURES / "tiny_cnn.tflite", x).output.reshape(-1)
    assert np.array_equal(run_reference(compiled.program, x).reshape(-1), expected)


def test_use_simd_kernels_pass_in_a_user_pipeline(tmp_path) -> None:
    """UseSimdKernels swaps kernel bodies only: same graph, SIMD schedules, identical results on the host."""
    from mcunet_tvm import toolchain
    from mcunet_tvm.ir import program_of
    from mcunet_tvm.kernels.choice import choice_of
    from mcunet_tvm.passes import UseSimdKernels
    from mcunet_tvm.targets import get_target

    mod = from_tflite(tflite.Model.GetRootAsModel((FIXTURES / "tiny_cnn.tflite").read_bytes(), 0))
    integer = tvm.transform.Sequential([LowerQDQToInteger(), InplaceDepthwise(), UseSimdKernels()])(mod)
    prog = program_of(integer)
    assert any(choice_of(f).simd for f in prog.kernels.values())
    compiled = compile_relax(integer, mcpu=None, simd=False)  # already SIMD: the host runs portable C
    host = get_target("host")
    sources = compiled.write(tmp_path)
    exe = toolchain.link(host, toolchain.compile_objects(host, sources, [tmp_path], tmp_path / "obj"), tmp_path / "m")
    x = np.random.default_rng(2).integers(-128, 128, (1, 16, 16, 3), dtype=np.int8)
    out = toolchain.run(host, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output)).output
    assert out == run_tflm(FIXTURES / "tiny_cnn.tflite", x).output.tobytes()
