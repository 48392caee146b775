"""How fast the NAS's light planner scores candidates (the compiler's passes on stub kernels).

    .venv/bin/python scripts/bench_light_planner.py [--count 40] [--seed 0]

Samples ``--count`` seeded architectures from three (width, resolution) spaces of the TinyNAS
search space and times ``nas.light.predict`` on each, in the planner's ``fast`` mode (what the
evolution scores candidates with) and its full mode, on a DSP core. Prints CPU milliseconds per
candidate (``time.process_time``: unaffected by other processes) and candidates per minute.
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
    from mcunet_tvm.nas.light import predict
    from mcunet_tvm.nas.space import Space, to_netconfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    candidates = []
    for i in range(args.count):
        width, res = SPACES[i % len(SPACES)]
        candidates.append((to_netconfig(Space(width, res).sample(rng), classes=10), res))
    predict(*candidates[0], fast=True)  # imports and caches warm
    print(f"light planner ({Path(sys.modules['mcunet_tvm'].__file__).parent.parent}), {args.count} candidates")
    for fast in (True, False):
        t0 = time.process_time()
        for config, res in candidates:
            predict(config, res, dsp=True, fast=fast)
        ms = (time.process_time() - t0) * 1000 / args.count
        print(f"  {'fast' if fast else 'full'} mode: {ms:.1f} ms CPU per candidate ({60_000 / ms:,.0f} per minute)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
