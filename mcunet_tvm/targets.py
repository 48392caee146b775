"""The targets mcunet-tvm builds for: Cortex-M cores on emulated boards, real boards
(:mod:`mcunet_tvm.boards`, one target per board, named like it), and the host."""

from __future__ import annotations

from dataclasses import dataclass

from .boards import BOARDS
from .errors import UnsupportedModelError


@dataclass(frozen=True)
class TargetSpec:
    """A CPU, the QEMU machine that emulates it and the board files used to link for it."""

    name: str
    mcpu: str | None  # None: the host
    qemu_machine: str | None
    board: str | None  # folder under mcunet_tvm/runtime_c/boards
    has_dsp: bool
    cflags: tuple[str, ...]


TARGETS: dict[str, TargetSpec] = {
    t.name: t
    for t in (
        TargetSpec("cortex-m4", "cortex-m4", "mps2-an386", "mps2-an386", True,
                   ("-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=soft")),
        TargetSpec("cortex-m7", "cortex-m7", "mps2-an500", "mps2-an500", True,
                   ("-mthumb", "-mcpu=cortex-m7", "-mfloat-abi=soft")),
        TargetSpec("cortex-m55", "cortex-m55", "mps3-an547", "mps3-an547", True,
                   ("-mthumb", "-mcpu=cortex-m55", "-mfloat-abi=hard")),
        TargetSpec("host", None, None, None, False, ()),
        *(TargetSpec(b.name, b.mcpu, b.qemu_machine, b.name, True, b.cflags) for b in BOARDS.values()),
    )
}


def get_target(name: str) -> TargetSpec:
    """The target called ``name``; a clear error listing the valid names otherwise."""
    if name not in TARGETS:
        raise UnsupportedModelError(
            f"unknown target '{name}'", hint="use one of: " + ", ".join(TARGETS)
        )
    return TARGETS[name]
