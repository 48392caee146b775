"""Microcontrollers the NAS designs for: SRAM and flash, the core, and what the application keeps."""

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
        Mcu("stm32f412", 256 * KB, 1024 * KB, "cortex-m4"),
        Mcu("stm32f746", 320 * KB, 1024 * KB, "cortex-m7"),
        Mcu("stm32h743", 512 * KB, 2048 * KB, "cortex-m7"),
        Mcu("nrf52840", 256 * KB, 1024 * KB, "cortex-m4"),
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
    )
    if mcu.budget_sram <= 0 or mcu.budget_flash <= 0:
        raise McunetError(
            f"nothing is left for the network: SRAM {mcu.sram_bytes:,} B - reserve {mcu.sram_reserve:,} B, "
            f"flash {mcu.flash_bytes:,} B - reserve {mcu.flash_reserve:,} B",
            where="--sram-reserve / --flash-reserve", hint="lower the reserves",
        )
    return mcu
