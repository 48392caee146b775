"""``python -m mcunet_tvm.run``: run a board build on the board (or its emulation) from the host.

``--out DIR`` is a folder that ``python -m mcunet_tvm.build --board NAME --out DIR`` made: this
command does not build (a build takes minutes for large models, a run seconds, and one build serves
many runs). It takes the board project's image (``report.json``: ``board.firmware``), then:

* with ``--port``: flashes it with ``pyocd`` when installed (without pyocd, or with ``--no-flash``,
  the board must already run it: its answer to the ping is checked against the build), opens the
  port (pyserial when installed, else raw termios, 8N1 at the board's baud rate);
* without ``--port`` on an emulated board (netduinoplus2): starts QEMU with the board's UART on a
  Unix socket (``toolchain.serial_console``); without ``--port`` for a board QEMU does not emulate:
  an error (exit 2).

It then talks the framed protocol of :mod:`mcunet_tvm.board_link` over the UART: a ping (the board
answers with its name, clock in use, counter and tensor sizes, checked against the build), then the
input (``--input`` files, one per model input, or the build's own input, ``board/input.bin``); the
board answers with its output and the cycles (or, where the core has no cycle counter, as on QEMU,
instructions) of the inference and of every step. The output is checked bit-exactly against the
host reference: the build's ``board/reference.bin`` for the build's input, else the numpy reference
run on the model the build recorded (reloaded; its SHA-256 must still match). Writes
``DIR/board_run.json`` and ``DIR/board_output.bin``. Exit code 0 bit-exact, 1 not, 2 a usage or
device error (a wrong folder or board, inputs of the wrong size, a port that does not open, a board
running another firmware, no answer within ``--timeout`` seconds: QEMU's start, the pings and the
inference each get that long).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DeviceRunError, McunetError, ModelFileError, ToolchainError

if TYPE_CHECKING:
    from .board_link import Link

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from .boards import BOARDS
    from .build import _Parser

    p = _Parser(prog="python -m mcunet_tvm.run",
                description="Run a board build on the board (or QEMU for netduinoplus2) over its UART and check "
                "the output bit-exactly against the host reference.")
    p.add_argument("--board", required=True, help="the board: " + ", ".join(BOARDS))
    p.add_argument("--out", type=Path, required=True, help="the folder python -m mcunet_tvm.build --board made")
    p.add_argument("--port", help="the board's serial port (e.g. /dev/ttyACM0); without it an emulated board runs "
                   "on QEMU")
    p.add_argument("--baud", type=int, default=None, help="the UART's baud rate (default: the board's, 115200)")
    p.add_argument("--input", type=Path, action="append",
                   help="raw input bytes, once per model input (default: the build's input, board/input.bin)")
    p.add_argument("--no-flash", action="store_true", help="with --port: do not flash (the board runs the image)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the board (default 60)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p.parse_args(argv)


def load_build(board_name: str, out: Path) -> tuple[object, dict, Path]:
    """The board, the build's report and the board image; clear errors for a wrong name or folder."""
    from .boards import BOARDS, get_board

    board = get_board(board_name)
    if board is None:
        raise McunetError(f"unknown board '{board_name}'", where="--board", hint="use one of: " + ", ".join(BOARDS))
    build_hint = f"build it first: python -m mcunet_tvm.build --board {board.name} --model M --out {out}"
    if not out.is_dir():
        raise McunetError("the build folder does not exist", where=f"--out {out}", hint=build_hint)
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        raise McunetError("not a build folder (no readable report.json)", where=f"--out {out}",
                          hint=build_hint) from None
    if not isinstance(report, dict) or not isinstance(report.get("board"), dict):
        target = report.get("target") if isinstance(report, dict) else None
        raise McunetError(f"the folder is a build for the target '{target}', not for a board", where=f"--out {out}",
                          hint=f"build it with --board {board.name}")
    if report.get("target") != board.name:
        raise McunetError(f"the folder was built for the board '{report.get('target')}', not for {board.name}",
                          where=f"--out {out}", hint=f"build it with --board {board.name}, or give --board "
                          f"{report.get('target')}")
    info = report["board"]
    image = out / info.get("firmware", "")
    needed = [image, out / "board" / "input.bin", out / "board" / "reference.bin"]
    if not info.get("firmware") or not all(p.is_file() for p in needed):
        missing = next(p for p in needed if not info.get("firmware") or not p.is_file())
        raise McunetError("the build has no board image (or its board project is incomplete)", where=str(missing),
                          hint=f"rebuild it with this version: python -m mcunet_tvm.build --board {board.name} ...")
    return board, report, image


