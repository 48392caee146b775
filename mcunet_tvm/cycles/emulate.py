"""Run a Cortex-M ELF once in unicorn, counting instructions and modelled cycles block by block.

The memory map is the board's linker script (``MEMORY``: FLASH, RAM, STACK) and its free-running
counter (``BOARD_COUNTER_ADDR`` in ``board.h``), the same files the firmware was linked with. The
image is loaded at its load addresses, SP and PC come from the vector table, and the startup code
runs as on QEMU. Semihosting (``BKPT 0xAB``: open, read, write, seek, close, write0, exit) is served
from memory: ``input.bin`` is the given input, files written are kept by name.

Every read of the counter is a *stamp*: the instructions and cycles executed so far. The harness
reads it exactly where QEMU's run reads its ``-icount`` clock (``mcunet_step_done``), so stamps
difference into the same per-step intervals, and the harness's own arithmetic (the cost of two
back-to-back stamps subtracted from every interval) is repeated here on both counts.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeviceRunError, McunetError
from .decode import decode_block
from .model import BlockCost, BranchSettler, block_cost
from .timing import CoreTiming

_UNICORN_CPU = {"cortex-m4": "UC_CPU_ARM_CORTEX_M4", "cortex-m7": "UC_CPU_ARM_CORTEX_M7"}
_PAGE = 0x1000
_SYS_OPEN, _SYS_CLOSE, _SYS_WRITE0, _SYS_WRITE, _SYS_READ, _SYS_SEEK = 0x01, 0x02, 0x04, 0x05, 0x06, 0x0A
_SYS_EXIT, _SYS_EXIT_EXTENDED = 0x18, 0x20
_BKPT_SEMIHOST = 0xBEAB


@dataclass(frozen=True)
class MemoryMap:
    """Regions to map (origin, length) and the counter's address (None: no counter)."""

    regions: tuple[tuple[int, int], ...]
    flash: tuple[int, int]
    counter: int | None


@dataclass
class Emulation:
    """What one emulated run produced."""

    exit_code: int
    instructions: int  # from reset to exit
    cycles: int
    #: (instructions, cycles) at every read of the board's counter, in order
    stamps: list[tuple[int, int]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    console: str = ""
    blocks: int = 0  # distinct blocks decoded
    flash_reads: int = 0


def _number(text: str) -> int:
    m = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*([KM]?)\s*", text)
    if not m:
        raise McunetError(f"cannot read the size {text!r} in the linker script")
    return int(m.group(1), 0) * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(2)]


def board_memory_map(board_dir: Path) -> MemoryMap:
    """The regions of ``board_dir/link.ld`` and the counter of ``board_dir/board.h``."""
    text = (board_dir / "link.ld").read_text()
    block = re.search(r"MEMORY\s*\{(.*?)\}", text, re.S)
    if block is None:
        raise McunetError("the linker script has no MEMORY block", where=str(board_dir / "link.ld"))
    regions: dict[str, tuple[int, int]] = {}
    for name, origin, length in re.findall(r"(\w+)\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*([^,]+),\s*LENGTH\s*=\s*([^\n]+)",
                                           block.group(1)):
        parts = [p.strip() for p in length.split("-")]
        size = _number(parts[0]) - sum(_number(p) for p in parts[1:])
        regions[name] = (_number(origin), size)
    header = board_dir / "board.h"
    counter = None
    if header.exists():
        m = re.search(r"#define\s+BOARD_COUNTER_ADDR\s+(0x[0-9a-fA-F]+)u?", header.read_text())
        counter = int(m.group(1), 16) if m else None
    if "FLASH" not in regions:
        raise McunetError("the linker script has no FLASH region", where=str(board_dir / "link.ld"))
    return MemoryMap(tuple(regions.values()), regions["FLASH"], counter)


