"""Real microcontroller boards, as pure data: memory map, console UART, clocks, how to flash.

Each :class:`Board` is also a target (:data:`mcunet_tvm.targets.TARGETS`) named like the board, so
``python -m mcunet_tvm.build --board NAME`` (the same as ``--target NAME``) compiles for its core and
links with its real memory map:

* ``netduinoplus2`` (STM32F405RG) is emulated by QEMU (``-M netduinoplus2``): ``--run`` executes it
  there through semihosting and checks the output bit-exactly. QEMU 7.2 does not map the 64 KB CCM
  (an access faults), so the image keeps data, arena and stack in the 128 KB SRAM; it models neither
  a DWT cycle counter nor a clocked SysTick on this machine, so instructions are counted with TIM2
  (``runtime_c/boards/netduinoplus2/board.h``).
* the others are built only. Every board's output folder gets ``board/`` (startup and vector table,
  linker script, a ``main.c`` timing one inference with the DWT cycle counter, printing over the
  board's UART and then serving ``python -m mcunet_tvm.run`` over it, CMake files, README); the
  registers are written from the reference manuals, untested on silicon.

Every board's project (netduinoplus2's too, linked as ``firmware/board.elf``) sets the core clock up to
its nominal frequency (:class:`Clock`: oscillator, PLL dividers, bus prescalers, flash wait states,
voltage scaling), with every wait on a ready flag bounded: when a flag never comes (QEMU models no
STM32 RCC: its registers read 0) the firmware stays on the reset clock (``reset_hz``) and says so in
what it prints. The C (``runtime_c/common/clock_DRIVER.c``) reads these numbers from the generated
``board.h`` (:func:`mcunet_tvm.board_project.clock_macros`); only the register layout lives in C.

The arena goes to the first of ``arena`` that holds it (a tightly-coupled RAM when the model is
small enough), else the build fails with a :class:`~mcunet_tvm.errors.BudgetError` naming the region.
Addresses and sizes are the chips' datasheet memory maps.
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True)
class Region:
    """A block of memory: its name on the chip, base address and size in bytes."""

    name: str
    origin: int
    size: int

    def describe(self) -> str:
        """E.g. ``SRAM 128 KB at 0x20000000``."""
        return f"{self.name} {self.size // KB} KB at 0x{self.origin:08X}"


@dataclass(frozen=True)
class Uart:
    """The console: peripheral, register base, TX/RX pins (alternate function) and the bus that clocks it."""

    kind: str  # "stm32-usart" (ISR/TDR layout of F7/H7/L4), "stm32-usart-v1" (SR/DR of F4) or "nrf-uarte"
    peripheral: str
    base: int
    tx: str
    rx: str
    bus: str = "apb2"  # "apb1" or "apb2": the kernel clock of the baud-rate generator ("fixed" on the nRF)
    baud: int = 115200


@dataclass(frozen=True)
class Clock:
    """The core clock set-up to the chip's nominal frequency, as the clock driver writes it.

    SYSCLK = ``source_hz`` / ``pll_m`` * ``pll_n`` / ``pll_sys`` (``pll_sys``: the PLL output feeding
    SYSCLK, P on F4/F7/H7, R on L4); the core runs at SYSCLK / ``core_div`` (H7's D1CPRE), the AHB at
    core / ``ahb_div``, the APB buses at AHB / ``apb1_div`` and / ``apb2_div``. ``pll_q`` is the 48 MHz
    (F4/F7) or peripheral output, programmed but unused here. The nRF52840 has no programmable PLL: its
    core is fixed at 64 MHz (``fixed_core_hz``); its driver only starts the crystal oscillator.
    """

    driver: str  # runtime_c/common/clock_DRIVER.c
    nominal_hz: int  # the frequency the data below must produce (the chip's maximum, or the stated choice)
    source: str  # "hse" (crystal), "hsi" (internal RC: 16 MHz on F4/L4, 64 MHz on H7), "hfxo" (nRF)
    source_hz: int
    pll_m: int = 1
    pll_n: int = 1
    pll_sys: int = 1
    pll_q: int = 2
    core_div: int = 1
    ahb_div: int = 1
    apb1_div: int = 1
    apb2_div: int = 1
    wait_states: int = 0
    power: str = ""  # the voltage scaling the frequency needs: "scale1", "overdrive" (F7), "boost" (L4+)
    fixed_core_hz: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def vco_in_hz(self) -> int:
        return self.source_hz // self.pll_m

    @property
    def vco_hz(self) -> int:
        return self.vco_in_hz * self.pll_n

    @property
    def core_hz(self) -> int:
        """The core clock the set-up gives (derived from the dividers, not declared)."""
        if self.fixed_core_hz is not None:
            return self.fixed_core_hz
        return self.vco_hz // self.pll_sys // self.core_div

    @property
    def ahb_hz(self) -> int:
        return self.core_hz // self.ahb_div

    def bus_hz(self, bus: str) -> int:
        """The clock of ``bus`` ("apb1", "apb2"; "fixed": the nRF's 16 MHz peripheral clock)."""
        return {"apb1": self.ahb_hz // self.apb1_div, "apb2": self.ahb_hz // self.apb2_div,
                "fixed": 16_000_000}[bus]


@dataclass(frozen=True)
class Board:
    """One board: chip, core flags, memory, console and clocks."""

    name: str
    chip: str
    mcpu: str
    cflags: tuple[str, ...]
    flash: Region
    ram: Region  # .data, .bss and the stack (at its top)
    arena: tuple[Region, ...]  # where the arena may go, in order of preference
    stack_bytes: int
    reset_hz: int  # the core (and bus) clock after reset: what the firmware falls back to
    uart: Uart | None = None
    clock: Clock | None = None
    qemu_machine: str | None = None
    pyocd_target: str = ""  # pyocd's name of the chip (``pyocd flash -t NAME``)
    unused: tuple[Region, ...] = ()  # memory the image leaves alone, and why (see the module docstring)
    notes: tuple[str, ...] = ()  # board-specific points unverified on silicon (the project's README)

    @property
    def flash_command(self) -> str:
        """How to flash the project's ``firmware.elf`` with pyocd."""
        return f"pyocd flash -t {self.pyocd_target} firmware.elf"

    def stack(self) -> Region:
        """The stack: the top ``stack_bytes`` of ``ram``."""
        return Region(self.ram.name, self.ram.origin + self.ram.size - self.stack_bytes, self.stack_bytes)

    def arena_capacity(self, region: Region) -> int:
        """Bytes of ``region`` the arena may take (the stack is carved from the top of ``ram``)."""
        return region.size - (self.stack_bytes if region == self.ram else 0)


def _m4f() -> tuple[str, ...]:
    return ("-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


_SRAM_F405 = Region("SRAM", 0x20000000, 128 * KB)
_DTCM_F746, _SRAM1_F746 = Region("DTCM", 0x20000000, 64 * KB), Region("SRAM1", 0x20010000, 240 * KB)
_DTCM_H743, _AXI_H743 = Region("DTCM", 0x20000000, 128 * KB), Region("AXI SRAM", 0x24000000, 512 * KB)
_SRAM_L4R5 = Region("SRAM", 0x20000000, 640 * KB)
_RAM_NRF = Region("RAM", 0x20000000, 256 * KB)

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("netduinoplus2", "STM32F405RG", "cortex-m4", _m4f(), Region("FLASH", 0x08000000, 1024 * KB),
              _SRAM_F405, (_SRAM_F405,), 8 * KB, 16_000_000,
              Uart("stm32-usart-v1", "USART1", 0x40011000, "PA9 (AF7)", "PA10 (AF7)"),
              Clock("stm32f4f7", 168_000_000, "hse", 25_000_000, 25, 336, 2, 7, apb1_div=4, apb2_div=2,
                    wait_states=5, power="scale1"),
              qemu_machine="netduinoplus2", pyocd_target="stm32f405rg",
              unused=(Region("CCM", 0x10000000, 64 * KB),),
              notes=("QEMU's -serial is USART1 (PA9/PA10): on the Netduino Plus 2 these pins are not on the "
                     "Arduino headers; wire a 3.3 V USB-UART adapter to them",
                     "the Netduino Plus 2's crystal is 25 MHz (HSE, not bypassed)")),
        Board("stm32f746g-disco", "STM32F746NG", "cortex-m7",
              ("-mthumb", "-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
              Region("FLASH", 0x08000000, 1024 * KB), _SRAM1_F746, (_DTCM_F746, _SRAM1_F746), 8 * KB, 16_000_000,
              Uart("stm32-usart", "USART1", 0x40011000, "PA9 (AF7)", "PB7 (AF7)"),
              Clock("stm32f4f7", 216_000_000, "hse", 25_000_000, 25, 432, 2, 9, apb1_div=4, apb2_div=2,
                    wait_states=7, power="overdrive"),
              pyocd_target="stm32f746nghx",
              notes=("code runs from flash over AXIM (0x08000000) with the ART accelerator and caches off",)),
        Board("nucleo-h743zi", "STM32H743ZI", "cortex-m7",
              ("-mthumb", "-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
              Region("FLASH", 0x08000000, 2048 * KB), _AXI_H743, (_DTCM_H743, _AXI_H743), 8 * KB, 64_000_000,
              Uart("stm32-usart", "USART3", 0x40004800, "PD8 (AF7)", "PD9 (AF7)", bus="apb1"),
              Clock("stm32h7", 400_000_000, "hsi", 64_000_000, 32, 400, 2, 4, ahb_div=2, apb1_div=2, apb2_div=2,
                    wait_states=2, power="scale1",
                    notes=("400 MHz at voltage scale 1 (VOS1), not 480 MHz: VOS0 needs SYSCFG_PWRCR.ODEN on "
                           "revision V silicon only",
                           "the PLL runs from HSI (64 MHz), not the ST-LINK's 8 MHz MCO, which needs solder "
                           "bridges on some NUCLEO revisions")),
              pyocd_target="stm32h743zitx",
              notes=("the power supply configuration (PWR_CR3) is written as LDO, its reset default",
                     "USART3's kernel clock is its reset default, PCLK1 (RCC_D2CCIP2R.USART234578SEL = 0)")),
        Board("nucleo-l4r5zi", "STM32L4R5ZI", "cortex-m4", _m4f(), Region("FLASH", 0x08000000, 2048 * KB),
              _SRAM_L4R5, (_SRAM_L4R5,), 8 * KB, 4_000_000,
              Uart("stm32-usart", "LPUART1", 0x40008000, "PG7 (AF8)", "PG8 (AF8)", bus="apb1"),
              Clock("stm32l4", 120_000_000, "hsi", 16_000_000, 1, 15, 2, 2, wait_states=5, power="boost"),
              pyocd_target="stm32l4r5zitx",
              notes=("port G needs VDDIO2 (PWR_CR2.IOSV), set before its pins are configured",)),
        Board("nrf52840dk", "nRF52840", "cortex-m4", _m4f(), Region("FLASH", 0x00000000, 1024 * KB),
              _RAM_NRF, (_RAM_NRF,), 8 * KB, 64_000_000,
              Uart("nrf-uarte", "UARTE0", 0x40002000, "P0.06", "P0.08", bus="fixed"),
              Clock("nrf52", 64_000_000, "hfxo", 32_000_000, fixed_core_hz=64_000_000,
                    notes=("the core is always at 64 MHz; HFXO (the 32 MHz crystal) is started so that the "
                           "UART's baud rate has crystal accuracy (HFINT: about 1.5 %)",)),
              pyocd_target="nrf52840",
              notes=("no SoftDevice: the image owns the whole flash from address 0 and the whole RAM",)),
    )
}


def get_board(name: str) -> Board | None:
    """The board called ``name`` (None for the emulated generic targets and the host)."""
    return BOARDS.get(name)


def arena_region(board: Board, arena_bytes: int) -> Region | None:
    """The first region of ``board.arena`` that holds ``arena_bytes``; None if none does."""
    return next((r for r in board.arena if arena_bytes <= board.arena_capacity(r)), None)


def linker_script(board: Board, arena: Region) -> str:
    """The board's linker script: its memory map, the arena in ``arena``, then ``sections.ld``."""
    stack = board.stack()
    regions = [("FLASH", "rx", board.flash.origin, board.flash.size),
               ("RAM", "rwx", board.ram.origin, board.ram.size - board.stack_bytes),
               ("STACK", "rw", stack.origin, stack.size)]
    if arena != board.ram:
        regions.append(("ARENA", "rw", arena.origin, arena.size))
    lines = [f"/* {board.name} ({board.chip}), generated by mcunet-tvm from mcunet_tvm/boards.py:",
             f"   code and constants in {board.flash.describe()}, data in {board.ram.describe()} (stack at its top),",
             f"   the arena in {arena.describe()}. */", "MEMORY", "{"]
    lines += [f"  {n:<5} ({a}) : ORIGIN = 0x{o:08X}, LENGTH = {s // KB}K" for n, a, o, s in regions]
    lines += ["}", 'REGION_ALIAS("CODE", FLASH);']
    if arena == board.ram:
        lines.append('REGION_ALIAS("ARENA", RAM);')
    lines.append("INCLUDE sections.ld")
    return "\n".join(lines) + "\n"


def fit_arena(board: Board, arena_bytes: int) -> Region:
    """The region the arena goes to; a :class:`BudgetError` naming the board, the region and the
    shortfall in bytes when no region holds it (checked from the plan, before anything is linked)."""
    from .errors import BudgetError

    region = arena_region(board, arena_bytes)
    if region is not None:
        return region
    best = max(board.arena, key=board.arena_capacity)
    room = board.arena_capacity(best)
    stack = f" ({room:,} B beside the {board.stack_bytes // KB} KB stack)" if best == board.ram else ""
    raise BudgetError(
        f"the arena needs {arena_bytes:,} B but {board.name} has {best.describe()}{stack}: "
        f"{arena_bytes - room:,} B short",
        where=f"--board {board.name}",
        hint="use a smaller model or input resolution, --patch auto (patch-based inference), or a board with more SRAM",
    )


def overflow_error(board: Board, arena: Region, linker_message: str):
    """The linker's ``region `X' overflowed by N bytes`` as a :class:`BudgetError` naming the board's
    region; None when the message says something else."""
    import re

    from .errors import BudgetError

    match = re.search(r"region `(\w+)' overflowed by (\d+) bytes", linker_message)
    if match is None:
        return None
    regions = {"FLASH": board.flash, "CODE": board.flash, "RAM": board.ram, "STACK": board.stack(), "ARENA": arena}
    region = regions.get(match.group(1))
    what = region.describe() if region else match.group(1)
    return BudgetError(f"the image does not fit {board.name}'s {what}: {int(match.group(2)):,} B short",
                       where=f"--board {board.name}",
                       hint="use a smaller model (width, depth, classes, resolution) or a board with more memory")
