"""Build a model end to end from Python: what ``build``, ``profile``, ``--tune`` and the NAS call.

:func:`build` takes typed :class:`BuildOptions` (no argument strings), compiles the model
through :func:`mcunet_tvm.pipeline.compile_relax`, writes the C sources, links the firmware,
optionally runs it (QEMU or the host) and checks the output against the host reference and
TF Lite Micro, and returns a :class:`BuildResult` whose ``report`` is what ``report.json``
holds. Nothing is left claiming success on failure: ``report.json`` is written last, and
removed first. The CLIs (``mcunet_tvm.build``, ``mcunet_tvm.profile``) only parse arguments
into options and present the result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .boards import fit_arena, overflow_error
from .errors import BudgetError, McunetError, ModelFileError
from .progress import note

#: ``BuildOptions.patch``: None (layer by layer), "auto", or (last step of the patch stage, (rows, cols))
PatchSpec = str | tuple[int, tuple[int, int]] | None


@dataclass(frozen=True)
class BuildOptions:
    """Everything one build needs (``python -m mcunet_tvm.build --help`` documents each)."""

    model: str
    out: Path
    target: str = "cortex-m7"
    run: bool = False
    #: raw input bytes (NHWC; int8, int16 little-endian for a 16x8 model, or float32 little-endian for a
    #: float input) for ``run``, one file per
    #: model input in order; empty: seeded random inputs
    inputs: tuple[Path, ...] = ()
    seed: int = 0
    calibration: Path | None = None
    sram_budget: int | None = None
    flash_budget: int | None = None
    patch: PatchSpec = None
    max_mac_overhead: float = 0.3
    stream_input: bool = False
    guards: bool = False
    #: contiguous concatenations and slices as views (``ZeroCopyViews``); False: every one a copy kernel
    views: bool = True
    #: implies ``run``: per-operator instructions (and modelled cycles) into ``profile.json``
    profile: bool = False
    #: with ``run``: a modelled cycle estimate (``mcunet_tvm.cycles``) into ``report.json``; always on with ``profile``
    cycles: bool = False
    #: flash wait states the cycle model charges per refill and per data read from flash
    flash_wait_states: int = 0
    #: "auto", "simd" or "plain"
    kernels: str = "auto"
    optimize: str = "speed"
    tune: int = 0
    tune_db: Path = Path("build") / "tuning.json"
    #: the C library's name: files ``NAME_model.c`` ..., symbols ``NAME_...``, macros ``NAME_...`` upper case
    name: str = "mcunet"
    #: receives progress lines of long work (patch search, kernels, C compilation, tuning); None: silent
    progress: Callable[[str], None] | None = field(default=None, compare=False)

    def command_line(self) -> str:
        """The ``python -m mcunet_tvm.build`` command that makes this build."""
        args = ["--target", self.target, "--model", str(self.model), "--out", str(self.out)]
        for flag, value in (("--calibration", self.calibration), ("--sram-budget", self.sram_budget),
                            ("--flash-budget", self.flash_budget), *(("--input", p) for p in self.inputs)):
            if value is not None:
                args += [flag, str(value)]
        if self.patch is not None:
            args += ["--patch", self.patch if isinstance(self.patch, str)
                     else f"{self.patch[1][0]}x{self.patch[1][1]}@{self.patch[0]}"]
        if self.patch == "auto":
            args += ["--max-mac-overhead", str(self.max_mac_overhead)]
        args += [flag for flag, on in (("--run", self.run and not self.profile), ("--profile", self.profile),
                                       ("--stream-input", self.stream_input), ("--guards", self.guards),
                                       ("--no-views", not self.views),
                                       ("--cycles", self.cycles and not self.profile)) if on]
        if self.flash_wait_states:
            args += ["--flash-wait-states", str(self.flash_wait_states)]
        if self.optimize != "speed":
            args += ["--optimize", self.optimize]
        if self.kernels != "auto":
            args += ["--kernels", self.kernels]
        if self.name != "mcunet":
            args += ["--name", self.name]
        return "python -m mcunet_tvm.build " + " ".join(args)


@dataclass
class BuildResult:
    """What a build produced: the report (``report.json``), the compiled model, the profile if measured."""

    report: dict
    compiled: object  # pipeline.CompiledModel
    profile: dict | None = None

    @property
    def bit_exact(self) -> bool:
        """Whether every reference the run was checked against agreed (True when nothing ran)."""
        run = self.report.get("qemu") or self.report.get("host_run")
        return not run or bool(run["bit_exact"] and run["bit_exact_layer_based"] and run.get("bit_exact_tflm", True))


def input_bytes(options: BuildOptions, prog) -> list[bytes]:
    """The run's inputs, one per input of the program ``prog``: the ``options.inputs`` files (checked
    against the model's sizes) or seeded random ones (``graph_ref.sample_inputs``)."""
    from .reference.graph_ref import sample_inputs

    sizes = [prog.nbytes(n) for n in prog.inputs]
    if not options.inputs:
        return [x.tobytes() for x in sample_inputs(prog, np.random.default_rng(options.seed))]
    if len(options.inputs) != len(sizes):
        raise ModelFileError(f"{len(options.inputs)} input files for a model with {len(sizes)} inputs",
                             where="--input", hint="give --input once per model input, in the model's order")
    data = []
    for k, (path, nbytes, name) in enumerate(zip(options.inputs, sizes, prog.inputs, strict=True)):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"cannot read the input file: {exc.strerror}", where=str(path)) from None
        if len(raw) != nbytes:
            which = f"input {k} of the model takes" if len(sizes) > 1 else "the model takes"
            layout = "int8, NHWC" if prog.dtype(name) == "int8" else f"{prog.dtype(name)} little-endian, NHWC"
            raise ModelFileError(f"the input file has {len(raw)} bytes but {which} {nbytes} ({layout})",
                                 where=str(path))
        data.append(raw)
    return data


