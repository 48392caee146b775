"""Files the compiler ships inside the package (package data, found through ``importlib.resources``):
the C runtime — startup code, linker scripts and harnesses per board, ``mcunet_simd.h``.

An installed wheel holds them as plain files beside the modules (zip-imported installs are not
supported: gcc needs real paths).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: ``mcunet_tvm/runtime_c``: ``common/`` (startup, semihosting, QEMU harness, ``mcunet_simd.h``),
#: ``host/`` (the host harness), ``boards/<machine>/`` (linker scripts)
RUNTIME_C = Path(str(files("mcunet_tvm") / "runtime_c"))
SIMD_HEADER = RUNTIME_C / "common" / "mcunet_simd.h"
