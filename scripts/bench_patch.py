"""Patch-based inference (MCUNetV2): peak SRAM and MAC overhead vs layer-based execution.

    .venv/bin/python scripts/bench_patch.py [--models NAME ...] [--caps 0.15 0.3] [--stream-input]

For every network: plan the layer-based arena, then let ``--patch auto`` pick
the split and grid under each MAC-overhead cap and plan the arena of the
patched program exactly as the compiler does for a Cortex-M7 (PatchInference,
InplaceDepthwise, the SIMD kernels' overlap rules, the planner). Only planning
runs here (no C is compiled). ``--stream-input`` adds rows where the input is
fetched band by band instead of held whole (``build --stream-input``).
Published layer-based peaks (TinyEngine, STM32H743, int8) are shown where
they exist for the same network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Published layer-based peak SRAM (kB) of TinyEngine on the same architecture (MCUNet paper).
TINYENGINE_KB = {"mbv2-w0.35-r144": 295}


def main() -> int:
    from mcunet_tvm.frontend import load_model
    from mcunet_tvm.ir import lighten, program_of
    from mcunet_tvm.patching.search import choose_patch
    from mcunet_tvm.pipeline import PipelineOptions, lower_to_integer, optimise
    from mcunet_tvm.planner import plan_memory

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[
        "demo-cnn", "mcunet-vww-like", "mcunet-in-like", "mbv2-w0.35-r144", "mbv2-w0.5-r128", "mbv2-w1.0-r224"])
    parser.add_argument("--caps", nargs="*", type=float, default=[0.15, 0.3])
    parser.add_argument("--stream-input", action="store_true", help="also plan with a streamed input")
    args = parser.parse_args()
    modes = [False, True] if args.stream_input else [False]


    print("| model | cap | input | split step | grid | MAC overhead | layer-based arena kB | patched arena kB "
          "(patch stage / rest) | reduction | vs TinyEngine layer-based | search s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        integer = lighten(lower_to_integer(load_model(name).module))
        # the compiler's pipeline, on stub kernels
        layer = program_of(optimise(integer, PipelineOptions(reorder=False), isa="dsp")[0])
        base = plan_memory(layer.memory_graph()).arena_bytes
        for cap, stream in [(c, m) for c in args.caps for m in modes]:
            mode = "streamed" if stream else "in arena"
            t0 = time.monotonic()
            choice = choose_patch(integer, max_mac_overhead=cap, stream_input=stream)
            search_s = time.monotonic() - t0
            if choice is None:
                print(f"| {name} | {cap:.0%} | {mode} | - | - | - | {base / 1024:.1f} | (layer-based is best) | "
                      f"1.0x | | {search_s:.1f} |")
                continue
            patched, _ = optimise(integer, PipelineOptions(patch=(choice.split_step, choice.grid), stream_input=stream),
                                  isa="dsp")
            prog = program_of(patched)
            info = prog.patch
            plan = plan_memory(prog.memory_graph())
            stage = max(plan.live_bytes[: info.patch_stage_steps]) / 1024
            rest = max(plan.live_bytes[info.patch_stage_steps :]) / 1024
            te = TINYENGINE_KB.get(name)
            vs_te = f"{te / (plan.arena_bytes / 1024):.2f}x below {te} kB" if te else ""
            print(f"| {name} | {cap:.0%} | {mode} | {choice.split_step} | {choice.grid[0]}x{choice.grid[1]} | "
                  f"{info.mac_overhead:.1%} | {base / 1024:.1f} | {plan.arena_bytes / 1024:.1f} "
                  f"({stage:.1f} / {rest:.1f}) | {base / plan.arena_bytes:.2f}x | {vs_te} | {search_s:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
