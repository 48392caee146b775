"""``python -m mcunet_tvm.run``: a board build run from the host over its UART.

netduinoplus2 on QEMU (its UART on a socket, and on a pty as a stand-in serial port for ``--port``),
bit-exact with the host reference on the build's input and on a user's; the host side of the framed
protocol against a Python board over a pty (noise, broken frames, late answers, errors, silence);
pyocd flashing with a stand-in ``pyocd``; every usage error a clear message with exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mcunet_tvm import board_link, run
from mcunet_tvm.board_link import FrameError, Session, decode, encode
from mcunet_tvm.boards import BOARDS
from mcunet_tvm.toolchain.qemu import ICOUNT_ARGS, serial_console

from conftest import FIXTURES, ROOT

MODEL = FIXTURES / "tiny_cnn.tflite"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """tiny_cnn built for netduinoplus2 (once for the module; tests must not change it)."""
    from mcunet_tvm.build import main

    out = tmp_path_factory.mktemp("nd") / "out"
    assert main(["--board", "netduinoplus2", "--model", str(MODEL), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def work(build, tmp_path) -> Path:
    """A copy of the build (without its objects and earlier runs' results) a test may change."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(build, out, ignore=shutil.ignore_patterns("obj", "board_run.json", "board_output.bin"))
    return out


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = run.main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


# ---- on QEMU: the real firmware ----


def test_cli_runs_the_board_on_qemu_bit_exact(build) -> None:
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.run", "--board", "netduinoplus2", "--out", str(build)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "netduinoplus2 (QEMU netduinoplus2): output bit-exact with the host reference" in proc.stdout
    result = json.loads((build / "board_run.json").read_text())
    report = json.loads((build / "report.json").read_text())
    assert (build / "board_output.bin").read_bytes() == (build / "board" / "reference.bin").read_bytes()
    assert result["bit_exact"] is True and result["where"] == "QEMU netduinoplus2" and result["input"] == "build"
    # no DWT on QEMU: TIM2 under -icount counts instructions; one count per step of the plan
    assert result["counter"] == "instructions" and result["count"] > report["macs"]
    assert len(result["step_counts"]) == len(report["memory"]["steps"])
    assert 0.9 * result["count"] < sum(result["step_counts"]) <= result["count"]
    # QEMU 7.2 has no STM32F4 RCC: the clock set-up times out and the firmware says it runs at the reset clock
    assert (result["core_hz"], result["clock"]) == (BOARDS["netduinoplus2"].reset_hz, "reset")
    assert result["self_check"].startswith("mcunet: netduinoplus2 output ok (bit-exact), ")


def test_user_input_on_qemu_is_checked_against_the_reference(work, tmp_path, capsys) -> None:
    from mcunet_tvm.api import imported_program, reference_bytes

    data = np.random.default_rng(7).integers(-128, 128, 16 * 16 * 3, dtype=np.int8).tobytes()
    (tmp_path / "x.bin").write_bytes(data)
    code, out, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--input", str(tmp_path / "x.bin"))
    assert code == 0, out + err
    output = (work / "board_output.bin").read_bytes()
    assert output == reference_bytes(imported_program(str(MODEL)), [data])
    assert output != (work / "board" / "reference.bin").read_bytes()  # the input did reach the board
    assert json.loads((work / "board_run.json").read_text())["input"] == [str(tmp_path / "x.bin")]


@pytest.fixture
def qemu_pty(build) -> Iterator[str]:
    """The build's board image on QEMU with its UART on a pty: a serial port as a real board has."""
    import select

    proc = subprocess.Popen(["qemu-system-arm", "-machine", "netduinoplus2", "-display", "none", "-monitor", "none",
                             "-chardev", "pty,id=uart", "-serial", "chardev:uart", *ICOUNT_ARGS,
                             "-kernel", str(build / "firmware" / "board.elf")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:  # QEMU names the pty on its stdout: "char device redirected to /dev/pts/N (label uart)"
        assert select.select([proc.stdout], [], [], 30)[0], "QEMU did not start"
        line = proc.stdout.readline()
        found = re.search(r"(/dev/pts/\d+)", line)
        assert found, line
        yield found.group(1)
    finally:
        proc.kill()
        proc.communicate()


def test_port_path_talks_to_the_firmware_over_a_serial_line(work, qemu_pty, capsys) -> None:
    for _ in range(2):  # the board serves run after run without a reset (as with --no-flash on hardware)
        code, out, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", qemu_pty,
                              "--no-flash", "--timeout", "20")
        assert code == 0, out + err
        assert f"netduinoplus2 ({qemu_pty}): output bit-exact" in out
    assert json.loads((work / "board_run.json").read_text())["where"] == qemu_pty


def test_firmware_answers_broken_frames_with_error_frames_and_stays_in_step(build) -> None:
    from mcunet_tvm.targets import get_target

    image = build / "firmware" / "board.elf"
    good = (build / "board" / "input.bin").read_bytes()
    with serial_console(get_target("netduinoplus2"), image, 20) as sock:
        session = Session(board_link.SocketLink(sock), timeout=20)
        info = session.connect()
        assert (info.name, info.input_bytes, info.output_bytes) == ("netduinoplus2", len(good), 5)
        bad_crc = bytearray(encode("X", good))
        bad_crc[-1] ^= 0xFF
        sent = [bytes(bad_crc), encode("X", good[:-1]), encode("Q", b"abc")]
        for frame, code in zip(sent, (1, 2, 3), strict=True):
            session.link.write(frame)
            kind, body = session.frame(time.monotonic() + 10)
            while kind == "I":  # a late answer to a second ping while the self-check ran
                kind, body = session.frame(time.monotonic() + 10)
            assert kind == "E" and struct.unpack_from("<I", body)[0] == code, body
        result = session.infer(good)
    assert result.status == 0 and result.output == (build / "board" / "reference.bin").read_bytes()


# ---- the host side of the protocol against a Python board over a pty ----


class FakeBoard(threading.Thread):
    """A board speaking the protocol on a pty's master side; ``answer(kind, payload)`` gives its frames."""

    def __init__(self, answer: Callable[[str, bytes], list[bytes]], noise: bytes = b"") -> None:
        super().__init__(daemon=True)
        self.master, slave = os.openpty()
        self.port = os.ttyname(slave)
        os.close(slave)
        self.answer, self.noise, self.received = answer, noise, []
        self.stop = threading.Event()

    def run(self) -> None:
        import select

        buf = b""
        sent_noise = False
        while not self.stop.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                buf += os.read(self.master, 65536)
            except OSError:  # the host closed its side (EIO) and has not opened it again
                time.sleep(0.01)
                continue
            while (got := decode(buf)) is not None:
                kind, payload, used = got
                buf = buf[used:]
                self.received.append((kind, payload))
                if not sent_noise:  # text and a broken frame before the first answer, as after a reset
                    os.write(self.master, self.noise)
                    sent_noise = True
                for frame in self.answer(kind, payload):
                    os.write(self.master, frame)

    def __enter__(self) -> FakeBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()
        os.close(self.master)


def info_frame(name: str = "netduinoplus2", nin: int = 768, nout: int = 5, steps: int = 9) -> bytes:
    return encode("I", struct.pack("<7I", 1, 168_000_000, 1, 1, nin, nout, steps) + name.encode())


def result_frame(output: bytes, steps: list[int], status: int = 0) -> bytes:
    body = struct.pack("<iIIII", status, 1, sum(steps) + 40, 168_000_000, len(steps))
    return encode("R", body + struct.pack(f"<{len(steps)}I", *steps) + output)


def board_answering(output: bytes, steps: list[int], info: bytes | None = None, pings_answered: int = 1):
    """Answers ``info`` to a ping (``pings_answered`` times: late duplicates), ``output`` to an input."""
    def answer(kind: str, payload: bytes) -> list[bytes]:
        if kind == "P":
            return [info or info_frame(steps=len(steps))] * pings_answered
        return [result_frame(output, steps)]
    return answer


def test_host_side_survives_noise_broken_frames_and_late_answers(work, capsys) -> None:
    reference = (work / "board" / "reference.bin").read_bytes()
    steps = list(range(100, 109))
    broken = bytearray(info_frame())
    broken[-2] ^= 1
    noise = b"mcunet: netduinoplus2 output ok (bit-exact)\r\n" + bytes(broken) + b"\xa5garbage"
    with FakeBoard(board_answering(reference, steps, pings_answered=3), noise=noise) as board:
        code, out, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port,
                              "--no-flash", "--timeout", "5")
    assert code == 0, out + err
    assert [k for k, _ in board.received] == ["P", "X"]
    assert board.received[1][1] == (work / "board" / "input.bin").read_bytes()
    result = json.loads((work / "board_run.json").read_text())
    assert (result["counter"], result["count"], result["step_counts"]) == ("cycles", sum(steps) + 40, steps)
    assert (result["core_hz"], result["clock"]) == (168_000_000, "nominal")
    assert result["self_check"] == "mcunet: netduinoplus2 output ok (bit-exact)"
    assert f"{sum(steps) + 40:,} cycles = 0.006 ms; core clock 168,000,000 Hz\n" in out


def test_an_output_that_differs_exits_1_and_is_kept(work, capsys) -> None:
    wrong = bytearray((work / "board" / "reference.bin").read_bytes())
    wrong[2] ^= 0x40
    with FakeBoard(board_answering(bytes(wrong), [1] * 9)) as board:
        code, out, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port,
                              "--no-flash")
    assert code == 1 and "differs from the host reference" in err and "Traceback" not in err
    assert "output DIFFERS from the host reference" in out
    assert (work / "board_output.bin").read_bytes() == bytes(wrong)
    assert json.loads((work / "board_run.json").read_text())["bit_exact"] is False


