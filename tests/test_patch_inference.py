"""Patch-based inference (MCUNetV2): byte-equal to layer-based execution, search caps, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mcunet_tvm import toolchain
from mcunet_tvm.errors import BudgetError, UnsupportedModelError
from mcunet_tvm.frontend import load_model
from mcunet_tvm.ir import lighten, program_of
from mcunet_tvm.ops import Binary, InputRows, Insert, Prelu
from mcunet_tvm.patching.regions import split_bounds
from mcunet_tvm.patching.search import candidates, choose_patch, estimated_peak
from mcunet_tvm.pipeline import PipelineOptions, compile_relax, lower_to_integer, optimise
from mcunet_tvm.planner import plan_memory
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target

from patchcases import patch_program, random_chain, random_grid


def test_split_bounds_cover_uneven_sizes() -> None:
    for size in range(1, 30):
        for parts in range(1, min(size, 6) + 1):
            bounds = split_bounds(size, parts)
            assert bounds[0][0] == 0 and bounds[-1][1] == size
            assert all(a < b for a, b in bounds) and all(bounds[i][1] == bounds[i + 1][0] for i in range(parts - 1))


@pytest.mark.parametrize("seed", range(80))
def test_patches_equal_layer_based_on_random_chains(seed: int) -> None:
    """Numpy reference of the patched program == numpy reference of the layer-based one."""
    mod = random_chain(seed)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    patched, info = patch_program(mod, split, grid)
    assert sum(isinstance(c.op, Insert) for c in patched.calls) == grid[0] * grid[1]
    assert info.macs == patched.macs()  # may be below layer-based: rows no patch needs are skipped
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    assert run_reference(patched, x).tobytes() == run_reference(prog, x).tobytes()


def _host_output(compiled, tmp_path, x: np.ndarray) -> bytes:
    host = get_target("host")
    sources = compiled.write(tmp_path)
    exe = toolchain.link(host, toolchain.compile_objects(host, sources, [tmp_path], tmp_path / "obj"), tmp_path / "m")
    return toolchain.run(host, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output)).output


@pytest.mark.parametrize("seed", [1, 4, 7, 12])
def test_compiled_patches_equal_layer_based_on_host(seed: int, tmp_path) -> None:
    """Generated C of the patched program (host) == layer-based reference, and the plan is sound."""
    mod = random_chain(seed)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    grid = (max(grid[0], 2), grid[1]) if prog.shapes[prog.calls[split].output][1] >= 2 else grid
    compiled = compile_relax(mod, mcpu=None, patch=(split, grid))
    assert compiled.patch is not None and compiled.patch.grid == grid
    assert compiled.plan.arena_bytes >= compiled.plan.lower_bound_bytes
    rng = np.random.default_rng(seed)
    for _ in range(2):
        x = rng.integers(-128, 128, prog.shapes["input"], dtype=np.int8)
        assert _host_output(compiled, tmp_path, x) == run_reference(prog, x).tobytes()


def test_patch_inference_on_qemu_with_guards(build_cli) -> None:
    """An explicit split on demo-cnn runs bit-exact on the Cortex-M7 with every guard intact."""
    code, report, _ = build_cli("--model", "demo-cnn", "--run", "--guards", "--patch", "3x2@6")
    assert code == 0
    patch = report["patch"]
    assert patch["grid"] == [3, 2] and patch["split_step"] == 6 and patch["mac_overhead"] > 0
    assert report["qemu"]["bit_exact"] and report["qemu"]["bit_exact_layer_based"]
    assert report["qemu"]["bit_exact_tflm"]
    assert report["macs"] > patch["layer_based_macs"]
    assert max(patch["patch_stage_peak_bytes"], patch["rest_peak_bytes"]) == report["arena_lower_bound_bytes"]


def test_auto_patch_lowers_the_peak_on_qemu(build_cli) -> None:
    _, layer, _ = build_cli("--model", "demo-cnn", "--target", "cortex-m4", out="layer")
    code, auto, _ = build_cli("--model", "demo-cnn", "--target", "cortex-m4", "--run", "--patch", "auto",
                              "--max-mac-overhead", "0.25", out="auto")
    assert code == 0
    assert auto["patch"] is not None and auto["patch"]["mac_overhead"] <= 0.25
    assert auto["arena_bytes"] < layer["arena_bytes"]
    assert auto["macs"] > layer["macs"]
    assert auto["qemu"]["bit_exact"] and auto["qemu"]["bit_exact_layer_based"]


@pytest.fixture(scope="module")
def demo_program():
    return lower_to_integer(load_model("demo-cnn").module)


@pytest.mark.parametrize("cap", [0.02, 0.1, 0.3])
def test_auto_search_respects_the_mac_cap(demo_program, cap: float) -> None:
    choice = choose_patch(demo_program, max_mac_overhead=cap)
    allowed = [c for c in candidates(demo_program) if c.mac_overhead <= cap]
    assert candidates(demo_program, max_mac_overhead=cap) == allowed  # those over the cap are not scored
    if choice is None:
        return
    assert choice.mac_overhead <= cap
    assert choice.peak_bytes == min(c.peak_bytes for c in allowed)


def test_auto_search_with_budget_takes_least_overhead(demo_program) -> None:
    all_c = candidates(demo_program)
    below = sorted(c.peak_bytes for c in all_c if c.peak_bytes < estimated_peak(lighten(demo_program)))
    budget = below[len(below) // 2]
    choice = choose_patch(demo_program, max_mac_overhead=1.0, sram_budget=budget)
    assert choice is not None and choice.peak_bytes <= budget
    assert choice.mac_overhead == min(c.mac_overhead for c in all_c if c.peak_bytes <= budget)


def test_impossible_budget_names_the_best_achievable_peak(demo_program) -> None:
    best = min(c.peak_bytes for c in candidates(demo_program) if c.mac_overhead <= 0.3)
    with pytest.raises(BudgetError) as err:
        choose_patch(demo_program, max_mac_overhead=0.3, sram_budget=1000)
    assert f"arena is {best:,} B" in str(err.value)  # without the compiler's planner: the estimate


def _planned_arena(mod, **options) -> int:
    """The arena the compiler plans for ``mod`` built with ``options`` (light: no code generated)."""
    final, _ = optimise(mod, PipelineOptions(mcpu="cortex-m7", **options), light=True)
    return plan_memory(program_of(final).memory_graph()).arena_bytes


def test_budget_and_auto_agree(demo_program) -> None:
    """The arena --patch auto builds without a budget is what an impossible budget's error names as
    achievable, and that arena as the budget then builds (the budget is checked on exact plans)."""
    auto = _planned_arena(demo_program, patch="auto")
    with pytest.raises(BudgetError) as err:
        _planned_arena(demo_program, patch="auto", sram_budget=1000)
    assert f"the lowest achievable arena is {auto:,} B" in str(err.value)
    assert _planned_arena(demo_program, patch="auto", sram_budget=auto) <= auto


def test_split_inside_a_residual_is_refused(demo_program) -> None:
    with pytest.raises(UnsupportedModelError, match="inside the patch stage"):
        patch_program(demo_program, 1, (2, 2))  # t0 is read again by the add at step 3


@pytest.mark.parametrize("spec,needle", [("3x3@99", "must end at a step"), ("banana", "cannot read --patch"),
                                         ("2x2@22", "cannot run patch by patch")])
def test_bad_patch_option_is_a_clear_error(build_cli, capsys, spec: str, needle: str) -> None:
    code, report, _ = build_cli("--model", "demo-cnn", "--patch", spec)
    assert code == 2 and report is None
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(0, 80, 4))
def test_streamed_input_patches_equal_layer_based_on_random_chains(seed: int) -> None:
    """Input bands fetched per patch row (InputRows) compute what the whole input computes."""
    mod = random_chain(seed)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    patched, info = patch_program(mod, split, grid, stream_input=True)
    assert info.stream_input and patched.stream_input
    bands = [c for c in patched.calls if isinstance(c.op, InputRows)]
    assert 1 <= len(bands) <= grid[0]
    assert all(c.inputs == (prog.input,) for c in bands)
    assert not any(prog.input in c.inputs for c in patched.calls if not isinstance(c.op, InputRows))
    assert patched.memory_graph().tensors[prog.input].nbytes == 0  # the input is not in the arena
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    assert run_reference(patched, x).tobytes() == run_reference(prog, x).tobytes()


@pytest.mark.parametrize("seed", [2, 9])
def test_compiled_streamed_input_on_host(seed: int, tmp_path) -> None:
    """The default mcunet_read_input_rows (reading from mcunet_run's input pointer), on the host."""
    mod = random_chain(seed)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    compiled = compile_relax(mod, mcpu=None, patch=(split, grid), stream_input=True)
    header = compiled.files["mcunet_model.h"]
    assert compiled.program.stream_input and "MCUNET_STREAM_INPUT" in header
    declared = set(re.findall(r"(mcunet_\w+)\(", re.sub(r"/\*.*?\*/", "", header, flags=re.S)))
    assert set(re.findall(r"(mcunet_\w+)\(\)", header)) <= declared  # comments name declared functions only
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    assert _host_output(compiled, tmp_path, x) == run_reference(prog, x).tobytes()


def test_streamed_input_on_qemu_keeps_the_input_out_of_the_arena(build_cli) -> None:
    """On the M7 the harness serves input rows from the host file: the input never sits in SRAM."""
    _, held, _ = build_cli("--model", "mcunet-vww-like", "--patch", "auto", out="held")
    code, streamed, out = build_cli("--model", "mcunet-vww-like", "--run", "--guards", "--patch", "auto",
                                    "--stream-input", out="streamed")
    assert code == 0 and streamed["patch"]["stream_input"]
    run = streamed["qemu"]
    assert run["bit_exact"] and run["bit_exact_layer_based"] and run["bit_exact_tflm"]
    code, plain, _ = build_cli("--model", "mcunet-vww-like", "--patch", "auto", "--stream-input", out="plain")
    assert code == 0 and plain["arena_bytes"] < held["arena_bytes"]
    assert "mcunet_read_input_rows" in (out / "mcunet_model.c").read_text()
    input_step = next(s for s in streamed["memory"]["steps"] if s["step"] == 0)
    assert all(t["tensor"] != "input" or t["bytes"] == 0 for t in input_step["live"])


def test_streamed_input_needs_patches(build_cli, capsys) -> None:
    code, report, _ = build_cli("--model", "demo-cnn", "--stream-input")
    assert code != 0 and report is None
    err = capsys.readouterr().err
    assert "--stream-input needs patch-based inference" in err and "where: --stream-input" in err


@pytest.mark.parametrize("seed,stream", [(3, False), (5, True), (11, False), (14, True)])
def test_compiled_patches_equal_layer_based_on_qemu(seed: int, stream: bool, tmp_path) -> None:
    """Random chains, patched (input held or streamed), on the Cortex-M7 == layer-based reference."""
    mod = random_chain(seed)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    compiled = compile_relax(mod, mcpu="cortex-m7", patch=(split, grid), stream_input=stream)
    m7 = get_target("cortex-m7")
    sources = compiled.write(tmp_path)
    exe = toolchain.link(m7, toolchain.compile_objects(m7, sources, [tmp_path], tmp_path / "obj"), tmp_path / "m.elf")
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    result = toolchain.run(m7, exe, x.tobytes(), prog.nbytes(prog.output))
    assert result.output == run_reference(prog, x).tobytes()


def _elementwise_steps(prog, split: int) -> int:
    return sum(isinstance(c.op, (Binary, Prelu)) for c in prog.calls[: split + 1])


@pytest.mark.parametrize("seed", range(40))
def test_patches_through_elementwise_ops_equal_layer_based(seed: int) -> None:
    """PRELU and binary ops (by a per-channel constant, or of two branches) inside the patch stage."""
    mod = random_chain(seed, elementwise=True)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    patched, _ = patch_program(mod, split, grid, stream_input=seed % 2 == 1)
    assert _elementwise_steps(patched, len(patched.calls) - 1) >= grid[0] * grid[1] * _elementwise_steps(prog, split)
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    assert run_reference(patched, x).tobytes() == run_reference(prog, x).tobytes()


def test_elementwise_chains_hold_elementwise_ops() -> None:
    """The generator above does put element-wise ops in the patch stage (most seeds)."""
    held = [_elementwise_steps(program_of(m), random_grid(s, m)[0]) for s in range(40)
            if (m := random_chain(s, elementwise=True)) is not None]
    assert sum(n > 0 for n in held) >= 20


@pytest.mark.parametrize("seed,target", [(2, "host"), (6, "cortex-m4"), (9, "cortex-m7")])
def test_compiled_elementwise_patches_equal_layer_based(seed: int, target: str, tmp_path) -> None:
    """The windowed PRELU / binary kernels, compiled (host, or QEMU with guard zones), == layer-based reference."""
    mod = random_chain(seed, elementwise=True)
    prog = program_of(mod)
    split, grid = random_grid(seed, mod)
    assert _elementwise_steps(prog, split)
    grid = (max(grid[0], 2), max(grid[1], 2))
    compiled = compile_relax(mod, mcpu=get_target(target).mcpu, patch=(split, grid), guard_bytes=16)
    spec = get_target(target)
    sources = compiled.write(tmp_path)
    objects = toolchain.compile_objects(spec, sources, [tmp_path], tmp_path / "obj")
    exe = toolchain.link(spec, objects, tmp_path / "m.elf")
    x = np.random.default_rng(seed).integers(-128, 128, prog.shapes["input"], dtype=np.int8)
    assert toolchain.run(spec, exe, x.tobytes(), prog.nbytes(prog.output)).output == run_reference(prog, x).tobytes()


def _graph_shape(graph) -> tuple:
    """A memory graph up to tensor names: sizes, and per step the sizes it reads, writes, aliases."""
    return (sorted(t.nbytes for t in graph.tensors.values()), len(graph.steps),
            sum(s.alias_of is not None for s in graph.steps), sum(s.scratch is not None for s in graph.steps))


@pytest.mark.parametrize("stream", [False, True])
def test_search_view_equals_the_emitted_patched_module(demo_program, stream: bool) -> None:
    """The patch search scores candidates on the view as data; it must be what the pass emits."""
    from mcunet_tvm.passes.inplace_depthwise import inplace_depthwise
    from mcunet_tvm.passes.patch_inference import patch_inference
    from mcunet_tvm.patching.regions import patched_view, plan_patches
    from mcunet_tvm.patching.search import view_peak

    light = lighten(demo_program)
    prog = program_of(light)
    found = candidates(light, stream)
    assert len(found) > 10
    for c in found[:: max(1, len(found) // 12)]:
        emitted = program_of(inplace_depthwise(patch_inference(light, c.split_step, c.grid, stream)))
        view = patched_view(prog, plan_patches(prog, c.split_step, c.grid, stream))
        assert c.peak_bytes == view_peak(view) == estimated_peak(patch_inference(light, c.split_step, c.grid, stream))
        assert _graph_shape(view.memory_graph()) == _graph_shape(program_of(patch_inference(
            light, c.split_step, c.grid, stream)).memory_graph())
        assert view.macs() == emitted.macs() and view.patch == emitted.patch
