"""Compile and link generated C for a target with GCC (arm-none-eabi-gcc or the host's gcc)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ToolchainError
from ..resources import RUNTIME_C
from ..targets import TargetSpec

if TYPE_CHECKING:  # the C names come from the emitter, imported when compiling (it pulls in TVM)
    from ..aot.emit_c import CNames

RUNTIME = RUNTIME_C
INSTALL = "make setup   (or: sudo apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
WARNINGS = ("-Wall", "-Wextra", "-Werror")


def _cc(target: TargetSpec) -> str:
    return "arm-none-eabi-gcc" if target.mcpu else "gcc"


def _size_tool(target: TargetSpec) -> str:
    return "arm-none-eabi-size" if target.mcpu else "size"


def check_toolchain(target: TargetSpec, need_qemu: bool = True) -> None:
    """Raise :class:`ToolchainError` naming the install command if a tool is missing."""
    tools = [_cc(target), _size_tool(target)]
    if target.qemu_machine and need_qemu:
        tools.append("qemu-system-arm")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise ToolchainError(f"missing tool(s): {', '.join(missing)}", hint=f"install them: {INSTALL}")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed:\n{proc.stderr.strip()}", where=" ".join(cmd[:3]) + " ...")


def _runtime_sources(target: TargetSpec, runtime: Path | None) -> list[Path]:
    if runtime is not None:
        return sorted(runtime.glob("*.c"))
    if target.mcpu is None:
        return [RUNTIME / "host" / "main.c"]
    common = RUNTIME / "common"
    return [common / "startup.c", common / "semihost.c", common / "main_qemu.c"]


def compile_objects(
    target: TargetSpec,
    sources: list[Path],
    include_dirs: list[Path],
    obj_dir: Path,
    opt: str = "-O2",
    defines: tuple[str, ...] = (),
    runtime: Path | None = None,
    board_runtime: Path | None = None,
) -> list[Path]:
    """Compile the model ``sources`` (warnings are errors); returns their object files.

    The runtime objects (the QEMU or host harness; with ``runtime``, the ``.c`` files of that
    folder, e.g. a board project's ``board/``) are compiled alongside, into ``obj_dir/runtime``,
    and added by :func:`link`; Cortex-M builds define MCUNET_PROFILE so the harness can count
    instructions per step, and place the arena in the section ``.bss.arena`` (region ARENA of the
    linker script). ``board_runtime``: the ``.c`` files of that folder too, into ``obj_dir/board_runtime``
    (an emulated board's project, linked beside the QEMU harness: :func:`link` with ``runtime_dir``).
    """
    check_toolchain(target, need_qemu=False)
    obj_dir.mkdir(parents=True, exist_ok=True)
    flags = [*target.cflags, opt, *WARNINGS, "-ffunction-sections", "-fdata-sections",
             *(f"-D{d}" for d in defines), *(f"-I{d}" for d in include_dirs)]
    if target.mcpu:
        flags.append("-DMCUNET_PROFILE")
    names = _names_of(sources)
    arena = [f'-D{names.macro}ARENA_SECTION=__attribute__((section(".bss.arena")))'] if target.mcpu else []
    objects, jobs = [], []
    for src in sources:
        obj = obj_dir / (src.stem + ".o")
        jobs.append(([_cc(target), *flags, *arena, "-c", str(src), "-o", str(obj)], f"compiling {src.name}"))
        objects.append(obj)
    runtime_dir = obj_dir / "runtime"
    runtime_dir.mkdir(exist_ok=True)
    from ..aot.emit_c import emit_harness_header

    (runtime_dir / "mcunet_harness.h").write_text(emit_harness_header(names))
    board = [f"-I{RUNTIME / 'boards' / target.board}"] if target.board else []
    if runtime is not None:
        board.insert(0, f"-I{runtime}")
    for src in _runtime_sources(target, runtime):
        obj = runtime_dir / (src.stem + ".o")
        jobs.append(([_cc(target), *flags, *board, f"-I{RUNTIME / 'common'}", f"-I{runtime_dir}", "-c", str(src),
                      "-o", str(obj)], f"compiling the runtime ({src.name})"))
    if board_runtime is not None:
        project_dir = obj_dir / "board_runtime"
        project_dir.mkdir(exist_ok=True)
        for src in sorted(board_runtime.glob("*.c")):
            jobs.append(([_cc(target), *flags, f"-I{board_runtime}", f"-I{runtime_dir}", "-c", str(src), "-o",
                          str(project_dir / (src.stem + ".o"))], f"compiling the board project ({src.name})"))
    _run_all(jobs)
    return objects


def _run_all(jobs: list[tuple[list[str], str]]) -> None:
    """The compiler runs of ``jobs``, one per core at a time; the first failure (in job order) is raised."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        done = [pool.submit(_run, cmd, what) for cmd, what in jobs]
    for future in done:
        future.result()


def _names_of(sources: list[Path]) -> CNames:
    """The C names of the model among ``sources`` (``NAME_model.c``; the default without one)."""
    from ..aot.emit_c import DEFAULT_NAMES, CNames

    models = [src.name[: -len("_model.c")] for src in sources if src.name.endswith("_model.c")]
    return CNames(models[0]) if models else DEFAULT_NAMES


def link(target: TargetSpec, objects: list[Path], out: Path, script: Path | None = None,
         runtime_dir: str = "runtime") -> Path:
    """Link model objects with the runtime objects compiled next to them, in ``runtime_dir`` (Cortex-M:
    with the board's ``link.ld``, or ``script``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    runtime = sorted((objects[0].parent / runtime_dir).glob("*.o"))
    if target.mcpu:
        script = script or RUNTIME / "boards" / target.board / "link.ld"
        flags = [*target.cflags, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
                 f"-L{RUNTIME / 'common'}", f"-T{script}", "-Xlinker",
                 f"-Map={out.with_suffix('.map')}"]  # -Xlinker, not -Wl,: a path may hold commas
        libs = ["-lc", "-lgcc"]
    else:
        flags, libs = [], []
    _run([_cc(target), *flags, *map(str, objects), *map(str, runtime), *libs, "-o", str(out)], "linking")
    return out


def _sizes(target: TargetSpec, files: list[Path]) -> list[tuple[int, int, int]]:
    proc = subprocess.run([_size_tool(target), "-B", *map(str, files)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"size failed: {proc.stderr.strip()}")
    rows = []
    for line in proc.stdout.splitlines()[1:]:
        text, data, bss = (int(v) for v in line.split()[:3])
        rows.append((text, data, bss))
    return rows


def flash_bytes(target: TargetSpec, exe: Path) -> int:
    """text + rodata + data of the whole image: what must fit in flash."""
    text, data, _ = _sizes(target, [exe])[0]
    return text + data


def object_flash_bytes(target: TargetSpec, objects: list[Path]) -> int:
    """text + rodata + data summed over ``objects`` (the model's own share of flash)."""
    return sum(text + data for text, data, _ in _sizes(target, objects))


def code_bytes(target: TargetSpec, objects: list[Path]) -> int:
    """Machine code only (the ``.text`` sections, no constants) summed over ``objects``."""
    proc = subprocess.run([_size_tool(target), "-A", *map(str, objects)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"size failed: {proc.stderr.strip()}")
    return sum(int(parts[1]) for parts in map(str.split, proc.stdout.splitlines())
               if len(parts) >= 2 and parts[0].startswith(".text") and parts[1].isdigit())