@pytest.mark.parametrize(("info", "needle"), [
    (info_frame(name="nucleo-h743zi"), "the board runs another firmware: nucleo-h743zi, 768 input and 5 output"),
    (info_frame(nin=3072), "3072 input and 5 output bytes, not netduinoplus2, 768 and 5"),
], ids=["name", "sizes"])
def test_a_board_running_another_firmware_is_refused(work, capsys, info: bytes, needle: str) -> None:
    with FakeBoard(board_answering(b"", [], info=info)) as board:
        code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port,
                            "--no-flash")
    _clean_error(code, err, needle, "drop --no-flash", f"where: {board.port}")


def test_a_board_error_frame_and_a_silent_board_are_clear_errors(work, capsys) -> None:
    def refuses(kind: str, payload: bytes) -> list[bytes]:
        return [info_frame()] if kind == "P" else [encode("E", struct.pack("<I", 2) + b"wrong payload length")]

    with FakeBoard(refuses) as board:
        code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port,
                            "--no-flash")
    _clean_error(code, err, "the board answered with an error: wrong length (wrong payload length)")
    with FakeBoard(lambda kind, payload: []) as board:
        start = time.monotonic()
        code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port,
                            "--no-flash", "--timeout", "1")
    _clean_error(code, err, "no answer from the board within 1 s", "--timeout")
    assert time.monotonic() - start < 10
    assert not (work / "board_run.json").exists()


