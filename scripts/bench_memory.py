"""Peak SRAM (activation arena) of our planner vs TF Lite Micro, and vs published TinyEngine figures.

    .venv/bin/python scripts/bench_memory.py [--models NAME ...] [--widths 0.35 0.5 1.0] [--resolutions 96 144 224]

For every network: lower to integer kernels, plan the arena (with and without
in-place depthwise), compute the live-bytes lower bound, and measure TF Lite
Micro's arena on the same network (our export, allocated by TFLM itself).
Only planning runs here (no C is generated), so large networks are quick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Published peak SRAM (kB) on STM32H743, int8 (MCUNet / TinyEngine papers).
PUBLISHED = {
    "mbv2-w0.35-r144": {"TinyEngine": 295, "X-CUBE-AI": 296},
}


def plan(name: str, qdq, inplace: bool):
    """The compiler's pipeline with plain kernels (light: no code generated), then the arena."""
    from mcunet_tvm.ir import program_of
    from mcunet_tvm.pipeline import PipelineOptions, optimise
    from mcunet_tvm.planner import plan_memory

    prog = program_of(optimise(qdq, PipelineOptions(inplace=inplace, reorder=False), isa="plain", light=True)[0])
    return prog, plan_memory(prog.memory_graph())


def main() -> int:
    from mcunet_tvm.export.tflite_writer import program_to_tflite
    from mcunet_tvm.frontend import load_model
    from mcunet_tvm.frontend.zoo import CONFIGS, mbv2_config
    from mcunet_tvm.reference.tflm import tflm_arena_bytes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["demo-cnn", "mcunet-vww-like", "mcunet-in-like"])
    parser.add_argument("--widths", nargs="*", type=float, default=[0.35, 0.5, 1.0])
    parser.add_argument("--resolutions", nargs="*", type=int, default=[96, 144, 224])
    args = parser.parse_args()

    for w in args.widths:
        for r in args.resolutions:
            CONFIGS.setdefault(f"mbv2-w{w}-r{r}", mbv2_config(w, r))
    names = [*args.models, *(f"mbv2-w{w}-r{r}" for w in args.widths for r in args.resolutions)]

    print("| model | MACs | arena kB (no in-place) | arena kB | lower bound kB | TFLM arena kB (tensors) | "
          "arena / TFLM | published peak kB |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        qdq = load_model(name).module
        prog0, plan0 = plan(name, qdq, inplace=False)
        prog, p = plan(name, qdq, inplace=True)
        total, tensors = tflm_arena_bytes(program_to_tflite(prog0))
        pub = ", ".join(f"{k} {v}" for k, v in PUBLISHED.get(name, {}).items()) or "-"
        print(f"| {name} | {prog.macs():,} | {plan0.arena_bytes / 1024:.1f} | {p.arena_bytes / 1024:.1f} | "
              f"{p.lower_bound_bytes / 1024:.1f} | {total / 1024:.1f} ({tensors / 1024:.1f}) | "
              f"{p.arena_bytes / total:.2f} | {pub} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
