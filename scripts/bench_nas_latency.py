"""TinyNAS's latency model against compiled networks: prediction error and measuring cost.

    .venv/bin/python scripts/bench_nas_latency.py [--seeds 4] [--targets cortex-m4 cortex-m7]

For each seed a random architecture of the NAS space (width 0.3-0.75, resolution 32-64, random
weights) is costed by ``mcunet_tvm.nas.latency`` (fresh cache: every layer measured) and then
compiled through ``api.build`` and run on QEMU with the cycle estimate. Prints per network: MACs,
predicted instructions and cycles, QEMU's instructions, the build's cycle estimate, the relative
errors, layers measured and seconds spent measuring. Then the space optimisation of
``nas --mcu stm32f746 --quick --max-latency-ms 12`` (both quick resolutions, every width, 40
samples each) with an empty cache: how many layers and how long.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from mcunet_tvm.nas.cli import build_seeded
    from mcunet_tvm.nas.latency import LatencyModel
    from mcunet_tvm.nas.light import predict
    from mcunet_tvm.nas.mcu import PRESETS
    from mcunet_tvm.nas.search import LatencyLimit, optimise_space
    from mcunet_tvm.nas.space import Space, to_netconfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--targets", nargs="+", default=["cortex-m4", "cortex-m7"])
    ap.add_argument("--no-space", action="store_true", help="skip the space-optimisation timing")
    args = ap.parse_args()
    print("| core | network | MACs | predicted instr. | QEMU instr. | error | predicted cycles | "
          "estimated cycles | error | layers measured | measuring s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            for seed in range(args.seeds):
                rng = random.Random(seed)
                arch = Space(rng.choice([0.3, 0.5, 0.75]), rng.choice([32, 40, 48, 64])).sample(rng)
                config = to_netconfig(arch, classes=10)
                model = LatencyModel(target, Path(tmp) / f"{target}-{seed}.json")
                t0 = time.monotonic()
                p = predict(config)
                lat = model.latency(p.program)
                seconds = time.monotonic() - t0
                report = build_seeded(config, target, Path(tmp) / f"{target}-{seed}")
                qi, qc = report["qemu"]["instructions"], report["cycles_estimate"]["total"]
                print(f"| {target} | w{arch.width} r{arch.resolution} seed {seed} | {p.macs:,} | "
                      f"{lat.instructions:,} | {qi:,} | {lat.instructions / qi - 1:+.3%} | {lat.cycles:,} | {qc:,} | "
                      f"{lat.cycles / qc - 1:+.3%} | {model.measured} | {seconds:.1f} |", flush=True)
        if not args.no_space:
            model = LatencyModel("cortex-m7", Path(tmp) / "space.json")
            t0 = time.monotonic()
            optimise_space(PRESETS["stm32f746"], [32, 40], 10, 40, "dsp", 0,
                           limit=LatencyLimit(model, int(12 * 216e3)))
            total = time.monotonic() - t0
            t0 = time.monotonic()
            optimise_space(PRESETS["stm32f746"], [32, 40], 10, 40, "dsp", 0)
            plain = time.monotonic() - t0
            print(f"\nspace optimisation (quick settings, stm32f746, 12 ms): {total:.0f} s with the latency limit "
                  f"and an empty cache ({model.measured} layers measured), {plain:.0f} s without")


if __name__ == "__main__":
    main()