def test_flashes_with_pyocd_when_installed(work, tmp_path, capsys, monkeypatch) -> None:
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "pyocd"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ -z "$PYOCD_FAIL" ] || {{ echo "No probe found" >&2; '
                    f"exit 1; }}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    reference = (work / "board" / "reference.bin").read_bytes()
    with FakeBoard(board_answering(reference, [1] * 9)) as board:
        code, out, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port)
        assert code == 0, out + err
        assert calls.read_text().split() == ["flash", "-t", "stm32f405rg", str(work / "firmware" / "board.elf")]
        monkeypatch.setenv("PYOCD_FAIL", "1")
        code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", board.port)
    _clean_error(code, err, "flashing failed:\nNo probe found", "pyocd flash -t stm32f405rg")


def test_a_board_slow_to_answer_is_pinged_until_the_line_is_quiet() -> None:
    pings = []

    def slow(kind: str, payload: bytes) -> list[bytes]:
        pings.append(kind)
        if kind == "P" and len(pings) == 1:
            time.sleep(0.5)  # still busy (its self-check): answers the first two pings late, back to back
        return [info_frame()] if kind == "P" else [result_frame(b"\x01" * 5, [7] * 9)]

    with FakeBoard(slow) as board:
        session = Session(board_link.open_serial(board.port, 115200), timeout=5)
        try:
            assert session.connect(ping_every=0.3, quiet=0.2).name == "netduinoplus2"
            result = session.infer(bytes(768))
        finally:
            session.link.close()
    # the input went out only after a ping answered at once: no late answer was on the line
    assert [k for k, _ in board.received] == ["P", "P", "P", "X"]
    assert (result.output, result.steps, result.counter) == (b"\x01" * 5, [7] * 9, "cycles")


def test_frames_encode_decode_and_resynchronise() -> None:
    frame = encode("X", b"\xa5\x5a\x00payload")
    assert frame[:2] == b"\xa5\x5a" and decode(b"text" + frame + b"rest") == ("X", b"\xa5\x5a\x00payload",
                                                                             4 + len(frame))
    for cut in range(len(frame)):
        assert decode(frame[:cut]) is None  # incomplete: wait for more
    with pytest.raises(FrameError, match="bad checksum"):
        decode(frame[:-1] + bytes([frame[-1] ^ 1]))
    with pytest.raises(FrameError, match="beyond any payload"):
        decode(b"\xa5\x5aR" + struct.pack("<I", 1 << 30))

    class Trickle:  # one byte at a time, as a slow UART gives them
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, n: int, timeout: float) -> bytes:
            head, self.data = self.data[:1], self.data[1:]
            return head

    bad_crc = encode("R", b"payload")
    bad_crc = bad_crc[:-1] + bytes([bad_crc[-1] ^ 1])
    noise = b"boot\xa5" + bad_crc + b"\xa5\x5aQ" + struct.pack("<I", 1000) + b"\xa5"  # a type no board sends
    session = Session(Trickle(noise + encode("R", b"ok") + b"\xa5"), timeout=1)  # type: ignore[arg-type]
    assert session.frame(time.monotonic() + 5) == ("R", b"ok")
    assert session.text.startswith(b"boot\xa5") and session.bad_frames == 2


