"""Microcontrollers the NAS designs for: SRAM and flash, the core and its clock, and what the application keeps."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import McunetError
from ..presentation import parse_size


@dataclass(frozen=True)
class Mcu:
    """A part's memories and core; ``budget_*`` is what a network may use."""

    name: str
    sram_bytes: int
    flash_bytes: int
    target: str  # mcunet-tvm target whose core it has
    sram_reserve: int = 0
    flash_reserve: int = 0
    #: the core's clock, MHz (turns a latency limit in ms into cycles); None: not known
    mhz: float | None = None

    @property
    def budget_sram(self) -> int:
        return self.sram_bytes - self.sram_reserve

    @property
    def budget_flash(self) -> int:
        return self.flash_bytes - self.flash_reserve


KB = 1024
PRESETS: dict[str, Mcu] = {
    m.name: m
    for m in (
        Mcu("stm32f412", 256 * KB, 1024 * KB, "cortex-m4", mhz=100),
        Mcu("stm32f746", 320 * KB, 1024 * KB, "cortex-m7", mhz=216),
        Mcu("stm32h743", 512 * KB, 2048 * KB, "cortex-m7", mhz=480),
        Mcu("nrf52840", 256 * KB, 1024 * KB, "cortex-m4", mhz=64),
    )
}
#: default room left for the application: stack, buffers, its own code
DEFAULT_SRAM_RESERVE = 32 * KB
DEFAULT_FLASH_RESERVE = 128 * KB


def resolve_mcu(
    preset: str | None,
    sram: str | None = None,
    flash: str | None = None,
    sram_reserve: str | None = None,
    flash_reserve: str | None = None,
    target: str = "cortex-m7",
) -> Mcu:
    """The MCU from a preset name, or from explicit sizes (which also override a preset's)."""
    if preset is None and (sram is None or flash is None):
        raise McunetError("no microcontroller given", where="--mcu / --sram / --flash",
                          hint=f"use --mcu {{{', '.join(PRESETS)}}} or both --sram and --flash (e.g. 320KB, 1MB)")
    if preset is not None and preset not in PRESETS:
        raise McunetError(f"unknown MCU '{preset}'", where="--mcu", hint="use one of: " + ", ".join(PRESETS))
    base = PRESETS[preset] if preset else Mcu("custom", 0, 0, target)
    mcu = Mcu(
        base.name,
        parse_size(sram, "--sram") if sram else base.sram_bytes,
        parse_size(flash, "--flash") if flash else base.flash_bytes,
        base.target if preset else target,
        parse_size(sram_reserve, "--sram-reserve", minimum=0) if sram_reserve else DEFAULT_SRAM_RESERVE,
        parse_size(flash_reserve, "--flash-reserve", minimum=0) if flash_reserve else DEFAULT_FLASH_RESERVE,
        base.mhz,
    )
    if mcu.budget_sram <= 0 or mcu.budget_flash <= 0:
        raise McunetError(
            f"nothing is left for the network: SRAM {mcu.sram_bytes:,} B - reserve {mcu.sram_reserve:,} B, "
            f"flash {mcu.flash_bytes:,} B - reserve {mcu.flash_reserve:,} B",
            where="--sram-reserve / --flash-reserve", hint="lower the reserves",
        )
    return mcu


def latency_cycles(mcu: Mcu, max_latency_ms: float | None, mhz: float | None, max_cycles: int | None) -> int | None:
    """The latency limit in cycles (``--max-latency-ms`` at ``--mhz`` or the preset's clock, or
    ``--max-cycles``); None: no limit."""
    if max_latency_ms is not None and max_cycles is not None:
        raise McunetError("two latency limits given", where="--max-latency-ms / --max-cycles", hint="give one")
    if max_cycles is not None:
        if max_cycles <= 0:
            raise McunetError(f"--max-cycles must be positive, got {max_cycles}", where="--max-cycles")
        return max_cycles
    if max_latency_ms is None:
        if mhz is not None:
            raise McunetError("--mhz without a latency limit", where="--mhz", hint="add --max-latency-ms MS")
        return None
    clock = mhz if mhz is not None else mcu.mhz
    if clock is None:
        raise McunetError("a latency limit in milliseconds needs the core's clock", where="--max-latency-ms",
                          hint="add --mhz F (e.g. --mhz 216), use an --mcu preset, or give --max-cycles")
    if max_latency_ms <= 0 or clock <= 0:
        raise McunetError(f"latency and clock must be positive (got {max_latency_ms} ms at {clock} MHz)",
                          where="--max-latency-ms / --mhz")
    return int(max_latency_ms * clock * 1e3)
