"""Benchmark the built-in models: memory, flash, stack, instructions, vs TF Lite Micro.

    .venv/bin/python scripts/bench.py [--targets cortex-m7 cortex-m4] [--models demo-cnn ...]

For each model and target: compile, run once on QEMU (bit-exactness checked
against the host reference and TF Lite Micro), and print one table row.
TFLM's arena is measured by TFLM itself on the same network (the .tflite
file, or our export of the compiled integer program). Prints a Markdown table
(paste into docs/BENCHMARKS.md) and writes build/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = [
    str(ROOT / "tests" / "fixtures" / "tiny_cnn.tflite"),
    "demo-cnn",
    "mbv2-w0.35-r96",
    "mcunet-vww-like",
    "mbv2-w0.35-r144",
]


def main() -> int:
    from mcunet_tvm.api import build
    from mcunet_tvm.build import options_from_args, parse_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cortex-m7"])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    args = parser.parse_args()

    rows = []
    header = ("| model | target | MACs | params | arena B | lower bound B | TFLM arena B (tensors) | "
              "arena / TFLM | stack B | flash B | model flash B | instructions | instr/MAC | "
              "bit-exact (ref, TFLM) | compile s |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for model in args.models:
        for target in args.targets:
            name = Path(model).stem if model.endswith(".tflite") else model
            ns = parse_args(["--target", target, "--model", str(model), "--out", str(args.out / f"{name}-{target}"),
                             "--run", "--quiet"])
            t0 = time.monotonic()
            report = build(options_from_args(ns)).report
            wall = time.monotonic() - t0
            run = report["qemu"]
            tflm = report.get("tflm_arena_bytes")
            tflm_tensors = report.get("tflm_tensor_arena_bytes")
            row = {
                "model": name, "target": target, **{k: report[k] for k in (
                    "macs", "params", "arena_bytes", "arena_lower_bound_bytes", "stack_bytes", "flash_bytes",
                    "model_flash_bytes", "compile_seconds")},
                "tflm_arena_bytes": tflm, "tflm_tensor_arena_bytes": tflm_tensors,
                "instructions": run["instructions"], "bit_exact": run["bit_exact"],
                "bit_exact_tflm": run.get("bit_exact_tflm"), "wall_seconds": round(wall, 1),
            }
            rows.append(row)
            ratio = f"{row['arena_bytes'] / tflm:.2f}" if tflm else "n/a"
            print(f"| {name} | {target} | {row['macs']:,} | {row['params']:,} | {row['arena_bytes']:,} | "
                  f"{row['arena_lower_bound_bytes']:,} | {tflm or 'n/a':,} ({tflm_tensors or 'n/a':,}) | {ratio} | "
                  f"{row['stack_bytes']:,} | {row['flash_bytes']:,} | {row['model_flash_bytes']:,} | "
                  f"{row['instructions']:,} | {row['instructions'] / row['macs']:.2f} | "
                  f"{'yes' if row['bit_exact'] else 'NO'}, {'yes' if row['bit_exact_tflm'] else 'NO'} | "
                  f"{row['compile_seconds']} |", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["bit_exact"] and r["bit_exact_tflm"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
