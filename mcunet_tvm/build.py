"""``python -m mcunet_tvm.build``: compile a model to bare-metal C and an ELF, optionally run it.

Writes into ``--out``: the generated C sources and headers (a self-contained
folder to drop into a firmware project), ``firmware/`` with the ELF (or host
executable) built around them, ``report.json``, and with ``--run`` the raw
int8 output as ``output.bin``. This module parses the command line into
:class:`~mcunet_tvm.api.BuildOptions` and presents the result; the build
itself is :func:`mcunet_tvm.api.build`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from .api import BuildOptions, BuildResult, PatchSpec
from .errors import DeviceRunError, McunetError


def add_build_arguments(p: argparse.ArgumentParser, profile: bool = False) -> None:
    """The options of a build; ``profile``: for ``mcunet_tvm.profile`` (no --run/--profile, --out optional)."""
    p.add_argument(
        "--target",
        default="cortex-m7",
        help="cortex-m4 (QEMU mps2-an386), cortex-m7 (mps2-an500), cortex-m55 (mps3-an547)"
        + ("" if profile else " or host") + ", or a board's name (see --board; default: cortex-m7)",
    )
    if not profile:
        p.add_argument(
            "--board",
            help="a real board, the same as --target NAME: netduinoplus2 (STM32F405, runs on QEMU), "
            "stm32f746g-disco, nucleo-h743zi, nucleo-l4r5zi, nrf52840dk (build-only: a flashable project in "
            "OUT/board/); the board's memory map is checked against the arena and the image",
        )
    p.add_argument(
        "--model",
        help="a built-in zoo name (see --list-models), an int8 .tflite file (full-integer; float32 edges allowed), "
        "a torch.export .pt2 program, or an MCUNet/ProxylessNAS .json net config",
    )
    p.add_argument("--list-models", action="store_true", help="print the built-in zoo's model names and exit")
    if profile:
        p.add_argument("--out", type=Path, default=Path("build") / "profile",
                       help="output folder (default build/profile; replaced when the build succeeds)")
    else:
        p.add_argument("--out", type=Path, help="output folder (created; replaced only when the build succeeds)")
        p.add_argument(
            "--run",
            action="store_true",
            help="run one inference on QEMU (or the host), write output.bin and check it bit-exactly "
            "against the host reference (and TF Lite Micro for .tflite models)",
        )
    p.add_argument(
        "--input",
        type=Path,
        action="append",
        help="raw input bytes (NHWC; int8, int16 little-endian for a 16x8 model, or float32 little-endian for "
        "a float input) for the run; repeat it "
        "once per model input, in the model's order; "
        "default: a seeded random input",
    )
    p.add_argument("--seed", type=_count, default=0, help="seed of the random input (default 0)")
    p.add_argument(
        "--calibration",
        type=Path,
        help="PyTorch models (.pt2, .json): a .npy of float32 NCHW samples for post-training quantisation "
        "(default: seeded synthetic images)",
    )
    p.add_argument("--sram-budget", help="fail if the activation arena exceeds this, e.g. 256KB (K = 1024)")
    p.add_argument("--flash-budget", help="fail if the whole image's flash exceeds this, e.g. 1MB (M = 1024²)")
    p.add_argument(
        "--patch",
        default="none",
        help="patch-based inference of the first stage (MCUNetV2): none (default), auto (search the split "
        "step and grid for the lowest peak, or with --sram-budget the fewest extra MACs that fit), or "
        "RxC@STEP / N@STEP (an R x C grid of patches for steps 0..STEP of the memory table)",
    )
    p.add_argument(
        "--max-mac-overhead",
        type=_fraction,
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
        "--no-views",
        action="store_true",
        help="copy every CONCATENATION and slice (SPLIT, SLICE, ...) with a kernel, also where its tensors could "
        "be views of one buffer (the default makes contiguous ones views: no copy; for comparison)",
    )
    p.add_argument(
        "--guards",
        action="store_true",
        help="test build: guard bytes around the arena and every tensor, checked after every step on the device",
    )
    if not profile:
        p.add_argument(
            "--profile",
            action="store_true",
            help="implies --run: measure every operator's instructions on the emulated core, print the table "
            "and write profile.json (also: python -m mcunet_tvm.profile)",
        )
        p.add_argument(
            "--cycles",
            action="store_true",
            help="with --run on cortex-m4/m7: also estimate the run's cycles with a timing model (an estimate, "
            "not a measurement: mcunet_tvm/cycles) into report.json cycles_estimate (always on with --profile)",
        )
    p.add_argument(
        "--flash-wait-states",
        type=_count,
        default=0,
        help="flash wait states the cycle model charges per branch refill and per data read from flash "
        "(default 0: zero-wait-state memory)",
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
        "layer's sizes at run time and layers share them (less flash, more instructions: see "
        "docs/BENCHMARKS.md)",
    )
    p.add_argument(
        "--tune",
        type=_count,
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
    p.add_argument("--name", default="mcunet",
                   help="the C library's name: files NAME_model.{c,h}, NAME_kernels.{c,h}, every symbol NAME_..., "
                   "every macro NAME_... in upper case, so that several models link into one firmware "
                   "(default mcunet)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give a count >= 0")
    return value


def _fraction(text: str) -> float:
    """argparse type: a finite fraction >= 0 (0.05 = 5 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number (e.g. 0.05 for 5 %)") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction >= 0 (e.g. 0.05 for 5 %)")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with our error format (``error: ...``, ``fix: ...``) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        err = McunetError(message, where=self.prog, hint=f"see {self.prog} --help")
        print(err.format(), file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(
        prog="python -m mcunet_tvm.build",
        description="Compile an int8 CNN for a Cortex-M microcontroller (bare-metal C + ELF) "
        "and optionally run it on QEMU, checking the output bit-exactly against a host reference.",
    )
    add_build_arguments(p)
    args = p.parse_args(argv)
    _require(p, args, "--out")
    if args.board and args.target != p.get_default("target"):
        p.error("give --board or --target, not both")
    if args.profile:
        args.run = True
    return args


def _require(p: argparse.ArgumentParser, args: argparse.Namespace, *flags: str) -> None:
    """--model (and the given flags) are required unless --list-models only lists the zoo."""
    if args.list_models:
        return
    for flag in ("--model", *flags):
        if getattr(args, flag[2:].replace("-", "_")) is None:
            p.error(f"the following argument is required: {flag}")


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    """The build the parsed command line asks for."""
    from .presentation import parse_size

    say = None if args.quiet else (lambda line: print(line, flush=True))
    return BuildOptions(
        model=args.model, out=args.out, target=getattr(args, "board", None) or args.target,
        run=getattr(args, "run", True),
        inputs=tuple(args.input or ()),
        seed=args.seed, calibration=args.calibration,
        sram_budget=parse_size(args.sram_budget, "--sram-budget") if args.sram_budget is not None else None,
        flash_budget=parse_size(args.flash_budget, "--flash-budget") if args.flash_budget is not None else None,
        patch=_parse_patch(args.patch), max_mac_overhead=args.max_mac_overhead, stream_input=args.stream_input,
        guards=args.guards, views=not args.no_views, profile=getattr(args, "profile", True), kernels=args.kernels,
        optimize=args.optimize,
        tune=args.tune, name=args.name, cycles=getattr(args, "cycles", False),
        flash_wait_states=args.flash_wait_states,
        tune_db=args.tune_db, progress=say,
    )


def _parse_patch(text: str) -> PatchSpec:
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


def run_cli(options: Callable[[], BuildOptions], present: Callable[[BuildResult], None]) -> int:
    """Build the ``options()`` (reading them may fail too: a size that does not parse), ``present`` the
    result; the exit code (2: a user error, 1: not bit-exact)."""
    from .api import build

    try:
        result = build(options())
    except McunetError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted (the output folder was left as it was)", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"\nthis is a bug in mcunet-tvm, not in your input: please report it with the command line "
              f"({' '.join(sys.argv)}) and the model file", file=sys.stderr)
        return 1
    present(result)
    if not result.bit_exact:
        print(DeviceRunError("the device output differs from the reference").format(), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from .presentation import build_summary, format_profile, text_bars

    args = parse_args(argv)
    if args.list_models:
        return list_models()

    def present(result: BuildResult) -> None:
        if args.quiet:
            return
        report = result.report
        print(text_bars(report["memory"]["steps"], report["arena_bytes"]))
        print(build_summary(report))
        if result.profile is not None:
            print()
            print(format_profile(result.profile))
        print(f"written: {args.out}/")

    return run_cli(lambda: options_from_args(args), present)


def list_models() -> int:
    """``--list-models``: the zoo's names, one per line."""
    from .frontend.zoo import list_models as names

    print("\n".join(names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
