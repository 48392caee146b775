"""TinyNAS benchmark: the NAS-found model vs the best scaled MobileNetV2 under the same budget.

    .venv/bin/python scripts/bench_nas.py [NAS options]   (default: the settings recorded in docs/BENCHMARKS.md)
    .venv/bin/python scripts/bench_nas.py --from build/nas_bench/result.json   (only print the table)

Runs ``python -m mcunet_tvm.nas`` (on the demo dataset, STM32F746 unless options say otherwise),
which trains, searches, compiles the winner and runs it on QEMU, then prints the Markdown
section recorded in docs/BENCHMARKS.md from ``result.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["--mcu", "stm32f746", "--data", "demo", "--out", str(ROOT / "build" / "nas_bench"),
           "--supernet-epochs", "6", "--finetune-epochs", "4", "--population", "12", "--generations", "4",
           "--space-samples", "60", "--resolutions", "48", "64", "80", "96"]


def table(r: dict) -> str:
    b, m, a = r["baseline"], r.get("measured", {}), r["architecture"]
    return "\n".join([
        "| model | width | resolution | MACs | params | planned arena B | planned flash B | measured arena B | "
        "measured flash B | val accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| NAS found (fine-tuned) | {a['width']} | {a['resolution']} | {r['macs']:,} | {r['params']:,} | "
        f"{r['arena_bytes']:,} | {r['flash_bytes']:,} | {m.get('arena_bytes', 0):,} | {m.get('flash_bytes', 0):,} | "
        f"**{r['accuracy']:.3f}** |",
        f"| best MobileNetV2 that fits | {b['width']} | {b['resolution']} | {b['macs']:,} | {b['params']:,} | "
        f"{b['arena_bytes']:,} | {b['flash_bytes']:,} | - | - | {r['baseline_accuracy']:.3f} |",
        "",
        f"Margin: {(r['accuracy'] - r['baseline_accuracy']) * 100:+.1f} points; winner bit-exact on QEMU: "
        f"{m.get('bit_exact')}, {m.get('instructions', 0):,} instructions; chosen space width "
        f"{r['search_space']['width']}, resolution {r['search_space']['resolution']}; {r['evaluated_subnets']} "
        f"subnets evaluated; {r['seconds'] / 60:.0f} min.",
    ])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--from"]:
        print(table(json.loads(Path(argv[1]).read_text())))
        return 0
    from mcunet_tvm.nas.cli import main as nas_main

    args = argv or DEFAULT
    code = nas_main(args)
    if code == 0:
        out = Path(args[args.index("--out") + 1])
        print(table(json.loads((out / "result.json").read_text())))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
