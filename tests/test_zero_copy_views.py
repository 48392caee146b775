"""ZeroCopyViews (passes/zero_copy_views.py): contiguous concatenations and slices as views, no copy kernel.

The decisions on converter-written fixtures (scripts/make_tflite_op_fixtures.py): a SPLIT along H of the model
input and a CONCATENATION along H are views, a CONCATENATION along channels keeps its copy; the C passes
``arena + offset`` pointers and calls no copy kernel for them; on QEMU the outputs are bit-exact with the host
reference and TF Lite Micro (with guard zones, and with model outputs that are views of one storage).
"""

from __future__ import annotations

import numpy as np
import pytest

from mcunet_tvm.frontend.tflite.importer import import_tflite
from mcunet_tvm.ir import program_of
from mcunet_tvm.ops import Concat, Slice
from mcunet_tvm.passes.zero_copy_views import view_steps, with_views, zero_copy_views
from mcunet_tvm.pipeline import PipelineOptions, compile_relax, optimise
from mcunet_tvm.planner import ALIGN, plan_memory

from conftest import FIXTURES

OPS = FIXTURES / "ops"


def _program(name: str, views: bool = True, **options):
    mod, _ = import_tflite(OPS / f"{name}.tflite")
    return program_of(optimise(mod, PipelineOptions(views=views, **options))[0])


def test_contiguous_split_and_concat_become_views_channel_concat_keeps_its_copy() -> None:
    prog = _program("split_concat_h")
    kinds = [(type(c.op).__name__, c.choice.view, bool(c.kernel)) for c in prog.calls
             if isinstance(c.op, (Concat, Slice))]
    assert kinds == [("Slice", True, False), ("Slice", True, False), ("Concat", True, False),
                     ("Concat", False, True)]
    graph = prog.memory_graph()
    plan = plan_memory(graph)
    place = graph.placement()
    slices = [c for c in prog.calls if isinstance(c.op, Slice)]
    concat_h, concat_c = (c for c in prog.calls if isinstance(c.op, Concat))
    for c in slices:  # consumers read the model input at the slice's offset
        assert place[c.output] == (prog.input, c.op.block_offset())
        assert plan.offset_of(graph, c.output) == plan.offset_of(graph, prog.input) + c.op.block_offset()
    for x, offset in zip(concat_h.inputs, concat_h.op.block_offsets(), strict=True):  # producers write into it
        assert place[x] == (concat_h.output, offset) and offset % ALIGN == 0
    assert all(place[x] == (x, 0) for x in concat_c.inputs if x != concat_h.output)
    # the depthwise convolution on the first slice no longer runs in place: the input is read by other views
    assert not any(c.choice.inplace for c in prog.calls)
    assert any(c.choice.inplace for c in _program("split_concat_h", views=False).calls)


def test_views_emit_no_copy_and_arena_pointers() -> None:
    mod, _ = import_tflite(OPS / "split_concat_h.tflite")
    with_v = compile_relax(mod, "cortex-m7")
    without = compile_relax(mod, "cortex-m7", views=False)
    model = with_v.files["mcunet_model.c"]
    assert model.count("a view, no copy") == 3
    assert model.count("_slice(") == 0 and model.count("_concat(") == 1  # only the channel concatenation
    assert without.files["mcunet_model.c"].count("_slice(") == 2
    assert with_v.plan.arena_bytes <= without.plan.arena_bytes
    graph = with_v.program.memory_graph()
    for c in with_v.program.calls:
        if c.kernel:  # every kernel argument is an arena pointer at the tensor's (view's) offset
            assert f"(mcunet_arena + {with_v.plan.offset_of(graph, c.output)})" in model


def test_only_aligned_blocks_become_views() -> None:
    """UNPACK of a (3, 4, 5) tensor: blocks of 20 B at offsets 0, 20, 40; only the one at 0 is aligned."""
    prog = program_of(import_tflite(OPS / "unpack_axis0.tflite")[0])
    (view,) = view_steps(prog)
    assert prog.calls[view].op.block_offset() == 0
    # along channels (split_axis3: begin 0, 2, 4 of 6 per pixel) nothing is contiguous
    assert not view_steps(program_of(import_tflite(OPS / "split_axis3.tflite")[0]))


