"""``python -m mcunet_tvm.nas``: find the most accurate network that fits a microcontroller.

    python -m mcunet_tvm.nas --mcu stm32f746 --data demo --out DIR [--quick]
    python -m mcunet_tvm.nas --sram 320KB --flash 1MB --data imagefolder:PATH --out DIR
    torchrun --nproc_per_node 2 -m mcunet_tvm.nas ...      (supernet training with DDP)

Phases: search-space optimisation (planner-checked samples per width x
resolution), supernet training, evolutionary search, fine-tuning of the
winner, the best scaled MobileNetV2 that fits trained with the same epochs,
export (net config, ``model.pt2``, calibration samples), and the build of the
winner with ``python -m mcunet_tvm.build`` on QEMU, which measures its real
arena and flash. ``DIR/result.json`` records all of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..api import BuildOptions
from ..errors import BudgetError, McunetError

DEFAULT_RESOLUTIONS = (48, 56, 64, 72, 80, 96)
QUICK_RESOLUTIONS = (32, 40)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from .mcu import PRESETS

    p = argparse.ArgumentParser(prog="python -m mcunet_tvm.nas", description=__doc__.splitlines()[0])
    p.add_argument("--mcu", choices=sorted(PRESETS), help="a microcontroller preset (SRAM, flash, core)")
    p.add_argument("--sram", help="SRAM instead of (or overriding) a preset, e.g. 320KB")
    p.add_argument("--flash", help="flash instead of (or overriding) a preset, e.g. 1MB")
    p.add_argument("--sram-reserve", help="SRAM kept for the application (default 32KB)")
    p.add_argument("--flash-reserve", help="flash kept for the application (default 128KB)")
    p.add_argument("--target", default="cortex-m7", help="core for --sram/--flash without a preset")
    p.add_argument("--data", default="demo", help="demo (generated, offline) or imagefolder:PATH")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quick", action="store_true", help="a small, complete run (tests, demos)")
    p.add_argument("--resolutions", type=int, nargs="+", help="input resolutions the spaces may use")
    p.add_argument("--space-samples", type=int, help="subnets sampled per space (default 200; quick 40)")
    p.add_argument("--supernet-epochs", type=int, help="default 15; quick 1")
    p.add_argument("--finetune-epochs", type=int, help="default 10; quick 1")
    p.add_argument("--population", type=int, help="evolution population (default 24; quick 4)")
    p.add_argument("--generations", type=int, help="evolution generations (default 10; quick 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-build", action="store_true", help="skip compiling and running the winner on QEMU")
    args = p.parse_args(argv)
    q = args.quick
    args.resolutions = list(args.resolutions or (QUICK_RESOLUTIONS if q else DEFAULT_RESOLUTIONS))
    defaults = {"space_samples": (40, 200), "supernet_epochs": (1, 15), "finetune_epochs": (1, 10),
                "population": (4, 24), "generations": (1, 10)}
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    return args


def _bar(desc: str, enabled: bool):
    """A progress callback ``(done, total, message)`` drawing a tqdm bar on stderr."""
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int, message: str = "") -> None:
        if not enabled:
            return
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, leave=True, dynamic_ncols=True)
        bar = state["bar"]
        bar.n = done
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _fitness(net, calib_x, val, world: int):
    """Accuracy of a batch of subnets; under torchrun every rank scores its share."""
    from .train import evaluate_subnet

    def score(archs):
        if world == 1:
            return [evaluate_subnet(net, a, calib_x, val) for a in archs]
        import torch.distributed as dist

        rank = dist.get_rank()
        mine = {i: evaluate_subnet(net, a, calib_x, val) for i, a in enumerate(archs) if i % world == rank}
        gathered: list = [None] * world
        dist.all_gather_object(gathered, mine)
        merged = {k: v for part in gathered for k, v in part.items()}
        return [merged[i] for i in range(len(archs))]

    return score


def run(args: argparse.Namespace) -> dict:
    import torch

    from ..frontend.netconfig import ProxylessNet
    from ..pipeline import kernel_isa
    from ..targets import get_target
    from . import plots
    from .data import load_dataset
    from .light import predict
    from .mcu import resolve_mcu
    from .search import best_mobilenetv2, evolve, optimise_space
    from .space import to_netconfig
    from .supernet import Supernet, extract_subnet
    from .train import accuracy, distributed, exit_worker, finish_distributed, train_network, train_supernet

    t0 = time.monotonic()
    rank, world = distributed()
    main_rank = rank == 0
    mcu = resolve_mcu(args.mcu, args.sram, args.flash, args.sram_reserve, args.flash_reserve, args.target)
    target = get_target(mcu.target)
    isa = kernel_isa(target.mcpu)
    out: Path = args.out
    if main_rank:
        (out / "result.json").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.data, args.quick, args.seed)
    classes = len(data.classes)
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads() // world))

    # 1. search-space optimisation, on the compiler's memory model
    space, stats = optimise_space(mcu, args.resolutions, classes, args.space_samples, isa, args.seed,
                                  progress=_bar("search spaces", main_rank))
    # 2. the supernet of the chosen space
    train = data.tensors("train", space.resolution)
    val = data.tensors("val", space.resolution)
    net = train_supernet(Supernet(space, classes), train, args.supernet_epochs, seed=args.seed,
                         progress=_bar("supernet", main_rank))
    # 3. evolutionary search (BatchNorm re-calibrated on training images)
    calib_x = train[0][: 512]
    winner, log = evolve(space, mcu, classes, isa, _fitness(net, calib_x, val, world), args.population,
                         args.generations, args.seed, progress=_bar("evolution", main_rank))
    finish_distributed()  # the rest (fine-tune, baseline, export, build) runs on the main rank only
    if not main_rank:
        exit_worker()
    # 4. fine-tune the winner; train the MobileNetV2 baseline with the same number of epochs
    model = train_network(extract_subnet(net, winner.arch).train(), train, args.finetune_epochs, lr=0.01,
                          seed=args.seed, progress=_bar("fine-tune", True))
    acc = accuracy(model, val)
    baseline = best_mobilenetv2(mcu, args.resolutions, classes, isa)
    base_info = None
    if baseline is not None:
        config, pred = baseline
        btrain = data.tensors("train", config["resolution"])
        bval = data.tensors("val", config["resolution"])
        bnet = train_network(ProxylessNet(config), btrain, args.supernet_epochs + args.finetune_epochs,
                             seed=args.seed, progress=_bar("MobileNetV2 baseline", True))
        base_info = {"config": config, "width": _mbv2_width(config), "resolution": config["resolution"],
                     "accuracy": accuracy(bnet, bval), "macs": pred.macs, "params": pred.params,
                     "arena_bytes": pred.arena_bytes, "flash_bytes": pred.flash_bytes}
    # 5. export
    netconfig = to_netconfig(winner.arch, classes)
    (out / "arch.json").write_text(json.dumps(netconfig, indent=2) + "\n")
    example = torch.zeros(1, 3, space.resolution, space.resolution)
    with torch.no_grad():
        torch.export.save(torch.export.export(model.eval(), (example,)), str(out / "model.pt2"))
    np.save(out / "calibration.npy", train[0][:64].numpy().astype(np.float32))
    exact = predict(netconfig, dsp=isa != "plain", mve=isa == "mve")
    plots.flops_cdf(stats, space, out / "flops_cdf.png")
    plots.accuracy_vs_sram(log.evaluated, winner, (base_info["arena_bytes"], base_info["accuracy"])
                           if base_info else None, mcu.budget_sram, out / "accuracy_vs_sram.png")
    build_options = BuildOptions(model=str(out / "model.pt2"), out=out / "build", target=target.name, run=True,
                                 calibration=out / "calibration.npy", sram_budget=mcu.budget_sram,
                                 flash_budget=mcu.budget_flash)
    result = {
        "mcu": {"name": mcu.name, "sram_bytes": mcu.sram_bytes, "flash_bytes": mcu.flash_bytes,
                "sram_reserve": mcu.sram_reserve, "flash_reserve": mcu.flash_reserve, "target": target.name},
        "dataset": {"name": data.name, "classes": list(data.classes), "train": len(data.train_y),
                    "val": len(data.val_y), "input_normalization": "x / 127.5 - 1 (RGB, NCHW float)"},
        "search_space": {"width": space.width, "resolution": space.resolution,
                         "candidates": [{"width": s.space.width, "resolution": s.space.resolution,
                                         "fit_ratio": round(s.fit_ratio, 4), "mean_fitting_macs": round(s.score),
                                         "smallest_arena_bytes": s.smallest_arena} for s in stats]},
        "architecture": winner.arch.to_json(),
        "accuracy": round(acc, 4),
        "supernet_accuracy": round(winner.accuracy, 4),
        "baseline_accuracy": round(base_info["accuracy"], 4) if base_info else None,
        "baseline": base_info and {k: v for k, v in base_info.items() if k != "config"},
        "macs": exact.macs,
        "params": exact.params,
        "arena_bytes": exact.arena_bytes,
        "flash_bytes": exact.flash_bytes,
        "evaluated_subnets": len(log.evaluated),
        "settings": {k: getattr(args, k) for k in ("quick", "resolutions", "space_samples", "supernet_epochs",
                                                   "finetune_epochs", "population", "generations", "seed")},
        "world_size": world,
        "build_command": build_options.command_line(),
        "files": ["arch.json", "model.pt2", "calibration.npy", "flops_cdf.png", "accuracy_vs_sram.png"],
    }
    # 6. compile and run the winner: its measured arena and flash must fit
    if not args.no_build:
        from ..api import build

        shutil.rmtree(out / "build", ignore_errors=True)
        report = build(build_options).report
        run_info = report["qemu"] or {}
        result["measured"] = {"arena_bytes": report["arena_bytes"], "flash_bytes": report["flash_bytes"],
                              "instructions": run_info.get("instructions"), "bit_exact": run_info.get("bit_exact"),
                              "fits": report["arena_bytes"] <= mcu.budget_sram
                              and report["flash_bytes"] <= mcu.budget_flash}
        if not result["measured"]["fits"]:
            raise BudgetError("the compiled winner does not fit the budget", where=str(out / "build"))
    result["seconds"] = round(time.monotonic() - t0, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _mbv2_width(config: dict) -> float | None:
    from ..frontend.zoo import make_divisible
    from .search import MBV2_WIDTHS

    first = config["first_conv"]["out_channels"]
    return next((w for w in MBV2_WIDTHS if make_divisible(32 * w) == first), None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except McunetError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_code
    if result:
        base = result["baseline_accuracy"]
        print(f"search space  width {result['search_space']['width']}, resolution "
              f"{result['search_space']['resolution']}")
        print(f"found model   accuracy {result['accuracy']:.3f}, {result['macs']:,} MACs, arena "
              f"{result['arena_bytes']:,} B, flash {result['flash_bytes']:,} B (planned)")
        if base is not None:
            print(f"MobileNetV2   accuracy {base:.3f} (w{result['baseline']['width']}, "
                  f"r{result['baseline']['resolution']}, {result['baseline']['macs']:,} MACs)")
        if "measured" in result:
            m = result["measured"]
            print(f"compiled      arena {m['arena_bytes']:,} B, flash {m['flash_bytes']:,} B, "
                  f"bit-exact {'yes' if m['bit_exact'] else 'NO'}")
        print(f"build         {result['build_command']}")
        print(f"written       {args.out / 'result.json'}")
    return 0