def tensor_bytes(shapes: list[list[int]], dtypes: list[str]) -> list[int]:
    """Bytes of every tensor of the given shapes and element types."""
    sizes = []
    for shape, dtype in zip(shapes, dtypes, strict=True):
        n = np.dtype(dtype).itemsize
        for d in shape:
            n *= d
        sizes.append(n)
    return sizes


def input_sizes(report: dict) -> list[int]:
    """Bytes of every model input, from the report's shapes and element types."""
    return tensor_bytes(report["input_shapes"], report["input_dtypes"])


def read_inputs(report: dict, out: Path, paths: list[Path] | None) -> list[bytes]:
    """The run's inputs: the ``paths`` (checked against the model's sizes) or the build's own input."""
    sizes = input_sizes(report)
    if not paths:
        data = (out / "board" / "input.bin").read_bytes()
        chunks, start = [], 0
        for n in sizes:
            chunks.append(data[start : start + n])
            start += n
        return chunks
    if len(paths) != len(sizes):
        raise ModelFileError(f"{len(paths)} input files for a model with {len(sizes)} inputs", where="--input",
                             hint="give --input once per model input, in the model's order")
    data = []
    for k, (path, n, dtype) in enumerate(zip(paths, sizes, report["input_dtypes"], strict=True)):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"cannot read the input file: {exc.strerror}", where=f"--input {path}") from None
        if len(raw) != n:
            which = f"input {k} of the model takes" if len(sizes) > 1 else "the model takes"
            shape = "x".join(map(str, report["input_shapes"][k]))
            raise ModelFileError(f"the input file has {len(raw)} bytes but {which} {n} ({shape} {dtype}, NHWC)",
                                 where=f"--input {path}", hint="give the tensor's raw bytes, nothing else")
        data.append(raw)
    return data


def reference_for(report: dict, out: Path, data: list[bytes]) -> bytes:
    """The host reference's output for ``data``: the build's own for its input, else recomputed."""
    from .api import _model_source, imported_program, reference_bytes

    board_dir = out / "board"
    if b"".join(data) == (board_dir / "input.bin").read_bytes():
        return (board_dir / "reference.bin").read_bytes()
    info = report["board"]
    spec = info["model"]
    try:
        same = _model_source(spec).sha256 == info["model_sha256"]
    except (OSError, McunetError):
        same = False
    if not same:
        raise ModelFileError("the model the build was made from is missing or changed, so there is no reference "
                             "for this input", where=spec, hint="rebuild the folder, or run without --input")
    calibration = Path(info["calibration"]) if info.get("calibration") else None
    return reference_bytes(imported_program(spec, calibration), data)


def flash(board, image: Path, timeout: float) -> None:
    """``pyocd flash`` the image; a :class:`ToolchainError` when pyocd fails."""
    cmd = ["pyocd", "flash", "-t", board.pyocd_target, str(image)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 120))
    except subprocess.TimeoutExpired:
        raise ToolchainError("pyocd did not finish flashing", where=" ".join(cmd)) from None
    if proc.returncode != 0:
        raise ToolchainError(f"flashing failed:\n{(proc.stdout + proc.stderr).strip()}", where=" ".join(cmd),
                             hint="is the board connected (its debug probe's USB port)?")


def check_port_or_emulation(board, port: str | None) -> None:
    """Without ``port``, the board must be one QEMU emulates; with it, the port must exist."""
    if port is None and board.qemu_machine is None:
        raise McunetError(f"QEMU does not emulate {board.name}: give its serial port", where="--port",
                          hint="e.g. --port /dev/ttyACM0 (the debug probe's virtual COM port)")
    if port is not None and not Path(port).exists():
        raise McunetError("the serial port does not exist", where=f"--port {port}",
                          hint="plug the board in; its port is e.g. /dev/ttyACM0 (ls /dev/tty*)")