def test_view_decision_is_the_emitted_modules() -> None:
    """``with_views`` (the patch search's data form) marks exactly what the pass emits."""
    mod, _ = import_tflite(OPS / "split_concat_h.tflite")
    emitted = program_of(zero_copy_views(mod))
    as_data = with_views(program_of(mod))
    assert [(c.op, c.inputs, c.output, c.choice.view) for c in emitted.calls] == \
        [(c.op, c.inputs, c.output, c.choice.view) for c in as_data.calls]
    assert plan_memory(emitted.memory_graph()).arena_bytes == plan_memory(as_data.memory_graph()).arena_bytes


def test_block_offsets() -> None:
    assert Slice((1, 8, 4, 8), (1, 4, 4, 8), begin=(0, 4, 0, 0), strides=(1, 1, 1, 1)).block_offset() == 128
    assert Slice((1, 8, 4, 8), (1, 1, 2, 8), begin=(0, 3, 1, 0), strides=(1, 1, 1, 1)).block_offset() == 104
    assert Slice((1, 8, 4, 8), (1, 4, 2, 8), begin=(0, 0, 0, 0), strides=(1, 1, 1, 1)).block_offset() is None
    assert Slice((1, 8, 4, 8), (1, 4, 4, 8), begin=(0, 0, 0, 0), strides=(1, 2, 1, 1)).block_offset() is None
    assert Slice((4, 6), (1, 6), begin=(2, 0), strides=(1, 1), dtype="int16").block_offset() == 24
    assert Concat((1, 2, 4, 8), (1, 5, 4, 8), axis=1, in_shapes=((1, 2, 4, 8), (1, 3, 4, 8))).block_offsets() == \
        (0, 64)
    assert Concat((1, 2, 4, 8), (1, 2, 4, 16), axis=3, in_shapes=((1, 2, 4, 8),) * 2).block_offsets() is None
    assert Concat((1, 1, 1, 8), (1, 1, 1, 16), axis=3, in_shapes=((1, 1, 1, 8),) * 2).block_offsets() == (0, 8)


@pytest.mark.parametrize("name,target,extra", [("split_concat_h", "cortex-m7", ()),
                                               ("split_h_outputs", "cortex-m4", ("--guards",))])
def test_views_on_qemu(build_cli, name: str, target: str, extra: tuple[str, ...]) -> None:
    """Bit-exact with the host reference and TF Lite Micro on the device: producers writing into their block,
    consumers reading at the slice's offset, model outputs read from their views (``split_h_outputs``, with
    guard zones checked after every step)."""
    code, report, out = build_cli("--target", target, "--model", str(OPS / f"{name}.tflite"), "--run", *extra)
    assert code == 0
    assert report["qemu"]["bit_exact"] is True and report["qemu"]["bit_exact_tflm"] is True
    model = (out / "mcunet_model.c").read_text()
    assert "a view, no copy" in model and "_slice(" not in model
    shapes = report["output_shapes"]
    files = ["output.bin"] if len(shapes) == 1 else [f"output{k}.bin" for k in range(len(shapes))]
    assert [(out / f).stat().st_size for f in files] == [int(np.prod(s)) for s in shapes]


