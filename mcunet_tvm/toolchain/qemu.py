"""Run a built model once: on QEMU for Cortex-M targets, natively for the host.

QEMU runs with ``-icount shift=7`` (deterministic virtual time, see
``mcunet_tvm/runtime_c/common/main_qemu.c``) and semihosting rooted in a temporary
directory holding ``input.bin``; the harness leaves ``output.bin`` and
``stats.txt`` (instructions per step, total, stack high-water mark). :func:`serial_console` runs a
board project's image instead, its UART on a socket (``python -m mcunet_tvm.run``).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeviceRunError
from ..targets import TargetSpec

ICOUNT_SHIFT = 7
#: a board project on QEMU (:func:`serial_console`): -icount as in :func:`run`, but ``sleep=on``: with
#: ``sleep=off`` QEMU's main loop, which moves the UART's bytes, starves while the guest polls the UART
#: (the board's answer comes out only when the next input arrives). Inside an inference the guest
#: never sleeps, so its instruction counts are as exact as with ``sleep=off``.
ICOUNT_ARGS = ["-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=on"]


@dataclass
class RunResult:
    """What one inference produced."""

    output: bytes
    instructions: int | None = None
    stack_bytes: int | None = None
    step_instructions: list[int] = field(default_factory=list)
    exit_code: int = 0


def _qemu_cmd(target: TargetSpec, exe: Path) -> list[str]:
    return [
        "qemu-system-arm", "-machine", target.qemu_machine, "-nographic", "-monitor", "none",
        "-serial", "none", "-semihosting-config", "enable=on,target=native",
        "-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=off", "-kernel", str(exe.resolve()),
    ]


def _parse_stats(text: str) -> tuple[int | None, int, list[int]]:
    """(instructions or None when the board has no counter, stack bytes, instructions per step)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        values[key] = int(value)
    steps = [values[k] for k in sorted((k for k in values if k.startswith("step")), key=lambda k: int(k[4:]))]
    return values.get("instructions"), values["stack_bytes"], steps


def run(target: TargetSpec, exe: Path, input_bytes: bytes, output_size: int, timeout_s: float = 600) -> RunResult:
    """Run ``exe`` on ``input_bytes``; raises :class:`DeviceRunError` on any failure."""
    with tempfile.TemporaryDirectory(prefix="mcunet-run-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(input_bytes)
        if target.qemu_machine:
            cmd = _qemu_cmd(target, exe)
        else:
            cmd = [str(exe.resolve()), "input.bin", "output.bin"]
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DeviceRunError(f"the program did not finish within {timeout_s:.0f} s", where=str(exe)) from None
        out_path = work / "output.bin"
        if proc.returncode != 0 or not out_path.exists():
            detail = (proc.stdout + proc.stderr).strip()
            raise DeviceRunError(f"the program failed (exit code {proc.returncode}): {detail}", where=str(exe))
        output = out_path.read_bytes()
        if len(output) != output_size:
            raise DeviceRunError(f"expected {output_size} output bytes, got {len(output)}", where=str(exe))
        result = RunResult(output=output, exit_code=proc.returncode)
        stats = work / "stats.txt"
        if stats.exists():
            result.instructions, result.stack_bytes, result.step_instructions = _parse_stats(stats.read_text())
        return result


@contextmanager
def serial_console(target: TargetSpec, exe: Path, timeout_s: float = 30) -> Iterator[socket.socket]:
    """Run ``exe`` on the emulated board with its first UART (``-serial``) on a Unix socket; the
    connected socket while QEMU runs (killed on exit). ``-icount`` as in :func:`run`, so that the
    board's instruction counter counts instructions (:data:`ICOUNT_ARGS`)."""
    with tempfile.TemporaryDirectory(prefix="mcunet-serial-") as tmp:
        path = Path(tmp) / "console.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        server.settimeout(0.2)
        cmd = ["qemu-system-arm", "-machine", target.qemu_machine, "-display", "none", "-monitor", "none",
               "-chardev", f"socket,id=console,path={path}", "-serial", "chardev:console",
               *ICOUNT_ARGS, "-kernel", str(exe.resolve())]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        conn = None
        try:
            deadline = time.monotonic() + timeout_s
            while conn is None:
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()
                        detail = proc.communicate()[1].decode(errors="replace").strip()
                        raise DeviceRunError(f"QEMU did not connect its serial port (exit code {proc.returncode})"
                                             + (f": {detail}" if detail else ""), where=" ".join(cmd)) from None
            yield conn
        finally:
            if conn is not None:
                conn.close()
            server.close()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
