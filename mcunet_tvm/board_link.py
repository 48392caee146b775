"""The host's side of the board protocol: frames over a serial line or a socket.

A frame (both directions; the board's side is ``runtime_c/common/main_board.c``)::

    0xA5 0x5A | type (1 byte) | length N (u32 little-endian) | payload (N bytes) | CRC-32 (u32 LE)

The CRC is IEEE 802.3 (:func:`zlib.crc32`) of type, length and payload. Bytes before the start
marker are skipped (the board prints its self-check line as text after reset; text never holds
0xA5). Frames:

* host ``P`` (ping, empty) -> board ``I``: u32 version, core Hz, clock nominal (1) or reset (0),
  counter kind, input bytes, output bytes, steps; then the board's name;
* host ``X`` (the input bytes) -> board ``R``: i32 status, u32 counter kind, total count, core Hz,
  steps, one u32 count per step; then the output bytes;
* board ``E``: u32 code (1 checksum, 2 length, 3 type, 4 time-out inside a frame), then a message.

Counter kinds: 1 core clock cycles (the DWT), 2 instructions (no DWT: QEMU, whose TIM2 counts
instructions under ``-icount``), 0 none. The board receives polled, one byte at a time: the host
waits for the ``I`` answer to a ping before sending an input (a busy board would lose bytes), and
pings again every 2 s until one comes (longer than the board's 1 s wait inside a frame, so a board
that lost bytes of a ping gives up on it, answers ``E`` and is in step for the next); after more
than one ping it waits for the line to go quiet and pings once more, so that the input does not
meet a late answer on the wire. Answers to earlier pings that still arrive are skipped; a frame
that does not decode (a bad checksum, a type no board sends, an absurd length) is skipped from its
marker on, and the search goes on after it.

Links: :class:`SocketLink` (QEMU's ``-serial`` on a Unix socket) and :func:`open_serial` (pyserial
when installed, else the tty in raw mode through :mod:`termios`). No third-party package is needed.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Protocol

from .errors import DeviceRunError

MAGIC = b"\xa5\x5a"
HEADER = struct.Struct("<BI")  # type, length
MAX_PAYLOAD = 16 * 1024 * 1024
PROTOCOL_VERSION = 1
COUNTERS = {0: "no counter", 1: "cycles", 2: "instructions"}
ERRORS = {1: "bad checksum", 2: "wrong length", 3: "unknown frame type", 4: "time-out inside a frame"}


class FrameError(DeviceRunError):
    """A frame that does not decode: truncated, a bad checksum, or an absurd length."""


def encode(kind: str, payload: bytes = b"") -> bytes:
    """The frame of type ``kind`` (one character) carrying ``payload``."""
    body = HEADER.pack(ord(kind), len(payload)) + payload
    return MAGIC + body + struct.pack("<I", zlib.crc32(body))


def decode(data: bytes, kinds: str | None = None, max_payload: int = MAX_PAYLOAD) -> tuple[str, bytes, int] | None:
    """The first frame of ``data`` (bytes before its marker skipped): (type, payload, end of the frame
    in ``data``); None while it is incomplete (no marker yet, or the frame not all there). A
    :class:`FrameError` when the bytes after the first marker are no intact frame: a bad checksum, a
    length over ``max_payload``, a type not in ``kinds`` (when given: told as soon as the header is in,
    not after waiting for a length of noise)."""
    start = data.find(MAGIC)
    if start < 0:
        return None
    head = start + 2
    if len(data) < head + HEADER.size:
        return None
    kind, length = HEADER.unpack_from(data, head)
    if kinds is not None and chr(kind) not in kinds:
        raise FrameError(f"unknown frame type 0x{kind:02x}")
    if length > max_payload:
        raise FrameError(f"frame length {length} is beyond any payload")
    end = head + HEADER.size + length
    if len(data) < end + 4:
        return None
    (crc,) = struct.unpack_from("<I", data, end)
    if crc != zlib.crc32(data[head:end]):
        raise FrameError("bad checksum")
    return chr(kind), bytes(data[head + HEADER.size : end]), end + 4


class Link(Protocol):
    """A byte pipe to the board."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, fewer (maybe none) when ``timeout`` seconds pass first; a
        :class:`DeviceRunError` when the other end is gone."""
        ...

    def close(self) -> None: ...


def _gone(what: str) -> DeviceRunError:
    return DeviceRunError(f"the connection to the board closed ({what})",
                          hint="the board was reset or unplugged, or the emulator stopped")


class SocketLink:
    """A connected socket (QEMU's ``-chardev socket``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _gone(exc.strerror or "write failed") from None

    def read(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 1e-3))
        try:
            data = self.sock.recv(n)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise _gone(exc.strerror or "read failed") from None
        if not data:
            raise _gone("end of stream")
        return data

    def close(self) -> None:
        self.sock.close()


