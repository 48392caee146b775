"""``python -m mcunet_tvm.nas``: find the most accurate network that fits a microcontroller.

    python -m mcunet_tvm.nas --mcu stm32f746 --data demo --out DIR [--quick]
    python -m mcunet_tvm.nas --sram 320KB --flash 1MB --data imagefolder:PATH --out DIR
    python -m mcunet_tvm.nas --mcu stm32f746 --max-latency-ms 50 ...   (at the preset's 216 MHz; or --mhz F,
                                                                        or --max-cycles N)
    torchrun --nproc_per_node 2 -m mcunet_tvm.nas ...      (supernet training with DDP)

Phases: search-space optimisation (planner-checked samples per width x
resolution), supernet training, evolutionary search (fitness: validation
accuracy), fine-tuning of the winner; the MobileNetV2 baseline on the same
terms (the same width grid, resolutions and scaled last layer; every fitting
one screened, the best by validation accuracy trained with the baseline
recipe); the equal-compute comparisons (the winner's architecture from scratch
with the baseline's recipe; the baseline with the NAS pipeline's
forward/backward passes and schedule shape); export (net config,
``model.pt2``, calibration samples) and the build of the winner and of the
baseline with ``python -m mcunet_tvm.build`` on QEMU, which measures their
real arena, flash and instructions. Every plan and both builds use patch-based
inference where layer by layer does not fit the SRAM budget (``--patch auto``,
``--max-mac-overhead``; ``--patch off``: layer by layer only), so the compiled arena
is the planned one. With a latency limit every fitting subnet also stays within the
modelled cycles (:mod:`.latency`, per layer, measured once and cached); the winner's
predicted latency is checked against its compiled build (QEMU's instructions, the cycle
estimate of the same ELF) whenever the core has a cycle model. Reported accuracies are on
the test split, which no decision sees. ``DIR/result.json`` records all of it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..api import BuildOptions
from ..errors import BudgetError, McunetError

DEFAULT_RESOLUTIONS = (48, 56, 64, 72, 80, 96)
QUICK_RESOLUTIONS = (32, 40)
#: learning rates: training from scratch (supernet, baseline) and the winner's fine-tune (a warm restart)
BASE_LR = 0.05
FINETUNE_LR = 0.01
#: ``--max-mac-overhead``: MCUNetV2's small cost of the recomputed halos
MAX_MAC_OVERHEAD = 0.05
QUICK_NOTE = ("quick mode: a tiny dataset and one epoch per stage, so these accuracies are a smoke test of the "
              "pipeline, not a comparison of the models")


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
    p.add_argument("--baseline-screen-epochs", type=int,
                   help="epochs each fitting MobileNetV2 trains for its validation score (default 2; quick 1)")
    p.add_argument("--baseline-fixed-last", action="store_true",
                   help="also consider MobileNetV2 with the paper's fixed 1280-channel last layer")
    p.add_argument("--no-equal-compute", action="store_true",
                   help="skip the equal-compute comparisons (winner from scratch, baseline with the NAS's passes)")
    p.add_argument("--max-latency-ms", type=float,
                   help="latency limit per inference, ms (at --mhz or the preset's clock)")
    p.add_argument("--mhz", type=float, help="core clock for --max-latency-ms, MHz")
    p.add_argument("--max-cycles", type=int, help="latency limit per inference in modelled cycles")
    p.add_argument("--latency-cache", type=Path,
                   help="per-layer latency cache (default $XDG_CACHE_HOME/mcunet_tvm/layer_latency_<core>.json)")
    p.add_argument("--seed", type=int, default=0, help="training, sampling and search seed")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated demo dataset")
    p.add_argument("--no-build", action="store_true", help="skip compiling and running the winner on QEMU")
    p.add_argument("--patch", choices=("auto", "off"), default="auto",
                   help="auto (default): plans and builds use patch-based inference (MCUNetV2) where layer by "
                        "layer does not fit the SRAM budget, as build --patch auto --sram-budget does; off: layer "
                        "by layer only")
    p.add_argument("--max-mac-overhead", type=float, default=MAX_MAC_OVERHEAD,
                   help=f"--patch auto: most extra MACs the patches may recompute, as a fraction "
                        f"(default {MAX_MAC_OVERHEAD})")
    args = p.parse_args(argv)
    if not (math.isfinite(args.max_mac_overhead) and args.max_mac_overhead >= 0):
        p.error(f"--max-mac-overhead {args.max_mac_overhead} is not a fraction >= 0 (e.g. 0.05)")
    q = args.quick
    args.resolutions = list(args.resolutions or (QUICK_RESOLUTIONS if q else DEFAULT_RESOLUTIONS))
    defaults = {"space_samples": (40, 200), "supernet_epochs": (1, 15), "finetune_epochs": (1, 10),
                "population": (4, 24), "generations": (1, 10), "baseline_screen_epochs": (1, 2)}
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


def _accuracies(model, data, resolution: int) -> dict[str, float]:
    """Validation and test accuracy of ``model`` (the only place a test split is evaluated)."""
    from .train import accuracy

    return {split: round(accuracy(model, data.tensors(split, resolution)), 4) for split in ("val", "test")}


def _fresh(config: dict, seed: int):
    """A newly initialised network of ``config`` (seeded, so every recipe starts from the same weights)."""
    import torch

    from ..frontend.netconfig import ProxylessNet

    torch.manual_seed(seed)
    return ProxylessNet(config)


def _export(model, resolution: int, calib, folder: Path) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, resolution, resolution)
    with torch.no_grad():
        torch.export.save(torch.export.export(model.eval(), (example,)), str(folder / "model.pt2"))
    np.save(folder / "calibration.npy", calib.numpy().astype(np.float32))


def build_seeded(config: dict, target: str, out: Path, seed: int = 0, **options) -> dict:
    """A seeded, untrained network of ``config`` exported to ``out`` (8 uniform calibration samples), compiled
    with the build ``options`` and run on QEMU with the cycle estimate: its ``report.json`` (what the latency
    model's checks compare against)."""
    import torch

    from ..api import build

    res = config["resolution"]
    calib = np.random.default_rng(seed).uniform(-1, 1, (8, 3, res, res)).astype(np.float32)
    _export(_fresh(config, seed), res, torch.from_numpy(calib), out)
    return build(BuildOptions(model=str(out / "model.pt2"), out=out / "build", target=target, run=True, cycles=True,
                              calibration=out / "calibration.npy", **options)).report


def _measure(options: BuildOptions, mcu) -> dict:
    """Compile ``options.model`` and run it on QEMU: measured arena, flash, memory form, instructions (and
    the cycle estimate with ``options.cycles``), bit-exactness."""
    from ..api import build

    shutil.rmtree(options.out, ignore_errors=True)
    report = build(options).report
    run_info = report["qemu"] or {}
    estimate = report.get("cycles_estimate") or {}
    patch = report["patch"]
    return {"arena_bytes": report["arena_bytes"], "flash_bytes": report["flash_bytes"],
            "patch": patch and {k: patch[k] for k in ("split_step", "grid", "mac_overhead")},
            "instructions": run_info.get("instructions"), "cycles_estimate": estimate.get("total"),
            "bit_exact": run_info.get("bit_exact"),
            "fits": report["arena_bytes"] <= mcu.budget_sram and report["flash_bytes"] <= mcu.budget_flash}


def _latency_report(predicted, limit, mhz: float | None) -> dict:
    """``result.json``'s ``latency`` of one network: the prediction, the limit, and (after the build) the check."""
    from .latency import TOLERANCE

    out = {**predicted.to_json(), "max_cycles": limit.max_cycles if limit else None, "mhz": mhz,
           "tolerance": TOLERANCE}
    if mhz:
        out["milliseconds"] = round(predicted.milliseconds(mhz), 3)
    return out


def _check_latency(latency: dict, measured: dict) -> None:
    """The prediction against the compiled build: relative errors and whether both are within tolerance."""
    errors = {}
    for key, got in (("instructions", measured.get("instructions")), ("cycles", measured.get("cycles_estimate"))):
        if got:
            errors[key] = round(latency[key] / got - 1, 4)
    latency["measured"] = {"instructions": measured.get("instructions"), "cycles": measured.get("cycles_estimate")}
    latency["error"] = errors
    latency["within_tolerance"] = bool(errors) and all(abs(e) <= latency["tolerance"] for e in errors.values())
    if latency["max_cycles"] and measured.get("cycles_estimate"):
        latency["measured"]["meets_limit"] = measured["cycles_estimate"] <= latency["max_cycles"]


def run(args: argparse.Namespace) -> dict:
    import torch

    from ..cycles import supports
    from ..pipeline import kernel_isa
    from ..targets import get_target
    from . import plots
    from .data import load_dataset
    from .latency import LatencyModel
    from .light import PatchPolicy, predict
    from .mcu import latency_cycles, resolve_mcu
    from .search import LatencyLimit, evolve, mobilenetv2_grid, optimise_space
    from .space import WIDTHS, to_netconfig
    from .supernet import Supernet, extract_subnet
    from .train import (
        SANDWICH,
        Compute,
        accuracy,
        distributed,
        exit_worker,
        finish_distributed,
        train_network,
        train_supernet,
    )

    t0 = time.monotonic()
    rank, world = distributed()
    main_rank = rank == 0
    mcu = resolve_mcu(args.mcu, args.sram, args.flash, args.sram_reserve, args.flash_reserve, args.target)
    target = get_target(mcu.target)
    isa = kernel_isa(target.mcpu)
    max_cycles = latency_cycles(mcu, args.max_latency_ms, args.mhz, args.max_cycles)
    mhz = args.mhz or mcu.mhz
    timed = max_cycles is not None or (not args.no_build and supports(target.mcpu))  # predict latency at all
    costs = LatencyModel(target.name, args.latency_cache) if timed else None
    limit = LatencyLimit(costs, max_cycles) if max_cycles is not None else None
    # the memory forms of every plan and of both builds: the planned arena is the compiled one
    patch = PatchPolicy(mcu.budget_sram, args.max_mac_overhead, mcu.budget_flash) if args.patch == "auto" else None
    budget = {"sram_budget": mcu.budget_sram, **(patch.build_options() if patch else {})}
    out: Path = args.out
    if main_rank:
        (out / "result.json").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.data, args.quick, args.data_seed)
    classes = len(data.classes)
    seed = args.seed
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    se, fe = args.supernet_epochs, args.finetune_epochs

    # 1. search-space optimisation, on the compiler's memory model
    space, stats = optimise_space(mcu, args.resolutions, classes, args.space_samples, isa, seed, widths=WIDTHS,
                                  progress=_bar("search spaces", main_rank), limit=limit, patch=patch)
    # 2. the supernet of the chosen space (training split only)
    train = data.tensors("train", space.resolution)
    val = data.tensors("val", space.resolution)
    nas_supernet, nas_finetune = Compute(), Compute()
    net = train_supernet(Supernet(space, classes), train, se, seed=seed, progress=_bar("supernet", main_rank),
                         compute=nas_supernet)
    # 3. evolutionary search: fitness on the validation split (BatchNorm re-calibrated on training images)
    calib_x = train[0][: 512]
    winner, log = evolve(space, mcu, classes, isa, _fitness(net, calib_x, val, world), args.population,
                         args.generations, seed, progress=_bar("evolution", main_rank), limit=limit, patch=patch)
    finish_distributed()  # the rest (fine-tune, baseline, export, build) runs on the main rank only
    if not main_rank:
        exit_worker()
    # 4. fine-tune the winner (warm restart at a lower learning rate)
    netconfig = to_netconfig(winner.arch, classes)
    model = train_network(extract_subnet(net, winner.arch).train(), train, fe, lr=FINETUNE_LR, seed=seed,
                          progress=_bar("fine-tune", True), compute=nas_finetune)
    winner_acc = _accuracies(model, data, space.resolution)
    exact = predict(netconfig, dsp=isa != "plain", mve=isa == "mve", patch=patch)
    latency = _latency_report(costs.latency(exact.program), limit, mhz) if costs else None

    # 5. the MobileNetV2 baseline: same widths, resolutions and last-layer scaling, exact planner;
    #    every fitting candidate screened, the best by validation accuracy trained with the recipe
    recipe_epochs = se + fe
    grid = mobilenetv2_grid(mcu, WIDTHS, args.resolutions, classes, isa, scale_last=True, patch=patch, limit=limit)
    if args.baseline_fixed_last:
        grid += mobilenetv2_grid(mcu, WIDTHS, args.resolutions, classes, isa, scale_last=False, patch=patch,
                                 limit=limit)
    screen_epochs = args.baseline_screen_epochs
    screen_compute = Compute()
    screened = []
    for i, cand in enumerate(grid):
        ctrain = data.tensors("train", cand.resolution)
        used = Compute()
        cnet = train_network(_fresh(cand.config, seed), ctrain, screen_epochs, lr=BASE_LR, seed=seed, compute=used,
                             progress=_bar(f"MobileNetV2 screen {i + 1}/{len(grid)} {cand.label}", True))
        screen_compute = screen_compute.add(used)
        screened.append((cand, accuracy(cnet, data.tensors("val", cand.resolution)), cnet, used))
    baseline_info = equal = None
    base_model = base = None
    base_compute, scratch_compute, long_compute = Compute(), Compute(), Compute()
    if screened:
        base, _, screened_net, used = pick_baseline(screened)
        btrain = data.tensors("train", base.resolution)
        if screen_epochs == recipe_epochs:  # the screen was the recipe
            base_model, base_compute = screened_net, used
        else:
            base_model = train_network(_fresh(base.config, seed), btrain, recipe_epochs, lr=BASE_LR, seed=seed,
                                       compute=base_compute, progress=_bar("MobileNetV2 baseline", True))
        baseline_info = {**base.to_json(), "label": base.label, **_prefix(_accuracies(base_model, data,
                                                                                     base.resolution))}
        if costs:
            baseline_info["latency"] = _latency_report(costs.latency(base.prediction.program), limit, mhz)
        if not args.no_equal_compute:
            # (a) the winner's architecture from scratch with exactly the baseline's recipe
            scratch = train_network(_fresh(netconfig, seed), train, recipe_epochs, lr=BASE_LR, seed=seed,
                                    compute=scratch_compute, progress=_bar("winner from scratch", True))
            # (b) the baseline with the NAS pipeline's forward/backward passes and schedule shape:
            #     SANDWICH x the supernet's epochs (one cosine), then the fine-tune's restart
            long = train_network(_fresh(base.config, seed), btrain, SANDWICH * se, lr=BASE_LR, seed=seed,
                                 compute=long_compute,
                                 progress=_bar("MobileNetV2, NAS compute 1/2", True))
            long = train_network(long.train(), btrain, fe, lr=FINETUNE_LR, seed=seed, compute=long_compute,
                                 progress=_bar("MobileNetV2, NAS compute 2/2", True))
            scratch_acc = _accuracies(scratch, data, space.resolution)
            long_acc = _accuracies(long, data, base.resolution)
            nas_total = nas_supernet.add(nas_finetune)
            equal = {
                "same_recipe": {
                    "recipe": f"{recipe_epochs} epochs from scratch, SGD lr {BASE_LR} cosine",
                    "winner_from_scratch": _prefix(scratch_acc), "baseline": _prefix(baseline_info),
                    "test_gap": round(scratch_acc["test"] - baseline_info["test_accuracy"], 4),
                    "compute": {"winner_from_scratch": scratch_compute.to_json(),
                                "baseline": base_compute.to_json()},
                },
                "same_passes": {
                    "recipe": f"{SANDWICH * se} epochs lr {BASE_LR} cosine, then {fe} epochs lr {FINETUNE_LR} "
                              "cosine (the supernet's passes, then the fine-tune's restart)",
                    "nas_pipeline": _prefix(winner_acc), "baseline": _prefix(long_acc),
                    "test_gap": round(winner_acc["test"] - long_acc["test"], 4),
                    "compute": {"nas_pipeline": nas_total.to_json(), "baseline": long_compute.to_json()},
                },
            }

    # 6. export the winner (and the baseline next to it)
    (out / "arch.json").write_text(json.dumps(netconfig, indent=2) + "\n")
    _export(model, space.resolution, train[0][:64], out)
    plots.flops_cdf(stats, space, out / "flops_cdf.png")
    plots.accuracy_vs_sram(log.evaluated, winner, (base.prediction.arena_bytes, baseline_info["val_accuracy"])
                           if base else None, mcu.budget_sram, out / "accuracy_vs_sram.png")
    files = ["arch.json", "model.pt2", "calibration.npy", "flops_cdf.png", "accuracy_vs_sram.png"]
    if limit is not None:
        plots.accuracy_vs_latency(log.evaluated, winner, limit.max_cycles, mhz, out / "accuracy_vs_latency.png")
        files.append("accuracy_vs_latency.png")
    cycles = costs is not None  # the builds estimate cycles too (the latency check)
    build_options = BuildOptions(model=str(out / "model.pt2"), out=out / "build", target=target.name, run=True,
                                 calibration=out / "calibration.npy", flash_budget=mcu.budget_flash, cycles=cycles,
                                 **budget)
    base_options = None
    if base is not None:
        bdir = out / "baseline"
        bdir.mkdir(exist_ok=True)
        (bdir / "arch.json").write_text(json.dumps(base.config, indent=2) + "\n")
        _export(base_model, base.resolution, data.tensors("train", base.resolution)[0][:64], bdir)
        base_options = BuildOptions(model=str(bdir / "model.pt2"), out=bdir / "build", target=target.name,
                                    run=True, calibration=bdir / "calibration.npy", cycles=cycles, **budget)
        files += ["baseline/arch.json", "baseline/model.pt2", "baseline/calibration.npy"]
    result = {
        "mcu": {"name": mcu.name, "sram_bytes": mcu.sram_bytes, "flash_bytes": mcu.flash_bytes,
                "sram_reserve": mcu.sram_reserve, "flash_reserve": mcu.flash_reserve, "target": target.name},
        "dataset": {"name": data.name, "classes": list(data.classes), "train": len(data.train_y),
                    "val": len(data.val_y), "test": len(data.test_y), "seed": args.data_seed,
                    "splits": "train: weights; val: every search decision (evolution fitness, baseline choice); "
                              "test: reported accuracies only",
                    "input_normalization": "x / 127.5 - 1 (RGB, NCHW float)"},
        "search_space": {"width": space.width, "resolution": space.resolution,
                         "candidates": [{"width": s.space.width, "resolution": s.space.resolution,
                                         "fit_ratio": round(s.fit_ratio, 4), "mean_fitting_macs": round(s.score),
                                         "smallest_arena_bytes": s.smallest_arena} for s in stats]},
        "architecture": winner.arch.to_json(),
        "accuracy": winner_acc["test"],
        "val_accuracy": winner_acc["val"],
        "supernet_val_accuracy": round(winner.accuracy, 4),
        "baseline_accuracy": baseline_info["test_accuracy"] if baseline_info else None,
        "baseline_val_accuracy": baseline_info["val_accuracy"] if baseline_info else None,
        "baseline": baseline_info,
        "baseline_candidates": [{**c.to_json(), "label": c.label, "screen_val_accuracy": round(a, 4)}
                                for c, a, _, _ in screened],
        "equal_compute": equal,
        "compute": {"supernet": nas_supernet.to_json(), "finetune": nas_finetune.to_json(),
                    "baseline_screen": screen_compute.to_json(), "baseline": base_compute.to_json(),
                    "winner_from_scratch": scratch_compute.to_json(),
                    "baseline_same_passes": long_compute.to_json()},
        "macs": exact.macs,
        "params": exact.params,
        "arena_bytes": exact.arena_bytes,
        "flash_bytes": exact.flash_bytes,
        "patch": exact.patch_json(),
        "latency": latency,
        "evaluated_subnets": len(log.evaluated),
        "settings": {k: getattr(args, k) for k in ("quick", "resolutions", "space_samples", "supernet_epochs",
                                                   "finetune_epochs", "population", "generations",
                                                   "baseline_screen_epochs", "baseline_fixed_last", "seed",
                                                   "data_seed", "patch", "max_mac_overhead", "max_latency_ms",
                                                   "mhz", "max_cycles")},
        "world_size": world,
        "build_command": build_options.command_line(),
        "files": files,
    }
    if args.quick:
        result["note"] = QUICK_NOTE
    # 7. compile and run the winner (its measured arena and flash must fit) and the baseline alike
    if not args.no_build:
        result["measured"] = _measure(build_options, mcu)
        if not result["measured"]["fits"]:
            raise BudgetError("the compiled winner does not fit the budget", where=str(out / "build"))
        if latency:
            _check_latency(latency, result["measured"])
        if base_options is not None:
            result["baseline"]["measured"] = _measure(base_options, mcu)
            if costs:
                _check_latency(result["baseline"]["latency"], result["baseline"]["measured"])
    result["seconds"] = round(time.monotonic() - t0, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _prefix(acc: dict) -> dict:
    """``{"val": a, "test": b}`` as ``{"val_accuracy": a, "test_accuracy": b}`` (other keys dropped)."""
    if "val_accuracy" in acc:
        return {k: acc[k] for k in ("val_accuracy", "test_accuracy")}
    return {"val_accuracy": acc["val"], "test_accuracy": acc["test"]}


def format_summary(result: dict, out: Path) -> str:
    """The lines ``main`` prints for a finished run."""
    lines = []
    if result["settings"]["quick"]:
        lines.append(f"NOTE          {result['note']}")
    lines.append(f"search space  width {result['search_space']['width']}, resolution "
                 f"{result['search_space']['resolution']}")
    lines.append(f"found model   test accuracy {result['accuracy']:.3f} (val {result['val_accuracy']:.3f}), "
                 f"{result['macs']:,} MACs, arena {result['arena_bytes']:,} B, flash {result['flash_bytes']:,} B "
                 f"(planned), {_form(result['patch'])}")
    b = result["baseline"]
    if b is None:
        lines.append("MobileNetV2   none of the grid fits the budget")
    else:
        lines.append(f"MobileNetV2   test accuracy {b['test_accuracy']:.3f} (val {b['val_accuracy']:.3f}), "
                     f"w{b['width']} r{b['resolution']} last {b['last_channels']}, {b['macs']:,} MACs, "
                     f"{_form(b['patch'])} (best validation accuracy of {len(result['baseline_candidates'])} "
                     "fitting)")
    eq = result["equal_compute"]
    if eq:
        rec, pas = eq["same_recipe"], eq["same_passes"]
        lines.append(f"same recipe   winner from scratch test {rec['winner_from_scratch']['test_accuracy']:.3f} vs "
                     f"MobileNetV2 {rec['baseline']['test_accuracy']:.3f}")
        lines.append(f"same passes   NAS pipeline test {pas['nas_pipeline']['test_accuracy']:.3f} vs MobileNetV2 "
                     f"{pas['baseline']['test_accuracy']:.3f} ({pas['compute']['baseline']['forward_backward']:,} "
                     "forward/backward passes each)")
    for name, m in (("compiled", result.get("measured")), ("baseline", b and b.get("measured"))):
        if m:
            lines.append(f"{name:<14}arena {m['arena_bytes']:,} B, flash {m['flash_bytes']:,} B, "
                         f"{m['instructions'] or 0:,} instructions, bit-exact {'yes' if m['bit_exact'] else 'NO'}")
    lat = result.get("latency")
    if lat:
        limit = f" (limit {lat['max_cycles']:,})" if lat["max_cycles"] else ""
        ms = f", {lat['milliseconds']} ms at {lat['mhz']:g} MHz" if lat.get("milliseconds") is not None else ""
        line = f"latency       {lat['cycles']:,} cycles predicted{limit}{ms}"
        if lat.get("error"):
            errs = ", ".join(f"{k} {v:+.1%}" for k, v in lat["error"].items())
            line += f"; vs the compiled build {errs} ({'within' if lat['within_tolerance'] else 'OUTSIDE'} " \
                    f"{lat['tolerance']:.0%})"
        lines.append(line)
    lines.append(f"build         {result['build_command']}")
    lines.append(f"written       {out / 'result.json'}")
    return "\n".join(lines)


def _form(patch: dict | None) -> str:
    """A planned memory form (``Prediction.patch_json``) in words."""
    if patch is None:
        return "layer by layer"
    rows, cols = patch["grid"]
    return f"{rows}x{cols} patches up to step {patch['split_step']} (+{patch['mac_overhead']:.1%} MACs)"


def pick_baseline(screened: list[tuple]) -> tuple:
    """The screened MobileNetV2 ``(candidate, validation accuracy, ...)`` with the best validation accuracy
    (ties: more MACs). Only the validation split decides; the test split is never looked at here."""
    return max(screened, key=lambda t: (t[1], t[0].prediction.macs))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except McunetError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_code
    if result:
        print(format_summary(result, args.out))
    return 0
