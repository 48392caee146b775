"""The conformance corpus end to end: every model on QEMU Cortex-M4 and M7, against TF Lite Micro.

    .venv/bin/python scripts/bench_corpus.py [--targets cortex-m4 cortex-m7] [--only NAME ...] [--json FILE]

For each model of ``tests/fixtures/corpus/`` (int8 .tflite files written by the TF Lite
converter in the architectures of public TinyML reference networks, ``scripts/make_tflite_corpus.py``)
the compiler builds the firmware (``mcunet_tvm.api.build``, default options), runs it once on
QEMU with a seeded random input and reports: TFLite operators, MACs, our arena against TF Lite
Micro's (its whole arena, and the tensor part of it, from its RecordingMicroAllocator), flash
(the linked image and the model's part of it), instructions (QEMU ``-icount``, exact) and
instructions per MAC per core, and whether the output equals TF Lite Micro's on the original
file and the host reference on the graph as imported, byte for byte. A model the compiler
refuses is listed with the reason. Prints a markdown table (``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"


def _ops(path: Path) -> str:
    from mcunet_tvm.frontend.tflite import read_model

    counts = Counter(op.name for op in read_model(path).operators)
    return ", ".join(f"{name} {n}" if n > 1 else name for name, n in counts.most_common())


def _measure(path: Path, target: str, work: Path) -> dict:
    from mcunet_tvm.api import BuildOptions, build
    from mcunet_tvm.errors import McunetError

    try:
        options = BuildOptions(model=str(path), out=work / f"{path.stem}-{target}", target=target, run=True)
        report = build(options).report
    except McunetError as exc:
        return {"refused": exc.what}
    run = report["qemu"]
    return {
        "macs": report["macs"], "arena": report["arena_bytes"], "tflm_arena": report.get("tflm_arena_bytes"),
        "tflm_tensor_arena": report.get("tflm_tensor_arena_bytes"), "flash": report["flash_bytes"],
        "model_flash": report["model_flash_bytes"], "instructions": run["instructions"],
        "instructions_per_mac": run["instructions"] / max(report["macs"], 1),
        "bit_exact_tflm": run.get("bit_exact_tflm"), "bit_exact_imported": run["bit_exact"],
    }


def main() -> int:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", default=["cortex-m4", "cortex-m7"])
    p.add_argument("--only", nargs="*", help="model names (file stems) to run")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args()
    models = [m for m in sorted(CORPUS.glob("*.tflite")) if not args.only or m.stem in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in models:
            row = {"model": path.stem, "ops": _ops(path)}
            for target in args.targets:
                row[target] = _measure(path, target, Path(tmp))
                print(f"# {path.stem} {target}: {row[target]}", file=sys.stderr, flush=True)
            rows.append(row)
    print(_table(rows, args.targets))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    built = [r[t] for r in rows for t in args.targets if "refused" not in r[t]]
    return 0 if all(m["bit_exact_tflm"] and m["bit_exact_imported"] for m in built) else 1


def _table(rows: list[dict], targets: list[str]) -> str:
    cores = " | ".join(f"{t} instr. (per MAC)" for t in targets)
    lines = [f"| model | MACs | arena (TFLM arena, tensors) | flash (model) | {cores} | bit-exact (TFLM, imported) |",
             "|---" * (5 + len(targets)) + "|"]
    for row in rows:
        first = row[targets[0]]
        if "refused" in first:
            lines.append(f"| {row['model']} | refused: {first['refused']} |" + " |" * (3 + len(targets)))
            continue
        per_core = " | ".join(f"{row[t]['instructions']:,} ({row[t]['instructions_per_mac']:.2f})" for t in targets)
        exact = all(row[t]["bit_exact_tflm"] and row[t]["bit_exact_imported"] for t in targets)
        lines.append(
            f"| {row['model']} | {first['macs']:,} | {first['arena']:,} B ({first['tflm_arena']:,} B, "
            f"{first['tflm_tensor_arena']:,} B) | {first['flash']:,} B ({first['model_flash']:,} B) | {per_core} | "
            f"{'yes' if exact else 'NO'} |")
    lines.append("")
    lines += [f"- {row['model']}: {row['ops']}" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
