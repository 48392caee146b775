"""The wheel is the whole compiler: installed from it (not editable) into a fresh venv, with the pinned
environment's packages as its dependencies (offline), the console script compiles and runs a model
from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import ROOT


def _run(*cmd, cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


def test_wheel_installs_and_builds_outside_the_checkout(tmp_path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, ROOT,
         cwd=tmp_path)
    (wheel,) = dist.glob("mcunet_tvm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("mcunet_tvm/nas/cli.py", "mcunet_tvm/runtime_c/common/mcunet_simd.h",
                   "mcunet_tvm/runtime_c/common/startup.c", "mcunet_tvm/runtime_c/boards/mps2-an500/link.ld",
                   "mcunet_tvm/runtime_c/boards/nrf52840dk/console.c", "mcunet_tvm/runtime_c/common/main_board.c",
                   "mcunet_tvm/runtime_c/host/main.c", "mcunet_tvm/frontend/tflite/importer.py"):
        assert needed in names, needed

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # the dependencies: the pinned environment's own site-packages (no download, no mcunet_tvm in it)
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
         "--no-index", wheel, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = _run(venv / "bin" / "python", "-c", "import mcunet_tvm; print(mcunet_tvm.__file__)", cwd=tmp_path,
                 env=env).stdout
    assert where.startswith(str(site)), where  # the installed copy, not the checkout

    work = tmp_path / "work"
    work.mkdir()
    _run(venv / "bin" / "mcunet-build", "--model", ROOT / "tests" / "fixtures" / "tiny_cnn.tflite",
         "--target", "host", "--run", "--out", "out", cwd=work, env=env)
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["host_run"]["bit_exact"] and report["host_run"]["bit_exact_tflm"]
    assert (work / "out" / "mcunet_simd.h").exists()
    _run(venv / "bin" / "mcunet-build", "--model", "demo-cnn", "--target", "cortex-m4", "--out", "m4", cwd=work,
         env=env)
    assert (work / "m4" / "firmware" / "model.elf").exists()
    # a board build (its project from the package data) run from the host with the installed mcunet-run
    _run(venv / "bin" / "mcunet-build", "--model", ROOT / "tests" / "fixtures" / "tiny_cnn.tflite", "--board",
         "netduinoplus2", "--out", "nd", "--quiet", cwd=work, env=env)
    _run(venv / "bin" / "mcunet-run", "--board", "netduinoplus2", "--out", "nd", "--quiet", cwd=work, env=env)
    assert json.loads((work / "nd" / "board_run.json").read_text())["bit_exact"] is True
