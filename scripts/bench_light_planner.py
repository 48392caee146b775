"""How fast the NAS's light planner scores candidates (the compiler's passes on stub kernels).

    .venv/bin/python scripts/bench_light_planner.py [--count 40] [--seed 0]
    .venv/bin/python scripts/bench_light_planner.py --sram-budget 150000 [--max-mac-overhead 0.05]

Samples ``--count`` seeded architectures from three (width, resolution) spaces of the TinyNAS
search space and times ``nas.light.predict`` on each, in the planner's ``fast`` mode (what the
evolution scores candidates with) and its full mode, on a DSP core. Prints CPU milliseconds per
candidate (``time.process_time``: unaffected by other processes) and candidates per minute.
With ``--sram-budget`` the predictions plan as ``nas --patch auto`` does (``light.PatchPolicy``:
the compiler's patch search for a candidate whose layer-based plan does not fit), and the
candidates that needed the search are timed apart and counted with how many patches made fit.
Run it with ``PYTHONPATH`` set to another checkout to time that tree the same way.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from pathlib import Path

SPACES = ((0.3, 96), (0.5, 128), (0.75, 160))


def main() -> int:
    warnings.filterwarnings("ignore")
    from mcunet_tvm.nas.light import PatchPolicy, predict
    from mcunet_tvm.nas.space import Space, to_netconfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sram-budget", type=int, help="plan with patches where layer by layer exceeds this (bytes)")
    p.add_argument("--max-mac-overhead", type=float, default=0.05)
    args = p.parse_args()
    policy = PatchPolicy(args.sram_budget, args.max_mac_overhead) if args.sram_budget else None
    rng = random.Random(args.seed)
    candidates = []
    for i in range(args.count):
        width, res = SPACES[i % len(SPACES)]
        candidates.append((to_netconfig(Space(width, res).sample(rng), classes=10), res))
    predict(*candidates[0], fast=True)  # imports and caches warm
    print(f"light planner ({Path(sys.modules['mcunet_tvm'].__file__).parent.parent}), {args.count} candidates")
    for fast in (True, False):
        times: dict[str, list[float]] = {"layer by layer": [], "patch search": []}
        fitted = 0
        for config, res in candidates:  # (whether the search runs: the layer-based plan of the same mode)
            searched = policy is not None and predict(config, res, dsp=True, fast=fast).arena_bytes > args.sram_budget
            t0 = time.process_time()
            pred = predict(config, res, dsp=True, fast=fast, patch=policy)
            times["patch search" if searched else "layer by layer"].append(time.process_time() - t0)
            fitted += searched and pred.patch is not None and pred.arena_bytes <= args.sram_budget
        total = sum(map(sum, times.values())) * 1000 / args.count
        mode = "fast" if fast else "full"
        line = f"  {mode} mode: {total:.1f} ms CPU per candidate ({60_000 / total:,.0f} per minute)"
        if policy is not None:
            parts = [f"{kind} {len(t)}: {sum(t) * 1000 / len(t):.0f} ms each" for kind, t in times.items() if t]
            line += f"; {'; '.join(parts)}; patches made {fitted} fit"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
