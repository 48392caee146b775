"""Zero-copy views (``ZeroCopyViews``): arena and instructions with every copy vs with the views.

    .venv/bin/python scripts/bench_views.py [--target cortex-m7] [--only NAME ...]

For every model of ``tests/fixtures/corpus/`` and ``tests/fixtures/ops/`` with a CONCATENATION
or a slice (SPLIT, SPLIT_V, SLICE, STRIDED_SLICE, UNPACK, the copies of PACK), the firmware is
built twice through ``mcunet_tvm.api.build`` (``views=False``: every one a copy kernel, as
before the pass; ``views=True``: the default) and run once on QEMU with the same seeded input:
how many of those steps became views, the arena, the instructions, and whether both outputs
are bit-exact with the host reference and TF Lite Micro. Prints a markdown table
(``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def _movement_steps(path: Path) -> int:
    """CONCATENATION and slice steps of the model as imported (0: nothing to compare)."""
    from mcunet_tvm.errors import McunetError
    from mcunet_tvm.frontend.tflite.importer import import_tflite
    from mcunet_tvm.ir import program_of
    from mcunet_tvm.ops import Concat, Slice

    try:
        mod, _ = import_tflite(path)
    except McunetError:  # refused models are the corpus script's business
        return 0
    return sum(isinstance(c.op, (Concat, Slice)) for c in program_of(mod).calls)


def _measure(path: Path, target: str, views: bool, work: Path) -> dict:
    from mcunet_tvm.api import BuildOptions, build

    out = work / f"{path.stem}-{int(views)}"
    result = build(BuildOptions(model=str(path), out=out, target=target, run=True, views=views))
    report, prog = result.report, result.compiled.program
    run = report["qemu"]
    return {"arena": report["arena_bytes"], "instructions": run["instructions"],
            "views": sum(c.choice.view for c in prog.calls),
            "exact": bool(run["bit_exact"]) and run.get("bit_exact_tflm") is not False}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--only", nargs="*", help="model file stems")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    paths = sorted((FIXTURES / "corpus").glob("*.tflite")) + sorted((FIXTURES / "ops").glob("*.tflite"))
    if args.only:
        paths = [p for p in paths if p.stem in args.only]
    print(f"target {args.target}\n")
    print("| model | concat/slice steps | views | arena B (copies → views) | instructions (copies → views) | "
          "bit-exact |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            steps = _movement_steps(path)
            if not steps:
                continue
            before = _measure(path, args.target, False, Path(tmp))
            after = _measure(path, args.target, True, Path(tmp))
            change = after["instructions"] - before["instructions"]
            print(f"| {path.parent.name}/{path.stem} | {steps} | {after['views']} | {before['arena']:,} → "
                  f"{after['arena']:,} | {before['instructions']:,} → {after['instructions']:,} "
                  f"({change / before['instructions']:+.1%}) | {before['exact'] and after['exact']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