def check_options(options: BuildOptions) -> None:
    """Every option checked before any work: the first one that is wrong, named as the CLI spells it."""
    from .targets import get_target

    get_target(options.target)
    for flag, size in (("--sram-budget", options.sram_budget), ("--flash-budget", options.flash_budget)):
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise BudgetError(f"the budget {size!r} is not a positive number of bytes", where=flag,
                              hint="write e.g. 256KB")
    overhead = options.max_mac_overhead
    if not (isinstance(overhead, int | float) and math.isfinite(overhead) and overhead >= 0):
        raise McunetError(f"--max-mac-overhead {overhead} is not a fraction >= 0", where="--max-mac-overhead",
                          hint="e.g. 0.05 for at most 5 % extra MACs")
    for flag, value in (("--tune", options.tune), ("--seed", options.seed),
                        ("--flash-wait-states", options.flash_wait_states)):
        if value < 0:
            raise McunetError(f"{flag} {value} is negative", where=flag, hint=f"{flag} takes a count >= 0")
    _check_patch(options)
    _check_name(options.name)
    _check_cycles(options)
    if options.inputs and not (options.run or options.profile):
        raise McunetError("--input is given but nothing runs", where="--input",
                          hint="add --run (or --profile) to run the model on that input")
    for path in options.inputs:
        if not Path(path).is_file():
            raise ModelFileError("the input file does not exist", where=f"--input {path}")