class TtyLink:
    """A serial port in raw mode, 8N1, through :mod:`termios` (when pyserial is not installed)."""

    def __init__(self, port: str, baud: int) -> None:
        import termios
        import tty

        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise ValueError(f"{baud} baud is not a rate the terminal driver knows")
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(self.fd)
            attrs = termios.tcgetattr(self.fd)
            attrs[4] = attrs[5] = speed
            attrs[2] = (attrs[2] & ~(termios.PARENB | termios.CSTOPB | termios.CSIZE)) | termios.CS8 | termios.CLOCAL
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
            termios.tcflush(self.fd, termios.TCIOFLUSH)
        except termios.error as exc:
            os.close(self.fd)
            raise ValueError(f"not a serial port ({exc.args[-1]})") from None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise _gone(exc.strerror or "write failed") from None

    def read(self, n: int, timeout: float) -> bytes:
        import select

        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = os.read(self.fd, n)
        except OSError as exc:  # EIO: a pty whose other side closed, a USB port unplugged
            raise _gone(exc.strerror or "read failed") from None
        if not data:
            raise _gone("end of file")
        return data

    def close(self) -> None:
        os.close(self.fd)


class PyserialLink:
    """A serial port through pyserial."""

    def __init__(self, port: str, baud: int) -> None:
        import serial

        try:
            self.port = serial.Serial(port, baud, timeout=0)
        except serial.SerialException as exc:
            raise ValueError(str(exc)) from None
        self.error = serial.SerialException

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except self.error as exc:
            raise _gone(str(exc)) from None

    def read(self, n: int, timeout: float) -> bytes:
        try:
            self.port.timeout = max(timeout, 0)
            return self.port.read(max(1, min(n, self.port.in_waiting or 1)))
        except self.error as exc:
            raise _gone(str(exc)) from None

    def close(self) -> None:
        self.port.close()


def open_serial(port: str, baud: int) -> Link:
    """``port`` at ``baud`` 8N1: through pyserial when installed, else :class:`TtyLink`. An
    :class:`OSError` or :class:`ValueError` when it cannot be opened as a serial port."""
    try:
        import serial  # noqa: F401
    except ImportError:
        return TtyLink(port, baud)
    return PyserialLink(port, baud)


@dataclass
class BoardInfo:
    """The board's answer to a ping."""

    name: str
    core_hz: int
    clock_nominal: bool
    counter: str
    input_bytes: int
    output_bytes: int
    steps: int


@dataclass
class BoardResult:
    """One inference on the board."""

    status: int
    counter: str
    total: int
    core_hz: int
    steps: list[int]
    output: bytes


BOARD_KINDS = "IRE"  # the frames a board sends
INFO = struct.Struct("<7I")  # the 'I' frame's numbers, before the board's name
RESULT = struct.Struct("<iIIII")  # the 'R' frame's numbers, before the step counts


def board_error(body: bytes) -> DeviceRunError:
    """The :class:`DeviceRunError` of an ``E`` frame's payload."""
    code = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 0
    return DeviceRunError(f"the board answered with an error: {ERRORS.get(code, code)} "
                          f"({body[4:].decode(errors='replace')})")


