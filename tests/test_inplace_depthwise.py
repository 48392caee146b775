"""In-place depthwise convolution: smaller arena, same bytes, storage really shared."""

from __future__ import annotations

import re

import numpy as np

from mcunet_tvm import toolchain
from mcunet_tvm.frontend import load_model
from mcunet_tvm.kernels import KernelChoice
from mcunet_tvm.kernels.depthwise.plan import row_buffer_shape, writes_over_input
from mcunet_tvm.ops import Conv2D
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

#: the in-place depthwise kernel choice
INPLACE = KernelChoice(inplace=True)


def _run(compiled, tmp_path, name, x):
    host = get_target("host")
    sources = compiled.write(tmp_path / name)
    objects = toolchain.compile_objects(host, sources, [tmp_path / name], tmp_path / name / "obj")
    exe = toolchain.link(host, objects, tmp_path / name / "model")
    return toolchain.run(host, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output)).output


def test_inplace_depthwise_saves_memory_and_is_bit_exact(tmp_path) -> None:
    qdq = load_model("demo-cnn").module
    plain = compile_relax(qdq, mcpu=None, inplace=False)
    inplace = compile_relax(qdq, mcpu=None, inplace=True)
    flagged = [c for c in inplace.program.calls if isinstance(c.op, Conv2D) and c.choice.inplace]
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
    twice; int16 elements for outputs 8 or more wide, int8 otherwise; whole words), no output
    plane (the output goes straight over the input); 3x3 stride 2 in place: one output channel.
    """
    compiled = compile_relax(load_model("demo-cnn").module, mcpu="cortex-m7")
    prog, plan = compiled.program, compiled.plan
    graph = prog.memory_graph()
    depthwise = [(i, c) for i, c in enumerate(prog.calls) if isinstance(c.op, Conv2D) and c.op.depthwise]
    assert any(c.choice.inplace for _, c in depthwise)
    assert any(c.op.strides == (1, 1) for _, c in depthwise)
    assert any(c.op.strides == (2, 2) and c.choice.inplace for _, c in depthwise)
    for i, call in depthwise:
        step = graph.steps[i]
        _, oh, ow, _ = call.op.out_shape
        _, _, w, _ = call.op.in_shape
        kh, _ = call.op.kernel
        _, pl, _, pr = call.op.padding
        if row_buffer_shape(call.op, call.choice):  # the row kernel (stride 1, 2 with 5x5+, more than 25 outputs)
            lane = 2 if ow >= 8 else 1
            expected = 2 * kh * -(-(w + pl + pr + 4) * lane // 4) * 4
        else:  # tap by tap: a channel temporary only where outputs may not go straight over the input
            expected = oh * ow if call.choice.inplace and not writes_over_input(call.op, call.choice) else 0
        if not expected:
            assert step.scratch is None
            continue
        interval = plan.intervals[step.scratch]
        assert (interval.nbytes, interval.first, interval.last) == (expected, i, i)
        assert f"mcunet_arena + {plan.offset_of(graph, step.scratch)}" in compiled.files["mcunet_model.c"]
    source = compiled.files["mcunet_kernels.c"]
    aliases = dict(re.findall(r"#define (mcunet_k\w+) (mcunet_k\w+)", compiled.files["mcunet_kernels.h"]))
    for call in prog.calls:
        if isinstance(call.op, Conv2D) and call.choice.inplace:
            symbol = f"mcunet_{call.kernel}"  # the C symbol: the library's name, then the kernel's
            kernel = aliases.get(symbol, symbol)
            body = source[source.index(f"int32_t {kernel}(int8_t"):]
            body = body[: body.index("\n}\n")]
            assert "int8_t" not in body.split("{", 1)[1].split("for", 1)[0], "no local int8 arrays"


def _tap_outputs(op: Conv2D, plane: np.ndarray, weights: np.ndarray, in_place: bool) -> np.ndarray:
    """One channel of ``op`` tap by tap in row-major order; ``in_place`` stores each output over input pixel p."""
    (h, w), (oh, ow) = op.in_shape[1:3], op.out_shape[1:3]
    buf = plane.astype(np.int64).reshape(-1).copy()
    out = np.zeros(oh * ow, np.int64)
    for i in range(oh):
        for j in range(ow):
            acc = 0
            for ki in range(op.kernel[0]):
                for kj in range(op.kernel[1]):
                    r = i * op.strides[0] - op.padding[0] + ki * op.dilation[0]
                    c = j * op.strides[1] - op.padding[1] + kj * op.dilation[1]
                    if 0 <= r < h and 0 <= c < w:
                        acc += int(buf[r * w + c]) * int(weights[ki, kj])
            out[i * ow + j] = acc
            if in_place:
                buf[i * ow + j] = 1000 + acc % 1000  # a value no int8 input pixel holds
    return out


def test_writes_over_input_only_where_no_later_output_reads_a_stored_pixel() -> None:
    """Random depthwise geometries: where ``writes_over_input`` allows it, computing in place in row-major
    order gives the out-of-place result; strided layers do allow it, a dilated stride-1 layer does not."""
    rng = np.random.default_rng(0)
    allowed = clobbered = 0
    for _ in range(300):
        k, s, d = int(rng.choice([1, 3, 5, 7])), int(rng.choice([1, 2, 3])), int(rng.choice([1, 1, 2]))
        h, w = int(rng.integers(k, 13)), int(rng.integers(k, 13))
        pad = tuple(int(v) for v in rng.integers(0, k, 4))
        span = d * (k - 1) + 1
        oh, ow = (h + pad[0] + pad[2] - span) // s + 1, (w + pad[1] + pad[3] - span) // s + 1
        if oh < 1 or ow < 1 or oh * ow > h * w:
            continue
        op = Conv2D(in_shape=(1, h, w, 1), out_shape=(1, oh, ow, 1), kernel=(k, k), strides=(s, s), padding=pad,
                    dilation=(d, d), depthwise=True)
        if row_buffer_shape(op, INPLACE):  # the row kernel: always straight over the input, through its ring
            continue
        plane = rng.integers(-128, 128, (h, w))
        weights = rng.integers(-127, 128, (k, k))
        if writes_over_input(op, INPLACE):
            allowed += 1
            assert np.array_equal(_tap_outputs(op, plane, weights, True), _tap_outputs(op, plane, weights, False))
            assert INPLACE.scratch_bytes(op) == 0
        else:
            assert INPLACE.scratch_bytes(op) == oh * ow
            clobbered += not np.array_equal(_tap_outputs(op, plane, weights, True),
                                            _tap_outputs(op, plane, weights, False))
    assert allowed > 50 and clobbered > 10  # (the simulation does see outputs read stored pixels)
    common = Conv2D(in_shape=(1, 72, 72, 8), out_shape=(1, 36, 36, 8), kernel=(3, 3), strides=(2, 2),
                    padding=(0, 0, 1, 1), depthwise=True)
    assert writes_over_input(common, INPLACE) and INPLACE.scratch_bytes(common) == 0
    dilated = Conv2D(in_shape=(1, 9, 9, 8), out_shape=(1, 9, 9, 8), kernel=(3, 3), dilation=(2, 2),
                     padding=(2, 2, 2, 2), depthwise=True)
    assert not writes_over_input(dilated, INPLACE) and INPLACE.scratch_bytes(dilated) == 81