def _segments(elf: bytes) -> list[tuple[int, bytes, int]]:
    """(load address, file bytes, memory size) of every PT_LOAD segment of a 32-bit little-endian ELF."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        raise McunetError("not a 32-bit little-endian ELF")
    phoff, = struct.unpack_from("<I", elf, 28)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    out = []
    for k in range(phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz, p_memsz = struct.unpack_from("<6I", elf, phoff + k * phentsize)
        if p_type == 1 and p_filesz:
            out.append((p_paddr, elf[p_offset : p_offset + p_filesz], p_memsz))
    return out


def _span(origin: int, length: int) -> tuple[int, int]:
    lo = origin & ~(_PAGE - 1)
    hi = (origin + length + _PAGE - 1) & ~(_PAGE - 1)
    return lo, hi - lo


def emulate(elf_path: Path, memory: MemoryMap, core: CoreTiming, files: dict[str, bytes] | None = None,
            flash_wait_states: int = 0, max_instructions: int = 2_000_000_000, start: int | None = None,
            stop: int | None = None, registers: dict[str, int] | None = None) -> Emulation:
    """Run the ELF from reset (or from ``start`` to ``stop`` with ``registers`` preset, for code
    snippets: micro-benchmarks) and count.

    Raises :class:`DeviceRunError` when the program faults or runs into unmapped memory.
    """
    import unicorn
    from unicorn import arm_const

    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(getattr(arm_const, _UNICORN_CPU[core.name]))
    mapped: list[tuple[int, int]] = []
    for origin, length in memory.regions:
        lo, size = _span(origin, length)
        if any(lo < b + s and b < lo + size for b, s in mapped):
            continue
        uc.mem_map(lo, size)
        mapped.append((lo, size))
    uc.mem_map(0xE000E000, _PAGE)  # system control space: plain memory (no NVIC is modelled)
    for addr, data, _ in _segments(Path(elf_path).read_bytes()):
        uc.mem_write(addr, data)

    state = _State(core, flash_wait_states, files or {})
    if memory.counter is not None:
        base = memory.counter & ~(_PAGE - 1)
        uc.mmio_map(base, _PAGE, state.read_counter, None, state.ignore_write, None)
    uc.hook_add(unicorn.UC_HOOK_BLOCK, state.on_block)
    uc.hook_add(unicorn.UC_HOOK_INTR, state.on_interrupt)
    if flash_wait_states:
        lo, size = memory.flash
        uc.hook_add(unicorn.UC_HOOK_MEM_READ, state.on_flash_read, begin=lo, end=lo + size - 1)

    if start is None:
        sp, pc = struct.unpack("<II", bytes(uc.mem_read(memory.flash[0], 8)))
        uc.reg_write(arm_const.UC_ARM_REG_SP, sp)
    else:
        pc = start
        top = memory.regions[-1]
        uc.reg_write(arm_const.UC_ARM_REG_SP, top[0] + top[1] - 16)
        for name, value in (registers or {}).items():
            uc.reg_write(getattr(arm_const, f"UC_ARM_REG_{name.upper()}"), value)
    try:
        uc.emu_start(pc | 1, stop if stop is not None else 0xFFFFFFFF, count=max_instructions)
    except unicorn.UcError as exc:
        where = uc.reg_read(arm_const.UC_ARM_REG_PC)
        raise DeviceRunError(f"the emulated program stopped: {exc} at pc 0x{where:08x}", where=str(elf_path)) from None
    if state.exit_code is None and stop is None:
        raise DeviceRunError(f"the emulated program did not exit within {max_instructions:,} instructions",
                             where=str(elf_path))
    if stop is not None:
        state.settle_pending(stop)  # the branch into ``stop`` (a snippet's end) is part of the snippet
    return Emulation(exit_code=state.exit_code or 0, instructions=state.instructions,
                     cycles=state.cycles + state.flash_reads * flash_wait_states, stamps=state.stamps,
                     files={k: bytes(v) for k, v in state.written.items()}, console=state.console,
                     blocks=len(state.cache), flash_reads=state.flash_reads)


class _State:
    """The hooks' shared counters."""

    def __init__(self, core: CoreTiming, flash_wait_states: int, files: dict[str, bytes]) -> None:
        self.core = core
        self.wait = flash_wait_states
        self.settler = BranchSettler(core, flash_wait_states)
        self.cache: dict[tuple[int, int], BlockCost] = {}
        self.instructions = 0
        self.cycles = 0
        self.pending: BlockCost | None = None
        self.stamps: list[tuple[int, int]] = []
        self.flash_reads = 0
        self.inputs = files
        self.fds: dict[int, tuple[str, bytearray | bytes, list[int]]] = {}
        self.written: dict[str, bytearray] = {}
        self.console = ""
        self.exit_code: int | None = None

    def on_block(self, uc, address: int, size: int, _user) -> None:
        key = (address, size)
        cost = self.cache.get(key)
        if cost is None:
            cost = block_cost(decode_block(bytes(uc.mem_read(address, size)), address), self.core)
            self.cache[key] = cost
        pending = self.pending
        if pending is not None:
            self.cycles += self.settler.settle(pending, address != pending.end)
        self.instructions += cost.instructions
        self.cycles += cost.cycles
        self.pending = cost if cost.branch != "none" or self.wait else None

    def settle_pending(self, address: int) -> None:
        """Settle the last block's branch as if execution went on at ``address``."""
        if self.pending is not None:
            self.cycles += self.settler.settle(self.pending, address != self.pending.end)
        self.pending = None

    def read_counter(self, _uc, _offset: int, _size: int, _user) -> int:
        # flash reads are added here too, so a stamp holds every cycle counted so far
        self.stamps.append((self.instructions, self.cycles + self.flash_reads * self.wait))
        return (self.instructions * 4) & 0xFFFFFFFF

    def ignore_write(self, *_args) -> None:
        return None

    def on_flash_read(self, *_args) -> None:
        self.flash_reads += 1

    def on_interrupt(self, uc, intno: int, _user) -> None:
        from unicorn import arm_const

        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        here = struct.unpack("<H", bytes(uc.mem_read(pc, 2)))[0]
        if here != _BKPT_SEMIHOST:
            back = struct.unpack("<H", bytes(uc.mem_read(pc - 2, 2)))[0]
            if back != _BKPT_SEMIHOST:
                self.console += f"mcunet: exception {intno} at pc 0x{pc:08x} (fault or undefined instruction)\n"
                self.exit_code = 3
                uc.emu_stop()
                return
            pc -= 2
        op = uc.reg_read(arm_const.UC_ARM_REG_R0)
        arg = uc.reg_read(arm_const.UC_ARM_REG_R1)
        uc.reg_write(arm_const.UC_ARM_REG_R0, self._semihost(uc, op, arg) & 0xFFFFFFFF)
        uc.reg_write(arm_const.UC_ARM_REG_PC, (pc + 2) | 1)

    def _words(self, uc, addr: int, n: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n}I", bytes(uc.mem_read(addr, 4 * n)))

    def _semihost(self, uc, op: int, arg: int) -> int:
        if op == _SYS_OPEN:
            ptr, mode, length = self._words(uc, arg, 3)
            name = bytes(uc.mem_read(ptr, length)).decode()
            fd = len(self.fds) + 3
            if mode < 4:
                if name not in self.inputs:
                    return -1
                self.fds[fd] = (name, self.inputs[name], [0])
            else:
                self.written[name] = bytearray()
                self.fds[fd] = (name, self.written[name], [0])
            return fd
        if op == _SYS_CLOSE:
            return 0
        if op == _SYS_WRITE0:
            text = bytearray()
            while (c := uc.mem_read(arg + len(text), 1)[0]) != 0:
                text.append(c)
            self.console += text.decode(errors="replace")
            return 0
        if op in (_SYS_WRITE, _SYS_READ):
            fd, buf, length = self._words(uc, arg, 3)
            if fd not in self.fds:
                return length
            _, data, pos = self.fds[fd]
            if op == _SYS_WRITE:
                assert isinstance(data, bytearray)
                data += bytes(uc.mem_read(buf, length))
                return 0
            chunk = bytes(data[pos[0] : pos[0] + length])
            uc.mem_write(buf, chunk)
            pos[0] += len(chunk)
            return length - len(chunk)
        if op == _SYS_SEEK:
            fd, where = self._words(uc, arg, 2)
            if fd not in self.fds:
                return -1
            self.fds[fd][2][0] = where
            return 0
        if op in (_SYS_EXIT, _SYS_EXIT_EXTENDED):
            reason, status = self._words(uc, arg, 2) if op == _SYS_EXIT_EXTENDED else (arg, 0)
            self.exit_code = status if reason == 0x20026 else 1
            uc.emu_stop()
            return 0
        return -1