# ---- usage errors: exit 2, a message, no traceback ----


def test_the_build_folder_and_board_are_checked(work, tmp_path, capsys) -> None:
    code, _, err = _run(capsys, "--board", "nucleo-h743zi", "--out", str(work))
    _clean_error(code, err, "built for the board 'netduinoplus2', not for nucleo-h743zi", "--board netduinoplus2")
    code, _, err = _run(capsys, "--board", "pico", "--out", str(work))
    _clean_error(code, err, "unknown board 'pico'", "netduinoplus2")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(tmp_path / "nowhere"))
    _clean_error(code, err, "the build folder does not exist", "python -m mcunet_tvm.build --board netduinoplus2")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(tmp_path))
    _clean_error(code, err, "not a build folder (no readable report.json)")
    host = tmp_path / "host"
    host.mkdir()
    (host / "report.json").write_text(json.dumps({"target": "cortex-m4", "board": None}))
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(host))
    _clean_error(code, err, "a build for the target 'cortex-m4', not for a board")
    (work / "firmware" / "board.elf").unlink()
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work))
    _clean_error(code, err, "the build has no board image", "board.elf")
    with pytest.raises(SystemExit) as exit_:
        run.main(["--board", "netduinoplus2"])
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err


def test_inputs_are_checked_against_the_model(work, tmp_path, capsys) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(bytes(7))
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--input", str(short))
    _clean_error(code, err, "the input file has 7 bytes but the model takes 768 (1x16x16x3 int8, NHWC)")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--input", str(short),
                        "--input", str(short))
    _clean_error(code, err, "2 input files for a model with 1 inputs")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--input", str(tmp_path / "no.bin"))
    _clean_error(code, err, "cannot read the input file", "no.bin")


def test_a_board_qemu_cannot_emulate_needs_a_port(work, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(BOARDS, "netduinoplus2", dataclasses.replace(BOARDS["netduinoplus2"], qemu_machine=None))
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work))
    _clean_error(code, err, "QEMU does not emulate netduinoplus2: give its serial port", "--port /dev/ttyACM0")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", str(tmp_path / "ttyX"))
    _clean_error(code, err, "the serial port does not exist")
    (tmp_path / "plain").write_text("")
    code, _, err = _run(capsys, "--board", "netduinoplus2", "--out", str(work), "--port", str(tmp_path / "plain"),
                        "--no-flash")
    _clean_error(code, err, "cannot open the serial port: not a serial port")
