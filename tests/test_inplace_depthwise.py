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


def test_inplace_scratch_lives_in_the_arena() -> None:
    """The per-channel temporary is an arena tensor live during its step only, not a stack array."""
    compiled = compile_relax(load_model("demo-cnn").qdq_module, mcpu="cortex-m7")
    prog, plan = compiled.program, compiled.plan
    graph = prog.memory_graph()
    steps = [(i, s) for i, s in enumerate(graph.steps) if s.scratch]
    assert steps and len(steps) == sum(1 for c in prog.calls if isinstance(c.op, Conv2D) and c.op.inplace)
    for i, step in steps:
        call = prog.calls[i]
        _, oh, ow, _ = call.op.out_shape
        interval = plan.intervals[step.scratch]
        assert (interval.nbytes, interval.first, interval.last) == (oh * ow, i, i)
        assert f"mcunet_arena + {plan.offset_of(graph, step.scratch)}" in compiled.files["mcunet_model.c"]
    source = compiled.files["mcunet_kernels.c"]
    for call in prog.calls:
        if isinstance(call.op, Conv2D) and call.op.inplace:
            body = source[source.index(f"int32_t {call.kernel}(int8_t"):]
            body = body[: body.index("\n}\n")]
            assert "int8_t" not in body.split("{", 1)[1].split("for", 1)[0], "no local int8 arrays"
