"""TinyNAS: one memory model with the compiler, weight sharing, constraints, the whole --quick run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from mcunet_tvm.errors import McunetError
from mcunet_tvm.frontend.netconfig import build_from_config
from mcunet_tvm.frontend.torch_import import import_torch
from mcunet_tvm.frontend.zoo import CONFIGS
from mcunet_tvm.nas.cli import MAX_MAC_OVERHEAD, parse_args
from mcunet_tvm.nas.cli import main as nas_main
from mcunet_tvm.nas.data import image_folder, load_dataset, make_shapes
from mcunet_tvm.nas.light import PatchPolicy, predict
from mcunet_tvm.nas.mcu import PRESETS, Mcu, resolve_mcu
from mcunet_tvm.nas.search import arch_prediction, fits
from mcunet_tvm.nas.space import WIDTHS, Space, to_netconfig
from mcunet_tvm.nas.supernet import Supernet, extract_subnet
from mcunet_tvm.nas.train import accuracy, recalibrate_bn, train_supernet
from mcunet_tvm.pipeline import CompiledModel, compile_relax, kernel_isa
from mcunet_tvm.quant.ptq import quantize_model

from conftest import ROOT


def _compiled(config: dict, mcpu: str | None, **options) -> CompiledModel:
    res = config["resolution"]
    module = build_from_config(config)
    calib = [np.random.default_rng(i).uniform(-1, 1, (1, 3, res, res)).astype(np.float32) for i in range(4)]
    qdq = quantize_model(import_torch(module, (1, 3, res, res)), calib)
    return compile_relax(qdq, mcpu, **options)


def _compiled_arena(config: dict, mcpu: str | None) -> int:
    return _compiled(config, mcpu).plan.arena_bytes


@pytest.mark.parametrize("seed", range(6))
def test_light_planner_equals_the_compiler_on_random_architectures(seed: int) -> None:
    rng = random.Random(seed)
    space = Space(rng.choice([0.3, 0.5, 0.75]), rng.choice([32, 40, 48]))
    config = to_netconfig(space.sample(rng), classes=rng.choice([2, 10]))
    mcpu = ["cortex-m7", None, "cortex-m55"][seed % 3]  # DSP (SIMD overlap rules), plain, Helium kernels
    compiled = _compiled_arena(config, mcpu)
    isa = kernel_isa(mcpu)
    assert predict(config, dsp=isa != "plain", mve=isa == "mve").arena_bytes == compiled
    assert predict(config, dsp=isa != "plain", mve=isa == "mve", fast=True).arena_bytes >= compiled  # upper bound


@pytest.mark.parametrize("seed", range(2))
def test_light_planner_with_patches_equals_the_compiler(seed: int) -> None:
    rng = random.Random(seed)
    config = to_netconfig(Space(rng.choice([0.3, 0.4]), 48).sample(rng), classes=rng.choice([2, 10]))
    mcpu = ["cortex-m7", "cortex-m55"][seed % 2]  # SIMD (DSP) and Helium kernels in the patches
    isa = kernel_isa(mcpu)
    kinds = {"dsp": isa != "plain", "mve": isa == "mve"}
    layer = predict(config, **kinds)
    policy = PatchPolicy(layer.arena_bytes - 1, max_mac_overhead=0.3)  # only a patch split can meet it
    planned = predict(config, **kinds, patch=policy)
    # what `build --patch auto --max-mac-overhead 0.3 --sram-budget B` compiles
    compiled = _compiled(config, mcpu, **policy.build_options())
    info = compiled.patch
    assert planned.patch is not None and planned.arena_bytes <= policy.sram_budget
    assert planned.arena_bytes == compiled.plan.arena_bytes
    assert planned.patch == (info.split_step, info.grid)
    assert planned.overhead_macs == info.macs - info.layer_macs > 0 and planned.macs == info.layer_macs
    scored = predict(config, **kinds, fast=True, patch=policy)  # the quick planner: a bound that fits
    assert scored.patch is not None and planned.arena_bytes <= scored.arena_bytes <= policy.sram_budget
    assert scored.overhead_macs >= planned.overhead_macs


def test_patches_meet_a_budget_layer_by_layer_cannot() -> None:
    arch = Space(0.3, 80).sample(random.Random(0))
    layer = arch_prediction(arch, 10, "dsp", fast=False)
    mcu = Mcu("tight", layer.arena_bytes - 1, 1 << 30, "cortex-m7")
    policy = PatchPolicy(mcu.budget_sram, MAX_MAC_OVERHEAD)
    patched = arch_prediction(arch, 10, "dsp", patch=policy)
    assert not fits(layer, mcu) and fits(patched, mcu)
    form = patched.patch_json()
    assert form is not None and (form["split_step"], tuple(form["grid"])) == patched.patch
    assert 0 < form["mac_overhead"] <= MAX_MAC_OVERHEAD and patched.flash_bytes > layer.flash_bytes
    # off: never a patch, whatever the budget; no MACs to spare: no split; room enough: layer by layer first
    assert arch_prediction(arch, 10, "dsp").patch is None
    assert arch_prediction(arch, 10, "dsp", patch=PatchPolicy(mcu.budget_sram, 0.0)) == arch_prediction(arch, 10,
                                                                                                         "dsp")
    roomy = PatchPolicy(layer.arena_bytes, MAX_MAC_OVERHEAD)
    assert arch_prediction(arch, 10, "dsp", fast=False, patch=roomy) == layer
    # flash that layer by layer already exceeds: patches (more code) cannot help, so no search
    no_flash = PatchPolicy(mcu.budget_sram, MAX_MAC_OVERHEAD, flash_budget=layer.flash_bytes - 1)
    assert arch_prediction(arch, 10, "dsp", patch=no_flash) == arch_prediction(arch, 10, "dsp")


def test_nas_patch_options() -> None:
    args = parse_args(["--mcu", "stm32f746", "--out", "x"])
    assert (args.patch, args.max_mac_overhead) == ("auto", MAX_MAC_OVERHEAD)
    args = parse_args(["--mcu", "stm32f746", "--out", "x", "--patch", "off", "--max-mac-overhead", "0.1"])
    assert (args.patch, args.max_mac_overhead) == ("off", 0.1)
    with pytest.raises(SystemExit):
        parse_args(["--mcu", "stm32f746", "--out", "x", "--max-mac-overhead", "-0.1"])


def test_light_planner_equals_the_compiler_on_a_zoo_network() -> None:
    assert predict(CONFIGS["demo-cnn"]).arena_bytes == _compiled_arena(CONFIGS["demo-cnn"], "cortex-m7")


def test_extracted_subnet_equals_the_supernet() -> None:
    torch.manual_seed(0)
    space = Space(0.4, 40)
    net = Supernet(space, 10)
    x = torch.randn(64, 3, 40, 40)
    y = torch.randint(0, 10, (64,))
    train_supernet(net, (x, y), epochs=1, batch=32)
    for s in range(3):
        arch = space.sample(random.Random(s))
        recalibrate_bn(net, arch, x, batches=2, batch=32)
        sub = extract_subnet(net, arch)
        with torch.no_grad():
            assert torch.equal(net(x[:8], arch), sub(x[:8]))


def test_mcu_presets_and_reserves() -> None:
    assert {"stm32f412", "stm32f746", "stm32h743", "nrf52840"} <= set(PRESETS)
    mcu = resolve_mcu("stm32f746", sram_reserve="64KB")
    assert (mcu.budget_sram, mcu.budget_flash) == (256 * 1024, 896 * 1024)
    custom = resolve_mcu(None, "128KB", "512KB", target="cortex-m4")
    assert custom.target == "cortex-m4" and custom.sram_bytes == 128 * 1024
    with pytest.raises(McunetError, match="nothing is left"):
        resolve_mcu(None, "16KB", "1MB", sram_reserve="32KB")


def test_image_folder_dataset(tmp_path) -> None:
    from PIL import Image

    x, y = make_shapes(30, seed=3)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        folder = tmp_path / f"class{label}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert len(data.train_y) + len(data.val_y) + len(data.test_y) == 30 and len(data.val_y) > 0
    xt, _ = data.tensors("train", 32)
    assert tuple(xt.shape[1:]) == (3, 32, 32) and float(xt.min()) >= -1 and float(xt.max()) <= 1
    with pytest.raises(McunetError, match="does not exist"):
        image_folder(tmp_path / "missing")


def test_nas_quick_end_to_end(tmp_path, capsys) -> None:
    out = tmp_path / "nas"
    assert nas_main(["--mcu", "stm32f746", "--data", "demo", "--out", str(out), "--quick",
                     "--latency-cache", str(tmp_path / "latency.json")]) == 0
    result = json.loads((out / "result.json").read_text())
    for name in ("arch.json", "model.pt2", "calibration.npy", "flops_cdf.png", "accuracy_vs_sram.png"):
        assert (out / name).exists(), name
    mcu = PRESETS["stm32f746"]
    budget_sram = mcu.sram_bytes - result["mcu"]["sram_reserve"]
    budget_flash = mcu.flash_bytes - result["mcu"]["flash_reserve"]
    assert result["arena_bytes"] <= budget_sram and result["flash_bytes"] <= budget_flash
    measured = result["measured"]
    assert measured["bit_exact"] and measured["fits"]
    assert measured["arena_bytes"] == result["arena_bytes"], "planner and compiler disagree on the winner"
    assert measured["patch"] == result["patch"], "planner and compiler take different memory forms"
    assert (result["settings"]["patch"], result["settings"]["max_mac_overhead"]) == ("auto", MAX_MAC_OVERHEAD)
    assert f"--patch auto --max-mac-overhead {MAX_MAC_OVERHEAD}" in result["build_command"]
    assert measured["flash_bytes"] <= result["flash_bytes"], "flash prediction must be an upper bound"
    assert 0 <= result["accuracy"] <= 1 and result["baseline_accuracy"] is not None
    assert result["build_command"].startswith("python -m mcunet_tvm.build --target cortex-m7 --model ")
    assert len(result["search_space"]["candidates"]) == 12
    # reported accuracies: the exported models evaluated on the test split (validation apart)
    data = load_dataset("demo", quick=True, seed=0)
    res = result["architecture"]["resolution"]
    winner = torch.export.load(str(out / "model.pt2")).module()
    assert accuracy(winner, data.tensors("test", res), batch=1) == pytest.approx(result["accuracy"], abs=1e-4)
    assert accuracy(winner, data.tensors("val", res), batch=1) == pytest.approx(result["val_accuracy"], abs=1e-4)
    # the baseline: trained in quick mode too, the best validation score of the fitting grid, compiled alike
    base = result["baseline"]
    assert base["arena_bytes"] <= budget_sram and base["flash_bytes"] <= budget_flash
    cands = result["baseline_candidates"]
    assert base["label"] == max(cands, key=lambda c: (c["screen_val_accuracy"], c["macs"]))["label"]
    assert {c["width"] for c in cands} <= set(WIDTHS) and {c["resolution"] for c in cands} <= {32, 40}
    bnet = torch.export.load(str(out / "baseline" / "model.pt2")).module()
    btest = data.tensors("test", base["resolution"])
    assert accuracy(bnet, btest, batch=1) == pytest.approx(base["test_accuracy"], abs=1e-4)
    assert base["measured"]["bit_exact"] and base["measured"]["arena_bytes"] == base["arena_bytes"]
    assert base["measured"]["patch"] == base["patch"]
    # equal compute: the same recipe, and the same number of forward/backward passes
    eq, compute = result["equal_compute"], result["compute"]
    assert eq["same_recipe"]["compute"]["winner_from_scratch"] == eq["same_recipe"]["compute"]["baseline"]
    nas_passes = compute["supernet"]["forward_backward"] + compute["finetune"]["forward_backward"]
    assert eq["same_passes"]["compute"]["baseline"]["forward_backward"] == nas_passes > 0
    # the winner's and the baseline's predicted latency, checked against their compiled builds
    for lat in (result["latency"], base["latency"]):
        assert lat["within_tolerance"] and lat["measured"]["instructions"] and lat["measured"]["cycles"]
        assert lat["max_cycles"] is None and lat["milliseconds"] == pytest.approx(lat["cycles"] / 216e3, abs=1e-3)
    assert result["latency"]["measured"]["instructions"] == measured["instructions"]
    printed = capsys.readouterr().out
    assert "latency       " in printed and "within 2%" in printed
    assert "found model" in printed and "MobileNetV2   test accuracy" in printed and "smoke test" in printed


def test_impossible_budget_names_the_smallest_arena(tmp_path, capsys) -> None:
    code = nas_main(["--sram", "40KB", "--flash", "200KB", "--sram-reserve", "30KB", "--flash-reserve", "0KB",
                     "--data", "demo", "--out", str(tmp_path / "nas"), "--quick"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no network of the search space fits" in err and "smallest achievable arena is" in err
    assert not (tmp_path / "nas" / "result.json").exists()


def test_supernet_training_under_torchrun_with_ddp(tmp_path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(ROOT / ".venv" / "bin" / "torchrun"), "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "mcunet_tvm.nas", "--mcu", "stm32h743", "--data", "demo", "--out", str(out), "--quick",
           "--no-build", "--space-samples", "10", "--no-equal-compute"]
    if not (ROOT / ".venv" / "bin" / "torchrun").exists():
        cmd[:1] = [sys.executable, "-m", "torch.distributed.run"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and "measured" not in result
