"""``python -m mcunet_tvm.build``: compile a model to bare-metal C and an ELF, optionally run it.

Writes into ``--out``: the generated C sources and headers (a self-contained
folder to drop into a firmware project), ``firmware/`` with the ELF (or host
executable) built around them, ``report.json``, and with ``--run`` the raw
int8 output as ``output.bin``. Nothing is left claiming success on failure:
``report.json`` is written last, and removed first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from .errors import BudgetError, DeviceRunError, McunetError, ModelFileError


def parse_args(argv: list[str] | None, prog: str = "python -m mcunet_tvm.build") -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Compile an int8 CNN for a Cortex-M microcontroller (bare-metal C + ELF) "
        "and optionally run it on QEMU, checking the output bit-exactly against a host reference.",
    )
    p.add_argument(
        "--target",
        default="cortex-m7",
        help="cortex-m4 (QEMU mps2-an386), cortex-m7 (mps2-an500), cortex-m55 (mps3-an547) "
        "or host (default: cortex-m7)",
    )
    p.add_argument(
        "--model",
        required=True,
        help="a built-in zoo name (see --list-models), an int8 .tflite file (full-integer), "
        "a torch.export .pt2 program, or an MCUNet/ProxylessNAS .json net config",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created; files are replaced)")
    p.add_argument(
        "--run",
        action="store_true",
        help="run one inference on QEMU (or the host), write output.bin and check it bit-exactly "
        "against the host reference (and TF Lite Micro for .tflite models)",
    )
    p.add_argument(
        "--input",
        type=Path,
        help="raw int8 input bytes (NHWC) for --run; default: a seeded random input",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument(
        "--calibration",
        type=Path,
        help="PyTorch models (.pt2, .json): a .npy of float32 NCHW samples for post-training quantisation "
        "(default: seeded synthetic images)",
    )
    p.add_argument("--sram-budget", help="fail if the activation arena exceeds this, e.g. 256KB")
    p.add_argument("--flash-budget", help="fail if the whole image's flash exceeds this, e.g. 1MB")
    p.add_argument(
        "--patch",
        default="none",
        help="patch-based inference of the first stage (MCUNetV2): none (default), auto (search the split "
        "step and grid for the lowest peak, or with --sram-budget the fewest extra MACs that fit), or "
        "RxC@STEP / N@STEP (an R x C grid of patches for steps 0..STEP of the memory table)",
    )
    p.add_argument(
        "--max-mac-overhead",
        type=float,
        default=0.3,
        help="--patch auto: most extra MACs allowed for recomputed halos, as a fraction (default 0.3)",
    )
    p.add_argument(
        "--stream-input",
        action="store_true",
        help="with --patch: keep no copy of the input in the arena; the model asks the application for the "
        "rows each row of patches needs (mcunet_read_input_rows, e.g. from a camera), so peak SRAM excludes "
        "the input image",
    )
    p.add_argument(
        "--guards",
        action="store_true",
        help="test build: guard bytes around the arena and every tensor, checked after every step on the device",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="implies --run: measure every operator's instructions on the emulated core and write "
        "profile.json (also: python -m mcunet_tvm.profile)",
    )
    p.add_argument(
        "--kernels",
        choices=("auto", "simd", "plain"),
        default="auto",
        help="conv2d/dense kernels: SIMD micro-kernels on DSP cores (auto, the default), always SIMD "
        "(simd; portable C off DSP cores), or plain TIR (plain)",
    )
    p.add_argument(
        "--optimize",
        choices=("speed", "size"),
        default="speed",
        help="speed (the default): every kernel specialised to its layer; size: kernels take the "
        "layer's sizes at run time and layers share them (less flash, a few %% more instructions)",
    )
    p.add_argument(
        "--tune",
        type=int,
        default=0,
        metavar="N",
        help="tune the SIMD schedule of each layer, measuring up to N candidates per layer on QEMU "
        "(results are cached in --tune-db and reused by later builds)",
    )
    p.add_argument(
        "--tune-db",
        type=Path,
        default=Path("build") / "tuning.json",
        help="the tuning database read by every build and written by --tune (default build/tuning.json)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary, not the memory bars")
    args = p.parse_args(argv)
    if args.profile:
        args.run = True
    return args


def _input_bytes(args: argparse.Namespace, nbytes: int) -> bytes:
    if args.input is None:
        rng = np.random.default_rng(args.seed)
        return rng.integers(-128, 128, nbytes, dtype=np.int8).tobytes()
    try:
        data = args.input.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the input file: {exc.strerror}", where=str(args.input)) from None
    if len(data) != nbytes:
        raise ModelFileError(
            f"the input file has {len(data)} bytes but the model takes {nbytes} (int8, NHWC)",
            where=str(args.input),
        )
    return data


def build(args: argparse.Namespace) -> dict:
    """Compile (and with --run execute) the model; returns the report."""
    from . import toolchain
    from .frontend import load_model
    from .pipeline import HEADERS, compile_relax
    from .planner.report import check_sram_budget, parse_size, peak_step, plot_png, step_table
    from .reference.graph_ref import run_reference
    from .targets import get_target
    from .tuning import TuningDatabase, tune_program

    target = get_target(args.target)
    toolchain.check_toolchain(target)
    if args.profile and not target.qemu_machine:
        raise McunetError(
            f"--profile needs an emulated Cortex-M target, not '{target.name}'",
            where="--target",
            hint="instruction counts come from QEMU's -icount clock: use e.g. --target cortex-m7",
        )
    out: Path = args.out
    report_path = out / "report.json"
    report_path.unlink(missing_ok=True)

    t0 = time.monotonic()
    model = load_model(args.model, calibration=args.calibration)
    budget = parse_size(args.sram_budget) if args.sram_budget else None
    db = TuningDatabase.load(args.tune_db) if args.tune or args.tune_db.exists() else None

    def compile_model():
        return compile_relax(
            model.qdq_module,
            target.mcpu,
            guard_bytes=16 if args.guards else 0,
            patch=_parse_patch(args.patch),
            max_mac_overhead=args.max_mac_overhead,
            sram_budget=budget,
            simd={"auto": None, "simd": True, "plain": False}[args.kernels],
            schedule=db.lookup(target.name) if db else None,
            stream_input=args.stream_input,
            optimize=args.optimize,
        )

    compiled = compile_model()
    if args.tune:
        say = None if args.quiet else lambda line: print(f"tune {line}", flush=True)
        tune_program(compiled.program, target, db, args.tune, progress=say)
        compiled = compile_model()
    prog, plan = compiled.program, compiled.plan
    graph = prog.memory_graph()
    if budget is not None:
        check_sram_budget(graph, plan, budget)
    sources = compiled.write(out)
    compile_s = time.monotonic() - t0

    fw = out / "firmware"
    objects = toolchain.compile_objects(target, sources, [out], fw / "obj")
    exe = toolchain.link(target, objects, fw / ("model.elf" if target.mcpu else "model"))
    flash = toolchain.flash_bytes(target, exe)
    if args.flash_budget and flash > parse_size(args.flash_budget):
        raise BudgetError(
            f"the image needs {flash:,} B of flash but the budget is {parse_size(args.flash_budget):,} B",
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
        "input_shape": list(prog.shapes[prog.input]),
        "output_shape": list(prog.shapes[prog.output]),
        "macs": prog.macs(),
        "params": compiled.layer_program.params(),
        "arena_bytes": plan.arena_bytes,
        "arena_lower_bound_bytes": plan.lower_bound_bytes,
        "flash_bytes": flash,
        "model_flash_bytes": toolchain.object_flash_bytes(target, objects),
        "code_bytes": toolchain.code_bytes(target, objects),  # kernels + entry point, no constants
        "stack_bytes": None,
        "compile_seconds": round(compile_s, 2),
        "guards": bool(args.guards),
        "files": sorted([*(p.name for p in sources), *HEADERS]),
        "executable": str(exe.relative_to(out)),
        "memory": {
            "peak_step": peak_step(plan),
            "strategy": plan.layout.strategy,
            "proved_optimal": plan.layout.optimal,
            "steps": table,
        },
        "patch": None,
        "kernels": _kernel_summary(prog, db, target.name, compiled.kernel_aliases),
    }
    if info is not None:
        live = plan.live_bytes
        report["patch"] = {
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

    if args.run:
        data = _input_bytes(args, prog.nbytes(prog.input))
        result = toolchain.run(target, exe, data, prog.nbytes(prog.output))
        (out / "output.bin").write_bytes(result.output)
        x = np.frombuffer(data, np.int8).reshape(prog.shapes[prog.input])
        expected = run_reference(prog, x).tobytes()
        report["stack_bytes"] = result.stack_bytes
        run_info = {
            "bit_exact": result.output == expected,
            "bit_exact_layer_based": result.output == run_reference(compiled.layer_program, x).tobytes(),
            "instructions": result.instructions,
            "machine": target.qemu_machine,
        }
        tflm = _tflm(model, compiled.layer_program, x)
        if tflm is not None:
            run_info["bit_exact_tflm"] = result.output == tflm.output.tobytes()
            report["tflm_arena_bytes"] = tflm.arena_bytes
            report["tflm_tensor_arena_bytes"] = tflm.tensor_arena_bytes
        report["qemu" if target.qemu_machine else "host_run"] = run_info
        (out / "profile.json").unlink(missing_ok=True)
        if args.profile:
            from .profile import make_profile

            profile = make_profile(prog, result.step_instructions, result.instructions)
            (out / "profile.json").write_text(json.dumps(profile, indent=2) + "\n")
            run_info["instructions_per_mac"] = profile["instructions_per_mac"]
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _tflm(model, prog, x: np.ndarray):
    """TF Lite Micro on the same network: the .tflite itself, or our export of the integer program."""
    from .export.tflite_writer import program_to_tflite
    from .reference.tflm import run_tflm

    if model.tflite_path is not None:
        return run_tflm(model.tflite_path, x)
    try:
        return run_tflm(program_to_tflite(prog), x)
    except McunetError:
        return None  # not expressible in TFLite (e.g. a padding TFLite has no form for)


def _kernel_summary(prog, db, target: str, aliases: dict[str, str]) -> dict:
    """How many layers run SIMD micro-kernels (how many tuned), and how many C kernels they share."""
    from .kernels import kernel_schedule

    simd = [c for c in prog.calls if c.kernel and kernel_schedule(prog.kernels.get(c.kernel))]
    return {
        "layers": sum(1 for c in prog.calls if c.kernel),
        "kernel_functions": len({aliases.get(c.kernel, c.kernel) for c in prog.calls if c.kernel}),
        "simd_layers": len(simd),
        "tuned_layers": sum(1 for c in simd if db and db.best(target, c.op)),
        "tune_db": str(db.path) if db else None,
    }


def _parse_patch(text: str):
    """'none' | 'auto' | 'RxC@STEP' | 'N@STEP' -> the ``patch`` argument of ``compile_relax``."""
    text = text.strip().lower()
    if text in ("none", "auto"):
        return None if text == "none" else "auto"
    match = re.fullmatch(r"(\d+)(?:x(\d+))?@(\d+)", text)
    if match is None:
        raise McunetError(
            f"cannot read --patch '{text}'",
            where="--patch",
            hint="write none, auto, or a grid and the last step of the patch stage, e.g. 3x3@12 or 4@12",
        )
    rows = int(match.group(1))
    cols = int(match.group(2) or rows)
    return int(match.group(3)), (rows, cols)


def _summary(report: dict) -> str:
    lines = [
        f"model {report['model']} on {report['target']}",
        f"  MACs          {report['macs']:,}",
        f"  params        {report['params']:,}",
        f"  arena         {report['arena_bytes']:,} B (lower bound {report['arena_lower_bound_bytes']:,} B)",
        f"  flash         {report['flash_bytes']:,} B (model {report['model_flash_bytes']:,} B, of which code "
        f"{report['code_bytes']:,} B)",
    ]
    if report.get("patch"):
        pt = report["patch"]
        lines.append(
            f"  patches       {pt['grid'][0]}x{pt['grid'][1]} up to step {pt['split_step']} "
            f"({pt['mac_overhead']:+.1%} MACs; peak {pt['patch_stage_peak_bytes']:,} B in the patch stage, "
            f"{pt['rest_peak_bytes']:,} B after)"
        )
        if pt.get("stream_input"):
            lines.append("  input         streamed row band by row band (not in the arena)")
    if report.get("stack_bytes") is not None:
        lines.append(f"  stack         {report['stack_bytes']:,} B")
    run = report.get("qemu") or report.get("host_run")
    if run:
        if run.get("instructions") is not None:
            lines.append(f"  instructions  {run['instructions']:,}")
        lines.append(f"  bit-exact     {'yes' if run['bit_exact'] else 'NO'} (host reference)")
        if report.get("patch"):
            lines.append(f"  bit-exact     {'yes' if run['bit_exact_layer_based'] else 'NO'} (layer-based reference)")
        if "bit_exact_tflm" in run:
            lines.append(f"  bit-exact     {'yes' if run['bit_exact_tflm'] else 'NO'} (TF Lite Micro)")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m mcunet_tvm.build") -> int:
    args = parse_args(argv, prog)
    try:
        report = build(args)
    except McunetError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_code
    if not args.quiet:
        from .planner.report import text_bars

        print(text_bars(report["memory"]["steps"], report["arena_bytes"]))
    print(_summary(report))
    run = report.get("qemu") or report.get("host_run")
    if run and not (run["bit_exact"] and run["bit_exact_layer_based"] and run.get("bit_exact_tflm", True)):
        print(DeviceRunError("the device output differs from the reference").format(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
