"""In-place depthwise convolution: smaller arena, same bytes, storage really shared."""

from __future__ import annotations

import numpy as np

from mcunet_tvm import toolchain
from mcunet_tvm.frontend import load_model
from mcunet_tvm.ops import Conv2D
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target


def _run(compiled, tmp_path, name, x):
    host = get_target("host")
    sources = compiled.write(tmp_path / name)
    objects = toolchain.compile_objects(host, sources, [tmp_path / name], tmp_path / name / "obj")
    exe = toolchain.link(host, objects, tmp_path / name / "model")
    return toolchain.run(host, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output)).output


def test_inplace_depthwise_saves_memory_and_is_bit_exact(tmp_path) -> None:
    qdq = load_model("demo-cnn").qdq_module
    plain = compile_relax(qdq, mcpu=None, inplace=False)
    inplace = compile_relax(qdq, mcpu=None, inplace=True)
    flagged = [c for c in inplace.program.calls if isinstance(c.op, Conv2D) and c.op.inplace]
    assert flagged, "no depthwise conv was made in-place"
    graph = inplace.program.memory_graph()
    for call in flagged:  # the output really lives in the input's storage
        assert graph.storage_of(call.output) == graph.storage_of(call.inputs[0])
    assert inplace.plan.arena_bytes < plain.plan.arena_bytes
    assert inplace.plan.arena_bytes >= inplace.plan.lower_bound_bytes
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, inplace.program.shapes[inplace.program.input], dtype=np.int8)
    expected = run_reference(plain.program, x).tobytes()
    assert _run(plain, tmp_path, "plain", x) == expected
    assert _run(inplace, tmp_path, "inplace", x) == expected
