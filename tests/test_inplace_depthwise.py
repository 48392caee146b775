"""In-place depthwise convolution: smaller arena, same bytes, storage really shared."""

from __future__ import annotations

import re

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
    """Depthwise working memory is an arena tensor live during its step only, not a stack array.

    Stride 1 (and 2 with 5x5+ kernels): the ring of 2 x KH padded input rows (each row stored
    twice), no output plane (the output goes straight over the input); 3x3 stride 2 in place:
    one output channel.
    """
    compiled = compile_relax(load_model("demo-cnn").qdq_module, mcpu="cortex-m7")
    prog, plan = compiled.program, compiled.plan
    graph = prog.memory_graph()
    depthwise = [(i, c) for i, c in enumerate(prog.calls) if isinstance(c.op, Conv2D) and c.op.depthwise]
    assert any(c.op.inplace for _, c in depthwise)
    assert any(c.op.strides == (1, 1) for _, c in depthwise)
    assert any(c.op.strides == (2, 2) and c.op.inplace for _, c in depthwise)
    for i, call in depthwise:
        step = graph.steps[i]
        _, oh, ow, _ = call.op.out_shape
        _, _, w, _ = call.op.in_shape
        kh, _ = call.op.kernel
        _, pl, _, pr = call.op.padding
        if call.op.strides == (1, 1) or (call.op.strides == (2, 2) and kh >= 5):  # the row kernel
            expected = 2 * kh * (w + pl + pr + 4)
        else:
            expected = oh * ow if call.op.inplace else 0
        if not expected:
            assert step.scratch is None
            continue
        interval = plan.intervals[step.scratch]
        assert (interval.nbytes, interval.first, interval.last) == (expected, i, i)
        assert f"mcunet_arena + {plan.offset_of(graph, step.scratch)}" in compiled.files["mcunet_model.c"]
    source = compiled.files["mcunet_kernels.c"]
    aliases = dict(re.findall(r"#define (k\w+) (k\w+)", compiled.files["mcunet_kernels.h"]))
    for call in prog.calls:
        if isinstance(call.op, Conv2D) and call.op.inplace:
            kernel = aliases.get(call.kernel, call.kernel)
            body = source[source.index(f"int32_t {kernel}(int8_t"):]
            body = body[: body.index("\n}\n")]
            assert "int8_t" not in body.split("{", 1)[1].split("for", 1)[0], "no local int8 arrays"