def open_link(args: argparse.Namespace, board, image: Path, stack) -> Link:
    """The link to the board: QEMU started on ``image`` (its UART on a socket) without ``--port``;
    else the port opened, after flashing ``image`` with pyocd unless ``--no-flash`` or no pyocd."""
    from . import toolchain
    from .board_link import SocketLink, open_serial
    from .targets import get_target

    if args.port is None:
        target = get_target(board.name)
        toolchain.check_toolchain(target)
        return SocketLink(stack.enter_context(toolchain.serial_console(target, image, args.timeout)))
    if not args.no_flash and shutil.which("pyocd") is None:
        if not args.quiet:
            print("note: pyocd is not installed: not flashing; the board must already run this build's image "
                  "(board/README.md; the board's answer is checked against the build)", file=sys.stderr)
    elif not args.no_flash:
        flash(board, image, args.timeout)
    try:
        link = open_serial(args.port, args.baud or board.uart.baud)
    except (OSError, ValueError) as exc:
        raise McunetError(f"cannot open the serial port: {getattr(exc, 'strerror', None) or exc}",
                          where=f"--port {args.port}", hint="is it the board's port, and yours to open "
                          "(the dialout group)?") from None
    stack.callback(link.close)
    return link


def run_board(args: argparse.Namespace) -> dict:
    """Run once as ``args`` ask; the result (what ``board_run.json`` holds)."""
    from contextlib import ExitStack

    from .board_link import Session

    if args.timeout <= 0:
        raise McunetError(f"the time-out must be positive, not {args.timeout:g} s", where="--timeout")
    board, report, image = load_build(args.board, args.out)
    check_port_or_emulation(board, args.port)
    data = read_inputs(report, args.out, args.input)
    reference = reference_for(report, args.out, data)
    where = f"QEMU {board.qemu_machine}" if args.port is None else args.port
    expected = (board.name, sum(input_sizes(report)), sum(tensor_bytes(report["output_shapes"],
                                                                       report["output_dtypes"])))
    with ExitStack() as stack:
        session = Session(open_link(args, board, image, stack), timeout=args.timeout)
        try:
            info = session.connect()
            if (info.name, info.input_bytes, info.output_bytes) != expected:
                raise DeviceRunError(f"the board runs another firmware: {info.name}, {info.input_bytes} input and "
                                     f"{info.output_bytes} output bytes, not {expected[0]}, {expected[1]} and "
                                     f"{expected[2]} as this build", hint="flash this build's image "
                                     "(drop --no-flash)")
            result = session.infer(b"".join(data))
        except DeviceRunError as err:
            raise DeviceRunError(err.what, where=err.where or where, hint=err.hint) from None
        boot_text = session.text.decode(errors="replace").strip()
    if result.status != 0:
        raise DeviceRunError(f"the model returned status {result.status} on the board", where=where)
    if len(result.output) != len(reference):
        raise DeviceRunError(f"the board sent {len(result.output)} output bytes, not {len(reference)}", where=where)
    (args.out / "board_output.bin").write_bytes(result.output)
    summary = {
        "board": board.name, "where": where, "bit_exact": result.output == reference,
        "input": "build" if not args.input else [str(p) for p in args.input],
        "counter": result.counter, "count": result.total, "step_counts": result.steps,
        "core_hz": result.core_hz, "clock": "nominal" if info.clock_nominal else "reset",
        "nominal_hz": board.clock.core_hz, "self_check": boot_text.splitlines()[0] if boot_text else None,
    }
    (args.out / "board_run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def describe(s: dict) -> str:
    """One line: where it ran, bit-exactness, the count and the clock it was measured at."""
    reset = s["clock"] != "nominal"
    clock = f"core clock {s['core_hz']:,} Hz" + (
        f", the reset clock (the set-up to {s['nominal_hz']:,} Hz did not complete)" if reset else "")
    if s["counter"] == "cycles":
        count = f"{s['count']:,} cycles = {s['count'] / s['core_hz'] * 1e3:.3f} ms; {clock}"
    elif s["counter"] == "instructions":
        count = f"{s['count']:,} instructions (no cycle counter); {clock}"
    else:
        count = f"no counter; {clock}"
    exact = "output bit-exact with the host reference" if s["bit_exact"] else "output DIFFERS from the host reference"
    return f"{s['board']} ({s['where']}): {exact}; {count}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run_board(args)
    except McunetError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"\nthis is a bug in mcunet-tvm: please report it with the command line ({' '.join(sys.argv)})",
              file=sys.stderr)
        return 1
    if not args.quiet:
        print(describe(summary))
        for k, n in enumerate(summary["step_counts"]):
            print(f"  step {k:3d}: {n:,}")
        print(f"written: {args.out / 'board_run.json'}, {args.out / 'board_output.bin'}")
    if not summary["bit_exact"]:
        print(DeviceRunError("the board's output differs from the host reference").format(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
