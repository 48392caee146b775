"""User-facing errors: what is wrong, where, and what to do about it.

Every error a user can cause (bad model file, unsupported operator, missing
toolchain, impossible budget) is raised as a :class:`McunetError`. The CLIs
catch it, print it without a traceback and exit non-zero; anything else is a
bug in mcunet-tvm and keeps its traceback.
"""

from __future__ import annotations


class McunetError(Exception):
    """An error caused by the user's input or environment.

    Args:
        what: one sentence saying what is wrong.
        where: the op, layer, tensor or file concerned ("" if not applicable).
        hint: what the user can do about it ("" if nothing obvious).
    """

    exit_code = 2

    def __init__(self, what: str, where: str = "", hint: str = "") -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        lines = [f"error: {self.what}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.hint:
            lines.append(f"  fix:   {self.hint}")
        return "\n".join(lines)


class ModelFileError(McunetError):
    """The model file is missing, unreadable, corrupt or of an unknown kind."""


class UnsupportedModelError(McunetError):
    """The model uses an operator, dtype or quantisation we do not support."""


class ToolchainError(McunetError):
    """A compiler, emulator or other external tool is missing or failed."""


class BudgetError(McunetError):
    """The model does not fit the requested SRAM or flash budget."""


class DeviceRunError(McunetError):
    """The generated program failed while running (QEMU or host)."""