#: C keywords and names a library may not take (its symbols would clash with the language or libc)
_RESERVED_NAMES = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while main memcpy""".split())


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name) or name in _RESERVED_NAMES or name.endswith("_"):
        raise McunetError(f"--name {name!r} is not a usable C prefix", where="--name",
                          hint="lower-case letters, digits and _ (starting with a letter, at most 31), e.g. kws")


def _check_cycles(options: BuildOptions) -> None:
    from .cycles import CORES, supports
    from .targets import get_target

    if options.cycles and not (options.run or options.profile):
        raise McunetError("--cycles is given but nothing runs", where="--cycles",
                          hint="add --run (the estimate models the run's instructions), or use --profile")
    target = get_target(options.target)
    if options.cycles and not (supports(target.mcpu) and target.qemu_machine):
        raise McunetError(f"the cycle model has no timing table for '{target.name}'", where="--cycles",
                          hint=f"estimate on an emulated {' or '.join(sorted(CORES))} target, e.g. --target cortex-m4")
    if options.flash_wait_states and not (options.cycles or options.profile):
        raise McunetError("--flash-wait-states is given but no cycles are estimated", where="--flash-wait-states",
                          hint="add --cycles (with --run) or --profile")


def _check_patch(options: BuildOptions) -> None:
    patch = options.patch
    if isinstance(patch, tuple):
        step, (rows, cols) = patch
        if step < 0 or rows < 1 or cols < 1:
            raise McunetError(f"--patch asks for a {rows}x{cols} grid of patches up to step {step}", where="--patch",
                              hint="a grid has at least 1x1 patches, e.g. 3x3@12 (steps count from 0)")
    elif patch not in (None, "auto"):
        raise McunetError(f"cannot read --patch {patch!r}", where="--patch", hint="none, auto, or e.g. 3x3@12")
    if options.stream_input and patch is None:
        raise McunetError("--stream-input needs patch-based inference", where="--stream-input",
                          hint="add --patch auto (or a grid such as --patch 3x3@12)")


def build(options: BuildOptions) -> BuildResult:
    """Compile (and with ``run`` execute) the model into ``options.out``; the result.

    Every option is checked first; the files are written into a folder beside ``options.out``
    that replaces it only when the build succeeds (:mod:`mcunet_tvm.outdir`).
    """
    from .outdir import staged_output

    check_options(options)
    with staged_output(Path(options.out)) as stage:
        return _build(dataclasses.replace(options, out=stage))


def _build(options: BuildOptions) -> BuildResult:
    """The build itself, into the (empty) staging folder ``options.out``."""
    from . import toolchain
    from .boards import get_board
    from .frontend import load_model
    from .pipeline import compile_relax
    from .planner.report import check_sram_budget, peak_step, step_table
    from .presentation import plot_png
    from .targets import get_target
    from .tuning import TuningDatabase, tune_program

    target = get_target(options.target)
    board = get_board(target.name)
    toolchain.check_toolchain(target)
    run = options.run or options.profile
    if run and target.mcpu and not target.qemu_machine:
        raise McunetError(f"--run needs an emulated target; QEMU does not emulate the board '{target.name}'",
                          where="--run", hint="flash the project in board/ (see its README.md), or drop --run")
    if options.profile and not target.qemu_machine:
        raise McunetError(
            f"--profile needs an emulated Cortex-M target, not '{target.name}'",
            where="--target",
            hint="instruction counts come from QEMU's -icount clock: use e.g. --target cortex-m7",
        )
    out = options.out
    report_path = out / "report.json"

    t0 = time.monotonic()
    model = load_model(options.model, calibration=options.calibration)
    db = TuningDatabase.load(options.tune_db) if options.tune or options.tune_db.exists() else None

    def compile_model():
        return compile_relax(
            model.module,
            target.mcpu,
            guard_bytes=16 if options.guards else 0,
            patch=options.patch,
            max_mac_overhead=options.max_mac_overhead,
            sram_budget=options.sram_budget,
            simd={"auto": None, "simd": True, "plain": False}[options.kernels],
            schedule=db.lookup(target.name) if db else None,
            stream_input=options.stream_input,
            optimize=options.optimize,
            views=options.views,
            name=options.name,
            source=_model_source(options.model),
            progress=options.progress,
        )

    compiled = compile_model()
    if options.tune:
        tune_program(compiled.program, target, db, options.tune, progress=options.progress)
        compiled = compile_model()
    prog, plan = compiled.program, compiled.plan
    graph = prog.memory_graph()
    if options.sram_budget is not None:
        patched = "a finer grid or a later split step (--patch RxC@STEP), or a smaller input resolution or width"
        check_sram_budget(graph, plan, options.sram_budget, "" if options.patch is None else patched)
    arena = fit_arena(board, plan.arena_bytes) if board else None
    sources = compiled.write(out)
    compile_s = time.monotonic() - t0

    note(options.progress, f"compiled the model to C in {compile_s:.1f} s; compiling {len(sources)} C files "
                           f"for {target.name}")
    exe, objects = _firmware(options, target, board, arena, compiled, sources)
    flash = toolchain.flash_bytes(target, exe)
    if options.flash_budget is not None and flash > options.flash_budget:
        raise BudgetError(
            f"the image needs {flash:,} B of flash but the budget is {options.flash_budget:,} B",
            where=f"{exe} (model constants and kernels: {toolchain.object_flash_bytes(target, objects):,} B)",
            hint="use a smaller model (width, depth, classes)",
        )
    table = step_table(graph, plan)
    info = compiled.patch
    stage_end = info.patch_stage_steps if info else None
    plot_png(table, plan.arena_bytes, out / "memory.png", f"{model.name}: live activations per step", stage_end)
    report: dict = {
        "model": model.name,
        "model_kind": model.kind,
        "target": target.name,
        "input_shape": list(prog.shapes[prog.inputs[0]]),
        "output_shape": list(prog.shapes[prog.outputs[0]]),
        "input_shapes": [list(prog.shapes[n]) for n in prog.inputs],
        "output_shapes": [list(prog.shapes[n]) for n in prog.outputs],
        "input_dtypes": [prog.dtype(n) for n in prog.inputs],
        "output_dtypes": [prog.dtype(n) for n in prog.outputs],
        "macs": prog.macs(),
        "params": compiled.layer_program.params(),
        "arena_bytes": plan.arena_bytes,
        "arena_lower_bound_bytes": plan.lower_bound_bytes,
        "flash_bytes": flash,
        "model_flash_bytes": toolchain.object_flash_bytes(target, objects),
        "code_bytes": toolchain.code_bytes(target, objects),  # kernels + entry point, no constants
        "stack_bytes": None,
        "cycles_estimate": None,
        "compile_seconds": round(compile_s, 2),
        "guards": bool(options.guards),
        "files": sorted(compiled.files),
        "executable": str(exe.relative_to(out)),
        "memory": {
            "peak_step": peak_step(plan),
            "strategy": plan.layout.strategy,
            "proved_optimal": plan.layout.optimal,
            "steps": table,
            "smaller_scratch_steps": _smaller_scratch_steps(prog),
        },
        "patch": None if info is None else _patch_report(info, plan.live_bytes),
        "kernels": _kernel_summary(prog, db, target.name, compiled.kernel_aliases),
        "board": None if board is None else {
            "name": board.name, "chip": board.chip, "arena_region": arena.describe(),
            "flash_region": board.flash.describe(), "project": "board/",
            # the board project's image (python -m mcunet_tvm.run): beside the QEMU harness when emulated
            "firmware": "firmware/board.elf" if board.qemu_machine else str(exe.relative_to(out)),
            # what python -m mcunet_tvm.run reloads for the host reference of another input
            "model": str(Path(options.model).resolve()) if Path(options.model).is_file() else options.model,
            "calibration": None if options.calibration is None else str(Path(options.calibration).resolve()),
            "model_sha256": _model_source(options.model).sha256,
        },
    }
    profile = None
    if run:
        report["stack_bytes"], report_key, run_info, profile = _run(options, target, exe, model, compiled)
        report.update({k: v for k, v in run_info.pop("tflm", {}).items()})
        report["cycles_estimate"] = run_info.pop("cycles_estimate", None)
        report[report_key] = run_info
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return BuildResult(report, compiled, profile)


def _firmware(options: BuildOptions, target, board, arena, compiled, sources: list[Path]):
    """Compile and link ``firmware/`` (the executable and the model's objects); a real board's linker
    overflow is a :class:`BudgetError` naming its region."""
    from . import toolchain
    from .errors import ToolchainError

    fw = options.out / "firmware"
    project = _board_project(options, board, arena, compiled) if board else None
    emulated = board is not None and board.qemu_machine is not None
    objects = toolchain.compile_objects(target, sources, [options.out], fw / "obj",
                                        runtime=None if emulated else project,
                                        board_runtime=project if emulated else None)
    note(options.progress, "linking")
    try:
        exe = toolchain.link(target, objects, fw / ("model.elf" if target.mcpu else "model"),
                             script=project / "link.ld" if project and not emulated else None)
        if emulated:  # the board project's image too, for python -m mcunet_tvm.run
            toolchain.link(target, objects, fw / "board.elf", script=project / "link.ld", runtime_dir="board_runtime")
    except ToolchainError as err:
        budget = overflow_error(board, arena, err.what) if board else None
        raise budget or err from None
    return exe, objects


def _board_project(options: BuildOptions, board, arena, compiled) -> Path:
    """``OUT/board/`` for a board, checking itself against the host reference on the build's input."""
    from .aot.emit_c import CNames
    from .board_project import write_project

    data = input_bytes(options, compiled.program)
    expected = reference_bytes(compiled.imported, data)
    return write_project(board, arena, options.out, CNames(options.name), b"".join(data), expected)


def reference_bytes(imported, data: list[bytes]) -> bytes:
    """The host reference's output bytes (numpy, on the program ``imported`` as imported, before our
    passes) for the raw inputs ``data``, outputs back to back in the model's order."""
    from .reference.graph_ref import run_program

    xs = [np.frombuffer(d, imported.dtype(n)).reshape(imported.shapes[n])
          for d, n in zip(data, imported.inputs, strict=True)]
    return b"".join(np.asarray(o).tobytes() for o in run_program(imported, xs))


def imported_program(spec: str, calibration: Path | None = None):
    """The model ``spec`` as imported (the host reference's program), without compiling it."""
    from .frontend import load_model
    from .ir import program_of
    from .kernels import kernel_cache
    from .pipeline import lower_to_integer

    with kernel_cache():
        return program_of(lower_to_integer(load_model(spec, calibration=calibration).module))


def _model_source(spec: str):
    """The header's provenance: a file's name and SHA-256, or a zoo model's name and its config's."""
    import hashlib

    from .aot.emit_c import ModelSource
    from .frontend.zoo import CONFIGS

    path = Path(spec)
    data = path.read_bytes() if path.is_file() else json.dumps(CONFIGS.get(spec), sort_keys=True).encode()
    return ModelSource(path.name if path.is_file() else f"{spec} (built-in zoo)", hashlib.sha256(data).hexdigest())


def _run(options: BuildOptions, target, exe: Path, model, compiled):
    """Run the firmware once; the output against the references; the profile when asked."""
    from . import toolchain
    from .op_profile import make_profile
    from .reference.graph_ref import run_program

    prog, out = compiled.program, options.out
    data = input_bytes(options, prog)
    result = toolchain.run(target, exe, b"".join(data), sum(prog.nbytes(n) for n in prog.outputs))
    _write_outputs(out, result.output, [prog.nbytes(n) for n in prog.outputs])
    xs = [np.frombuffer(d, prog.dtype(n)).reshape(prog.shapes[n]) for d, n in zip(data, prog.inputs, strict=True)]

    def packed(outputs: list[np.ndarray]) -> bytes:
        return b"".join(np.asarray(o).tobytes() for o in outputs)

    run_info: dict = {
        # the numpy reference on the graph as imported (before our passes), and on the layer-based program
        "bit_exact": result.output == packed(run_program(compiled.imported, xs)),
        "bit_exact_layer_based": result.output == packed(run_program(compiled.layer_program, xs)),
        "instructions": result.instructions,
        "machine": target.qemu_machine,
    }
    tflm = _tflm(model, compiled.layer_program, xs)
    if tflm is not None:
        outputs, arena = tflm
        run_info["bit_exact_tflm"] = result.output == packed(outputs)
        if arena is not None:
            run_info["tflm"] = {"tflm_arena_bytes": arena[0], "tflm_tensor_arena_bytes": arena[1]}
    estimate = _cycles(options, target, exe, b"".join(data), len([c for c in prog.calls if c.kernel]), result)
    if estimate is not None:
        run_info["cycles_estimate"] = estimate.report()
    (out / "profile.json").unlink(missing_ok=True)
    profile = None
    if options.profile:
        profile = make_profile(prog, result.step_instructions, result.instructions, estimate)
        (out / "profile.json").write_text(json.dumps(profile, indent=2) + "\n")
        run_info["instructions_per_mac"] = profile["instructions_per_mac"]
    return result.stack_bytes, "qemu" if target.qemu_machine else "host_run", run_info, profile


def _cycles(options: BuildOptions, target, exe: Path, data: bytes, steps: int, result):
    """The modelled cycles of the same run (``--cycles``, ``--profile`` on a core the model knows), or None."""
    from .cycles import estimate, supports
    from .resources import RUNTIME_C

    if not ((options.cycles or options.profile) and supports(target.mcpu) and target.qemu_machine):
        return None
    if result.instructions is None:
        return None  # a board without a counter: no stamps to attribute
    note(options.progress, f"estimating cycles (emulating the {target.mcpu} run once more)")
    return estimate(target.mcpu, RUNTIME_C / "boards" / target.board, exe, data, steps,
                    options.flash_wait_states, qemu_step_instructions=result.step_instructions)


def _patch_report(info, live: list[int]) -> dict:
    return {
        "split_step": info.split_step,
        "split_tensor": info.split_tensor,
        "grid": list(info.grid),
        "mac_overhead": round(info.mac_overhead, 4),
        "layer_based_macs": info.layer_macs,
        "patch_stage_steps": info.patch_stage_steps,
        "patch_stage_peak_bytes": max(live[: info.patch_stage_steps]),
        "rest_peak_bytes": max(live[info.patch_stage_steps :], default=0),
        "stream_input": info.stream_input,
    }


def _write_outputs(out: Path, data: bytes, sizes: list[int]) -> None:
    """``output.bin`` for one output; ``output0.bin``, ``output1.bin``, ... for several (stale ones removed)."""
    for stale in out.glob("output*.bin"):
        stale.unlink()
    if len(sizes) == 1:
        (out / "output.bin").write_bytes(data)
        return
    start = 0
    for k, n in enumerate(sizes):
        (out / f"output{k}.bin").write_bytes(data[start : start + n])
        start += n


def _tflm(model, prog, xs: list[np.ndarray]):
    """TF Lite Micro on the same network: the .tflite itself, or our export of the integer program.
    (outputs in order, (arena, tensor arena) bytes or None), or None where TFLite cannot express it."""
    from .export.tflite_writer import program_to_tflite
    from .reference.tflm import run_tflm, run_tflm_outputs, tflm_arena_bytes

    if model.tflite_path is not None:
        if len(xs) == 1 and len(prog.outputs) == 1:
            result = run_tflm(model.tflite_path, xs[0])
            return [result.output], (result.arena_bytes, result.tensor_arena_bytes)
        data = model.tflite_path.read_bytes()
        return run_tflm_outputs(data, xs), tflm_arena_bytes(data)
    try:
        result = run_tflm(program_to_tflite(prog), xs[0])
    except McunetError:
        return None  # not expressible in TFLite (e.g. a padding TFLite has no form for)
    return [result.output], (result.arena_bytes, result.tensor_arena_bytes)


def _smaller_scratch_steps(prog) -> list[dict]:
    """The steps that pay instructions for memory: their kernel took a smaller-scratch form at the
    arena's peak (``ShrinkPeakScratch``)."""
    return [{"step": i, "kernel": c.kernel, "op": c.op.kind, "scratch_bytes": c.choice.scratch_bytes(c.op),
             "kernel_form": c.choice.describe()}
            for i, c in enumerate(prog.calls) if c.kernel and c.choice.memory_first]


def _kernel_summary(prog, db, target: str, aliases: dict[str, str]) -> dict:
    """How many layers run SIMD micro-kernels (how many tuned), and how many C kernels they share."""
    simd = [c for c in prog.calls if c.kernel and c.choice.simd is not None]
    return {
        "layers": sum(1 for c in prog.calls if c.kernel),
        "kernel_functions": len({aliases.get(c.kernel, c.kernel) for c in prog.calls if c.kernel}),
        "simd_layers": len(simd),
        "tuned_layers": sum(1 for c in simd if db and db.best(target, c.op)),
        "tune_db": str(db.path) if db else None,
    }
