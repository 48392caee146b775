"""TinyNAS benchmark: the NAS-found model vs MobileNetV2 on equal terms, over several seeds.

    .venv/bin/python scripts/bench_nas.py [--seeds N] [--smoke] [--docs DIR] [NAS options]
    .venv/bin/python scripts/bench_nas.py --from docs/nas      (only print the table of recorded runs)

For every seed 0..N-1 (default 3) it runs ``python -m mcunet_tvm.nas`` (demo dataset, STM32F746
unless NAS options say otherwise; the dataset is the same for every seed, ``--data-seed 0``) into
``build/nas_bench/seed<k>``, which trains, searches, trains the MobileNetV2 baseline and the
equal-compute comparisons, compiles the winner and the baseline and runs them on QEMU. It copies
each ``result.json`` to ``DIR/seed<k>.json`` (default ``docs/nas``) and prints the Markdown
table of ``docs/BENCHMARKS.md``: test accuracies as mean +- standard deviation over the seeds.
``--smoke`` uses the quick settings (minutes; the accuracies then only show the pipeline runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the settings of the table in docs/BENCHMARKS.md
#: (recorded with layer-based plans, before the NAS planned with patches: ``--patch off`` reproduces it)
RECORDED = ["--mcu", "stm32f746", "--data", "demo", "--supernet-epochs", "6", "--finetune-epochs", "4",
            "--population", "12", "--generations", "4", "--space-samples", "60", "--resolutions", "48", "64", "80",
            "96", "--patch", "off"]
SMOKE = ["--mcu", "stm32f746", "--data", "demo", "--quick", "--space-samples", "10"]


def _stat(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _gap(a: list[float], b: list[float]) -> str:
    d = [(x - y) * 100 for x, y in zip(a, b, strict=True)]
    if len(d) == 1:
        return f"{d[0]:+.1f}"
    return f"{statistics.mean(d):+.1f} ± {statistics.stdev(d):.1f}"


def table(results: list[dict]) -> str:
    """The Markdown section for ``results`` (one ``result.json`` per seed)."""
    n = len(results)

    def col(*path: str) -> list[float]:
        out = []
        for r in results:
            v = r
            for p in path:
                v = v[p]
            out.append(float(v))
        return out

    rows = [("NAS pipeline (supernet + fine-tune) vs MobileNetV2, baseline recipe",
             col("accuracy"), col("baseline", "test_accuracy"))]
    if all(r["equal_compute"] for r in results):
        rows += [
            ("(a) same recipe: winner's architecture from scratch vs MobileNetV2",
             col("equal_compute", "same_recipe", "winner_from_scratch", "test_accuracy"),
             col("equal_compute", "same_recipe", "baseline", "test_accuracy")),
            ("(b) same forward/backward passes: NAS pipeline vs MobileNetV2",
             col("equal_compute", "same_passes", "nas_pipeline", "test_accuracy"),
             col("equal_compute", "same_passes", "baseline", "test_accuracy")),
        ]
    lines = [f"Test accuracy, mean ± standard deviation over {n} seed{'s' if n > 1 else ''} "
             f"({', '.join(str(r['settings']['seed']) for r in results)}); gap in points.", "",
             "| comparison | NAS | MobileNetV2 | gap |", "|---|---|---|---|"]
    lines += [f"| {name} | {_stat(a)} | {_stat(b)} | {_gap(a, b)} |" for name, a, b in rows]
    lines += ["", "| seed | model | width | resolution | MACs | params | planned arena B | measured arena B | "
              "measured flash B | instructions | bit-exact | val accuracy | test accuracy |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        a, b = r["architecture"], r["baseline"]
        for name, w, res, info, m, val, test in (
            ("NAS", a["width"], a["resolution"], r, r.get("measured") or {}, r["val_accuracy"], r["accuracy"]),
            (f"MobileNetV2 (last {b['last_channels']})", b["width"], b["resolution"], b, b.get("measured") or {},
             b["val_accuracy"], b["test_accuracy"]),
        ):
            lines.append(f"| {r['settings']['seed']} | {name} | {w} | {res} | {info['macs']:,} | {info['params']:,} "
                         f"| {info['arena_bytes']:,} | {m.get('arena_bytes', 0):,} | {m.get('flash_bytes', 0):,} | "
                         f"{m.get('instructions') or 0:,} | {m.get('bit_exact')} | {val:.3f} | {test:.3f} |")
    r0 = results[0]
    c = r0["compute"]
    lines += ["", f"Dataset {r0['dataset']['name']}: {r0['dataset']['train']} train / {r0['dataset']['val']} "
              f"validation / {r0['dataset']['test']} test images. Settings: {json.dumps(r0['settings'])}. "
              f"Forward/backward passes (seed {r0['settings']['seed']}): supernet {c['supernet']['forward_backward']:,}"
              f" + fine-tune {c['finetune']['forward_backward']:,}; MobileNetV2 recipe "
              f"{c['baseline']['forward_backward']:,} (+ screening {c['baseline_screen']['forward_backward']:,} "
              f"over {len(r0['baseline_candidates'])} fitting candidates); (b) baseline "
              f"{c['baseline_same_passes']['forward_backward']:,}. {sum(r['seconds'] for r in results) / 60:.0f} min "
              "in all."]
    if r0["settings"]["quick"]:
        lines += ["", f"**{r0['note']}.**"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="source", type=Path, help="print the table of DIR/seed*.json and stop")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="quick settings (a smoke test, minutes)")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "nas", help="where the result.json copies go")
    args, nas_args = p.parse_known_args(argv)
    if args.source:
        files = sorted(args.source.glob("seed*.json"))
        if not files:
            print(f"error: no seed*.json in {args.source}", file=sys.stderr)
            return 2
        print(table([json.loads(f.read_text()) for f in files]))
        return 0
    from mcunet_tvm.nas.cli import main as nas_main

    base = nas_args or (SMOKE if args.smoke else RECORDED)
    results = []
    args.docs.mkdir(parents=True, exist_ok=True)
    for old in args.docs.glob("seed*.json"):
        old.unlink()
    for seed in range(args.seeds):
        out = ROOT / "build" / "nas_bench" / f"seed{seed}"
        code = nas_main([*base, "--out", str(out), "--seed", str(seed), "--data-seed", "0"])
        if code != 0:
            return code
        shutil.copy(out / "result.json", args.docs / f"seed{seed}.json")
        results.append(json.loads((out / "result.json").read_text()))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