@dataclass
class Session:
    """Frames with a board over ``link``; text the board printed outside frames is kept in ``text``,
    frames that did not decode are counted in ``bad_frames``."""

    link: Link
    timeout: float = 30.0
    buffer: bytearray = field(default_factory=bytearray)
    text: bytearray = field(default_factory=bytearray)
    bad_frames: int = 0

    def frame(self, deadline: float) -> tuple[str, bytes]:
        """The next intact frame (text and broken frames before it skipped); :class:`TimeoutError`
        when the monotonic clock passes ``deadline`` first."""
        while True:
            start = self.buffer.find(MAGIC)
            if start < 0:  # text only so far (keep a trailing 0xA5: it may start a marker)
                keep = 1 if self.buffer.endswith(MAGIC[:1]) else 0
                self.text += self.buffer[: len(self.buffer) - keep]
                del self.buffer[: len(self.buffer) - keep]
            else:
                self.text += self.buffer[:start]
                del self.buffer[:start]
                try:
                    got = decode(bytes(self.buffer), BOARD_KINDS)
                except FrameError:
                    self.bad_frames += 1
                    del self.buffer[:2]  # not a frame after all: look for the next marker
                    continue
                if got is not None:
                    kind, payload, used = got
                    del self.buffer[:used]
                    return kind, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.buffer += self.link.read(65536, min(left, 0.5))

    def connect(self, ping_every: float = 2.0, quiet: float = 0.3) -> BoardInfo:
        """Ping until the board answers (it may still be running its self-check, or be out of step
        with a frame it lost bytes of); its description. When it took more than one ping, the answers
        to the others may still come, and an input sent while the board transmits one would lose
        bytes: the line is left to go ``quiet`` for that long, and the board pinged once more."""
        deadline = time.monotonic() + self.timeout
        pings = 0
        while True:
            self.link.write(encode("P"))
            pings += 1
            wait = min(deadline, time.monotonic() + ping_every)
            try:
                while True:
                    kind, body = self.frame(wait)
                    if kind == "I" and len(body) >= INFO.size:
                        break  # anything else (an error frame for the bytes of a lost ping): ping again
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise DeviceRunError(f"no answer from the board within {self.timeout:g} s",
                                         hint="check the port and that the board runs this build's firmware "
                                         "(reset it; see board/README.md), or give a longer --timeout") from None
                continue
            if pings == 1:
                break
            self._drain(quiet, deadline)
            pings = 0
        version, hz, nominal, counter, nin, nout, steps = INFO.unpack_from(body)
        if version != PROTOCOL_VERSION:
            raise DeviceRunError(f"the board speaks protocol version {version}, this host {PROTOCOL_VERSION}",
                                 hint="flash the firmware of this build")
        return BoardInfo(body[INFO.size :].decode(errors="replace"), hz, bool(nominal), COUNTERS.get(counter, "?"),
                         nin, nout, steps)

    def _drain(self, quiet: float, deadline: float) -> None:
        """Read until nothing came for ``quiet`` seconds (or ``deadline``); drop the frames, keep the text."""
        while time.monotonic() < deadline and (data := self.link.read(65536, quiet)):
            self.buffer += data
        while True:
            try:
                self.frame(time.monotonic())
            except TimeoutError:
                break
        self.buffer.clear()

    def infer(self, data: bytes, timeout: float | None = None) -> BoardResult:
        """One inference on ``data`` (answers to earlier pings that are still coming are skipped)."""
        timeout = timeout or self.timeout
        self.link.write(encode("X", data))
        deadline = time.monotonic() + timeout
        try:
            kind, body = self.frame(deadline)
            while kind == "I":
                kind, body = self.frame(deadline)
        except TimeoutError:
            raise DeviceRunError(f"no result from the board within {timeout:g} s",
                                 hint="a larger model needs a longer --timeout") from None
        if kind == "E":
            raise board_error(body)
        if kind != "R" or len(body) < RESULT.size:
            raise DeviceRunError(f"unexpected answer '{kind}' ({len(body)} bytes) to an input frame")
        status, counter, total, hz, steps = RESULT.unpack_from(body)
        if len(body) < RESULT.size + 4 * steps:
            raise DeviceRunError(f"the board's result frame is too short for its {steps} step counts")
        counts = list(struct.unpack_from(f"<{steps}I", body, RESULT.size))
        return BoardResult(status, COUNTERS.get(counter, "?"), total, hz, counts, body[RESULT.size + 4 * steps :])