def test_depthwise_writing_into_a_concatenation_block_is_not_in_place() -> None:
    """y -> depthwise -> a; x -> MUL -> b; concat(a, b) along H. ``y`` dies at the depthwise convolution, so
    without the view it runs in place; as a block of the concatenation its output lives in another storage
    (it cannot also take over y's), so ``inplace_steps`` leaves it out-of-place."""
    import dataclasses

    from mcunet_tvm.ir import KernelCall, Program
    from mcunet_tvm.passes.inplace_depthwise import inplace_steps

    prog = program_of(import_tflite(OPS / "split_concat_h.tflite")[0])
    dw, mul = (next(c for c in prog.calls if c.op.kind == kind and c.op.in_shape == (1, 4, 4, 8))
               for kind in ("conv2d", "binary"))
    concat = next(c for c in prog.calls if isinstance(c.op, Concat) and c.op.axis == 1)
    calls = (KernelCall("k_y", mul.op, ("x",), mul.const_args, "y"),
             KernelCall("k_a", dw.op, ("y",), dw.const_args, "a", dw.choice),
             KernelCall("k_b", mul.op, ("x",), mul.const_args, "b"),
             KernelCall("k_t", concat.op, ("a", "b"), (), "t"))
    shapes = {"x": (1, 4, 4, 8), "y": (1, 4, 4, 8), "a": (1, 4, 4, 8), "b": (1, 4, 4, 8), "t": (1, 8, 4, 8)}
    synthetic = Program(shapes, calls, ("x",), ("t",))
    assert inplace_steps(synthetic) == {1}
    viewed = with_views(synthetic)
    assert viewed.calls[3].choice.view and viewed.storage_map()["a"] == "t"
    assert inplace_steps(viewed) == frozenset()
    # the in-place output would be a view of both y and t: the planner refuses such a graph
    both = dataclasses.replace(viewed, calls=tuple(dataclasses.replace(c, choice=c.choice.with_(inplace=True))
                                                   if i == 1 else c for i, c in enumerate(viewed.calls)))
    with pytest.raises(ValueError, match="view of both"):
        both.memory_graph().placement()


def test_a_view_that_would_raise_the_peak_stays_a_copy() -> None:
    """a = f(x) early, then a wide branch (three maps joined along channels: a copy) ending in b; concat(a, b)
    along H. As a view, a's concatenation holds b's block reserved through the wide branch: a higher peak,
    so it keeps its copy (memory first)."""
    import dataclasses

    from mcunet_tvm.ir import KernelCall, Program
    from mcunet_tvm.passes.zero_copy_views import _allowed
    from mcunet_tvm.planner import peak_live_bytes

    prog = program_of(import_tflite(OPS / "split_concat_h.tflite")[0])
    mul = next(c for c in prog.calls if c.op.kind == "binary" and c.op.in_shape == (1, 4, 4, 8))
    unit = (1, 4, 4, 8)
    wide = Concat(unit, (1, 4, 4, 24), axis=3, in_shapes=(unit,) * 3)
    narrow = Slice((1, 4, 4, 24), unit, begin=(0, 0, 0, 0), strides=(1, 1, 1, 1))
    join = Concat(unit, (1, 8, 4, 8), axis=1, in_shapes=(unit, unit))
    calls = (KernelCall("k_a", mul.op, ("x",), mul.const_args, "a"),
             *(KernelCall(f"k_m{k}", mul.op, ("x",), mul.const_args, f"m{k}") for k in range(3)),
             KernelCall("k_q", wide, ("m0", "m1", "m2"), (), "q"),
             KernelCall("k_b", narrow, ("q",), (), "b"),
             KernelCall("k_t", join, ("a", "b"), (), "t"))
    shapes = {"x": unit, "a": unit, "m0": unit, "m1": unit, "m2": unit, "q": (1, 4, 4, 24), "b": unit,
              "t": (1, 8, 4, 8)}
    synthetic = Program(shapes, calls, ("x",), ("t",))
    assert _allowed(synthetic) == [6]  # the H concatenation (the channel slice is no contiguous block)
    copies = peak_live_bytes(synthetic.memory_graph())
    viewed = peak_live_bytes(with_views(synthetic).memory_graph())
    forced = dataclasses.replace(synthetic, calls=tuple(
        dataclasses.replace(c, kernel="", choice=c.choice.with_(view=True)) if i == 6 else c
        for i, c in enumerate(synthetic.calls)))
    assert peak_live_bytes(forced.memory_graph()) > copies == viewed
    assert not view_steps(synthetic)


def test_no_views_option_copies(build_cli) -> None:
    """``--no-views`` (``BuildOptions.views``): every concatenation and slice is a copy kernel again."""
    code, report, out = build_cli("--target", "cortex-m4", "--model", str(OPS / "split_h_outputs.tflite"),
                                  "--no-views")
    assert code == 0
    model = (out / "mcunet_model.c").read_text()
    assert model.count("_slice(") == 2 and "a view, no copy" not in model
    assert report["arena_bytes"] > _plan_arena("split_h_outputs")


def _plan_arena(name: str) -> int:
    return plan_memory(_program(name, mcpu="cortex-m4").memory_graph()).arena_bytes
