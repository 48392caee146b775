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
pings again until one comes.

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


def decode(data: bytes) -> tuple[str, bytes, int]:
    """The first frame of ``data`` (bytes before its marker skipped): (type, payload, bytes consumed).
    A :class:`FrameError` when there is no complete, intact frame."""
    start = data.find(MAGIC)
    if start < 0:
        raise FrameError("no frame start marker (0xA5 0x5A) in the data")
    head = start + 2
    if len(data) < head + HEADER.size:
        raise FrameError("truncated frame: the header is incomplete")
    kind, length = HEADER.unpack_from(data, head)
    if length > MAX_PAYLOAD:
        raise FrameError(f"frame length {length} is beyond any payload")
    end = head + HEADER.size + length
    if len(data) < end + 4:
        raise FrameError(f"truncated frame: {len(data) - head - HEADER.size} of {length} payload bytes and checksum")
    (crc,) = struct.unpack_from("<I", data, end)
    if crc != zlib.crc32(data[head:end]):
        raise FrameError("bad checksum")
    return chr(kind), bytes(data[head + HEADER.size : end]), end + 4


class Link(Protocol):
    """A byte pipe to the board."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, fewer (maybe none) when ``timeout`` seconds pass first."""
        ...

    def close(self) -> None: ...


class SocketLink:
    """A connected socket (QEMU's ``-chardev socket``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 1e-3))
        try:
            return self.sock.recv(n)
        except TimeoutError:
            return b""

    def close(self) -> None:
        self.sock.close()


class TtyLink:
    """A serial port in raw mode, 8N1, through :mod:`termios` (when pyserial is not installed)."""

    def __init__(self, port: str, baud: int) -> None:
        import termios
        import tty

        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        speed = getattr(termios, f"B{baud}")
        attrs[4] = attrs[5] = speed
        attrs[2] = (attrs[2] & ~(termios.PARENB | termios.CSTOPB | termios.CSIZE)) | termios.CS8 | termios.CLOCAL
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def read(self, n: int, timeout: float) -> bytes:
        import select

        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        return os.read(self.fd, n) if ready else b""

    def close(self) -> None:
        os.close(self.fd)


class PyserialLink:
    """A serial port through pyserial."""

    def __init__(self, port: str, baud: int) -> None:
        import serial

        self.port = serial.Serial(port, baud, timeout=0)

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, n: int, timeout: float) -> bytes:
        self.port.timeout = max(timeout, 0)
        return self.port.read(max(1, min(n, self.port.in_waiting or 1)))

    def close(self) -> None:
        self.port.close()


def open_serial(port: str, baud: int) -> Link:
    """``port`` at ``baud`` 8N1: through pyserial when installed, else :class:`TtyLink`."""
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


@dataclass
class Session:
    """Frames with a board over ``link``; text the board printed outside frames is kept in ``text``."""

    link: Link
    timeout: float = 30.0
    buffer: bytearray = field(default_factory=bytearray)
    text: bytearray = field(default_factory=bytearray)

    def _frame(self, deadline: float) -> tuple[str, bytes]:
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
                    kind, payload, used = decode(bytes(self.buffer))
                except FrameError as err:
                    if not str(err).startswith("truncated"):
                        del self.buffer[:2]  # not a frame after all: look for the next marker
                        continue
                else:
                    del self.buffer[:used]
                    return kind, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.buffer += self.link.read(65536, min(left, 0.5))

    def request(self, kind: str, payload: bytes, timeout: float) -> tuple[str, bytes]:
        """Send one frame; the board's answer (a :class:`DeviceRunError` for an ``E`` frame)."""
        self.link.write(encode(kind, payload))
        answer, body = self._frame(time.monotonic() + timeout)
        if answer == "E":
            code = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 0
            raise DeviceRunError(f"the board answered with an error: {ERRORS.get(code, code)} "
                                 f"({body[4:].decode(errors='replace')})")
        return answer, body

    def connect(self) -> BoardInfo:
        """Ping until the board answers (it may still be running its self-check); its description."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                kind, body = self.request("P", b"", min(2.0, max(0.0, deadline - time.monotonic())))
            except (TimeoutError, DeviceRunError):
                self.buffer.clear()  # a partial frame or noise: start afresh with the next ping
                if time.monotonic() >= deadline:
                    raise DeviceRunError(f"no answer from the board within {self.timeout:.0f} s",
                                         hint="check the port and that the board runs this build's firmware "
                                         "(reset it; see board/README.md)") from None
                continue
            if kind == "I" and len(body) >= 28:
                break
        version, hz, nominal, counter, nin, nout, steps = struct.unpack_from("<7I", body)
        if version != PROTOCOL_VERSION:
            raise DeviceRunError(f"the board speaks protocol version {version}, this host {PROTOCOL_VERSION}",
                                 hint="flash the firmware of this build")
        return BoardInfo(body[28:].decode(errors="replace"), hz, bool(nominal), COUNTERS.get(counter, "?"),
                         nin, nout, steps)

    def infer(self, data: bytes, timeout: float | None = None) -> BoardResult:
        """One inference on ``data``."""
        try:
            kind, body = self.request("X", data, timeout or self.timeout)
        except TimeoutError:
            raise DeviceRunError(f"no result from the board within {timeout or self.timeout:.0f} s",
                                 hint="a larger model needs a longer --timeout") from None
        if kind != "R" or len(body) < 20:
            raise DeviceRunError(f"unexpected answer '{kind}' ({len(body)} bytes) to an input frame")
        status, counter, total, hz, steps = struct.unpack_from("<iIIII", body)
        counts = list(struct.unpack_from(f"<{steps}I", body, 20))
        return BoardResult(status, COUNTERS.get(counter, "?"), total, hz, counts, body[20 + 4 * steps :])
