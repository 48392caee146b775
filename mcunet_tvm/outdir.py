"""The output folder, replaced only on success.

A build writes into a fresh folder beside ``--out`` (same filesystem, so the
swap is a rename); :func:`staged_output` puts it in place of ``--out`` only
when the build returns. After any failure ``--out`` holds exactly what it held
before, and the partial folder is removed. A folder that holds files but no
earlier build is never replaced: the user may have pointed ``--out`` at a
folder of their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import McunetError

#: a folder holding one of these was written by a build and may be replaced by the next one
BUILD_MARKERS = ("report.json", "firmware")


def check_output_folder(out: Path) -> None:
    """Fail early (before any compiling) if ``out`` cannot become a build's output folder."""
    if out.exists() and not out.is_dir():
        raise McunetError(f"'{out}' is a file, not a folder", where="--out",
                          hint="name a new folder (it is created) or an earlier build's folder")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in BUILD_MARKERS):
        raise McunetError(f"'{out}' holds files that are not a build's output; the build would replace them",
                          where="--out", hint="name a new or empty folder, or an earlier build's folder")
    parent = _existing_parent(out)
    if not parent.is_dir():
        raise McunetError(f"'{parent}' is not a folder", where="--out", hint="name a folder path")
    try:
        with tempfile.TemporaryDirectory(dir=parent, prefix=".mcunet-check-"):
            pass
    except OSError as exc:
        raise McunetError(f"cannot write into '{parent}': {exc.strerror}", where="--out",
                          hint="name a folder on a writable filesystem") from None


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield an empty folder to build into; on success it becomes ``out`` (replacing an earlier build)."""
    check_output_folder(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
        stage.chmod(0o777 & ~_umask())
    except OSError as exc:
        raise McunetError(f"cannot create the output folder: {exc.strerror}", where=f"--out {out}") from None
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _replace(out, stage)


def _replace(out: Path, stage: Path) -> None:
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            out.rename(old / "build")
        stage.rename(out)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and (old / "build").exists() and not out.exists():
            (old / "build").rename(out)
        raise McunetError(f"cannot replace the output folder: {exc.strerror}", where=f"--out {out}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _existing_parent(out: Path) -> Path:
    """The nearest existing folder (or file) above ``out``: where the staging folder is made."""
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent
