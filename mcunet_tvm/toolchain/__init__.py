"""External tools: the C compilers and QEMU.

``compile_objects``/``link`` build the generated C with the runtime in
``mcunet_tvm/runtime_c/`` into an ELF (Cortex-M) or an executable (host); ``run``
executes it once on QEMU or the host and returns output, instructions and
stack; ``flash_bytes``/``object_flash_bytes`` measure what goes to flash, ``code_bytes``
its machine code.
"""

from .gcc import check_toolchain, code_bytes, compile_objects, flash_bytes, link, object_flash_bytes
from .qemu import RunResult, run, serial_console

__all__ = [
    "RunResult",
    "check_toolchain",
    "code_bytes",
    "compile_objects",
    "flash_bytes",
    "link",
    "object_flash_bytes",
    "run",
    "serial_console",
]
