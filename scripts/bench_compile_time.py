"""Compile time of ``python -m mcunet_tvm.build`` phase by phase (patch search, kernels, TVM lowering, gcc).

    .venv/bin/python scripts/bench_compile_time.py [--models mbv2-w0.35-r144 demo-cnn] [--target cortex-m7]

Each model is built through the public API (``mcunet_tvm.api.build``, ``--patch auto``) into a
temporary folder; the build's own progress lines (:mod:`mcunet_tvm.progress`) are printed with the
wall-clock second they arrived, then the total wall time, the user CPU time of this process and its
children (gcc) and the load average (the machine may be shared: compare CPU time, not only wall time).
The phases exclude Python's start and the imports of torch and TVM; the command as a user runs it,
``python -m mcunet_tvm.build ... --patch auto --quiet`` in a fresh interpreter, is timed after them
(``CLI`` line), which is the figure to compare with a target.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime


def bench(model: str, target: str) -> None:
    """Build ``model`` with ``--patch auto`` for ``target``; print its phases and totals."""
    from mcunet_tvm.api import BuildOptions, build

    t0, cpu0, load0 = time.monotonic(), _cpu_seconds(), os.getloadavg()[0]

    def say(line: str) -> None:
        print(f"  {time.monotonic() - t0:7.1f} s  {line}", flush=True)

    print(f"{model} --target {target} --patch auto")
    with tempfile.TemporaryDirectory() as out:
        result = build(BuildOptions(model=model, out=Path(out) / "out", target=target, patch="auto", progress=say))
    wall, cpu = time.monotonic() - t0, _cpu_seconds() - cpu0
    print(f"  total {wall:.1f} s wall, {cpu:.1f} s user CPU (compile to C: {result.report['compile_seconds']} s); "
          f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after", flush=True)
    with tempfile.TemporaryDirectory() as out:
        t1, load1 = time.monotonic(), os.getloadavg()[0]
        subprocess.run([sys.executable, "-m", "mcunet_tvm.build", "--model", model, "--target", target, "--patch",
                        "auto", "--out", str(Path(out) / "out"), "--quiet"], check=True, cwd=ROOT)
        print(f"  CLI {time.monotonic() - t1:.1f} s wall (python -m mcunet_tvm.build, imports included); "
              f"load average {load1:.2f} before, {os.getloadavg()[0]:.2f} after\n", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["mbv2-w0.35-r144", "demo-cnn"])
    parser.add_argument("--target", default="cortex-m7")
    args = parser.parse_args()
    for model in args.models:
        bench(model, args.target)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
