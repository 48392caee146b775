"""Benchmark kernel speed: instructions per MAC, plain TIR vs SIMD micro-kernels (size-optimised, tuned), code size.

    .venv/bin/python scripts/bench_speed.py [--target cortex-m7] [--models ...] [--tune N]

For each model: build and profile on QEMU with the plain TIR kernels
(``--kernels plain``), with the SIMD micro-kernels (the default on DSP
cores), with the shared shape-generic kernels (``--optimize size``), and
with ``--tune N`` once more after tuning (database:
build/bench_speed/tuning.json). Every build is checked bit-exact against the
host reference (and TF Lite Micro). Prints Markdown tables (paste into
docs/BENCHMARKS.md): per model, per operator type, and the code size of the
kernels plus the entry point (the ``.text`` sections of the generated objects:
no weights), and writes build/bench_speed/results.json. On the Cortex-M4 and M7 every
profile also carries the cycle model's estimate (``mcunet_tvm.cycles``: a model, not a
measurement), printed beside the instructions as "est. cycles" of the SIMD (or tuned) build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ["demo-cnn", "mcunet-vww-like", "mbv2-w0.35-r96", "mbv2-w0.35-r144", "mbv2-w0.5-r128",
                  "mbv2-w1.0-r224", "mcunet-in-like"]


def run(model: str, target: str, out: Path, extra: list[str]) -> tuple[dict, dict, int]:
    from mcunet_tvm.api import build
    from mcunet_tvm.build import options_from_args, parse_args

    argv = ["--target", target, "--model", model, "--out", str(out), "--profile", "--quiet", *extra]
    report = build(options_from_args(parse_args(argv))).report
    run_info = report["qemu"]
    if not (run_info["bit_exact"] and run_info.get("bit_exact_tflm", True)):
        raise SystemExit(f"{model}: output is not bit-exact ({extra})")
    profile = json.loads((out / "profile.json").read_text())
    return report, profile, report["code_bytes"]  # .text of kernels + entry point (weights are .rodata)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--tune", type=int, default=0, help="also tune N schedules per layer and measure again")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench_speed")
    args = parser.parse_args()
    db = args.out / "tuning.json"

    results = []
    by_type: dict[str, dict[str, list[int]]] = {}
    for model in args.models:
        row = {"model": model}
        for variant, extra in (("plain", ["--kernels", "plain"]), ("simd", []), ("size", ["--optimize", "size"])) + (
            (("tuned", ["--tune", str(args.tune), "--tune-db", str(db)]),) if args.tune else ()
        ):
            if variant in ("simd", "size"):
                extra = [*extra, "--tune-db", str(args.out / "untuned.json")]  # never read a tuned database
            report, profile, code = run(model, args.target, args.out / f"{model}-{variant}", extra)
            row["macs"] = report["macs"]
            row[variant] = {"instructions": profile["total_instructions"],
                            "cycles_estimate": profile.get("total_cycles_estimate"),
                            "instructions_per_mac": profile["instructions_per_mac"], "code_bytes": code,
                            "arena_bytes": report["arena_bytes"], "flash_bytes": report["flash_bytes"],
                            "kernel_functions": report["kernels"]["kernel_functions"],
                            "layers": report["kernels"]["layers"]}
            for g in profile["by_op_type"]:
                acc = by_type.setdefault(g["op"], {}).setdefault(variant, [0, 0])
                acc[0] += g["instructions"]
                acc[1] += g["macs"]
        results.append(row)
        print(f"{model}: " + ", ".join(f"{v} {row[v]['instructions_per_mac']:.2f} instr/MAC"
                                       for v in ("plain", "simd", "size", "tuned") if v in row), file=sys.stderr)

    variants = ["plain", "simd", "size"] + (["tuned"] if args.tune else [])
    print(f"\n### Instructions per MAC on {args.target} (QEMU, exact counts)\n")
    head = "| model | MACs | " + " | ".join(f"{v} instructions | {v} instr/MAC" for v in variants)
    print(head + " | SIMD speed-up | arena B (plain / SIMD) | est. cycles (model) | est. cycles/MAC |")
    print("|" + "---|" * (6 + 2 * len(variants)))
    for r in results:
        cells = " | ".join(f"{r[v]['instructions']:,} | {r[v]['instructions_per_mac']:.2f}" for v in variants)
        fastest = r["tuned" if args.tune else "simd"]
        best = fastest["instructions"]
        cyc = fastest["cycles_estimate"]
        est = f"{cyc:,} | {cyc / r['macs']:.2f}" if cyc is not None else "- | -"
        print(f"| {r['model']} | {r['macs']:,} | {cells} | {r['plain']['instructions'] / best:.2f}x | "
              f"{r['plain']['arena_bytes']:,} / {r['simd']['arena_bytes']:,} | {est} |")
    total = {v: sum(r[v]["instructions"] for r in results) for v in variants}
    macs = sum(r["macs"] for r in results)
    print("| all models | " + f"{macs:,} | " + " | ".join(f"{total[v]:,} | {total[v] / macs:.2f}" for v in variants)
          + f" | {total['plain'] / total['tuned' if args.tune else 'simd']:.2f}x | | | |")
    print("\n### Per operator type, all models together\n")
    print("| op type | " + " | ".join(f"{v} instr/MAC" for v in variants) + " |")
    print("|" + "---|" * (1 + len(variants)))
    for op, vs in sorted(by_type.items(), key=lambda kv: -kv[1]["plain"][0]):
        cells = " | ".join(f"{vs[v][0] / vs[v][1]:.2f}" if vs.get(v) and vs[v][1] else
                           (f"{vs[v][0]:,} instr" if vs.get(v) else "-") for v in variants)
        print(f"| {op} | {cells} |")
    print("\n### Code size: kernels + entry point (.text, no weights)\n")
    print("| model | " + " | ".join(f"{v} code B" for v in variants) + " | size: C kernels / layers |")
    print("|" + "---|" * (2 + len(variants)))
    for r in results:
        print(f"| {r['model']} | " + " | ".join(f"{r[v]['code_bytes']:,}" for v in variants)
              + f" | {r['size']['kernel_functions']} / {r['size']['layers']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"results": results, "by_type": by_type}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
