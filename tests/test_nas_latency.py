"""TinyNAS's latency model: per-layer costs against compiled networks on QEMU, the cache, the limit."""

from __future__ import annotations

import random

import pytest

from mcunet_tvm.errors import BudgetError, McunetError
from mcunet_tvm.nas import latency as latency_mod
from mcunet_tvm.nas.cli import build_seeded
from mcunet_tvm.nas.cli import main as nas_main
from mcunet_tvm.nas.latency import TOLERANCE, LatencyModel, layer_calls
from mcunet_tvm.nas.light import PatchPolicy, predict
from mcunet_tvm.nas.mcu import PRESETS, latency_cycles, resolve_mcu
from mcunet_tvm.nas.search import LatencyLimit, arch_prediction, evolve, optimise_space
from mcunet_tvm.nas.space import Space, to_netconfig


@pytest.mark.parametrize("seed,target", [(0, "cortex-m7"), (1, "cortex-m4")])
def test_latency_model_within_tolerance_of_qemu_on_random_architectures(tmp_path, seed: int, target: str) -> None:
    rng = random.Random(seed)
    arch = Space(rng.choice([0.3, 0.4]), rng.choice([32, 40])).sample(rng)
    config = to_netconfig(arch, classes=rng.choice([2, 10]))
    model = LatencyModel(target, tmp_path / "cache.json")
    predicted = model.latency(predict(config).program)
    assert model.measured > 0
    report = build_seeded(config, target, tmp_path / "net")
    instructions, cycles = report["qemu"]["instructions"], report["cycles_estimate"]["total"]
    assert report["qemu"]["bit_exact"]
    assert abs(predicted.instructions / instructions - 1) <= TOLERANCE, (predicted, instructions)
    assert abs(predicted.cycles / cycles - 1) <= TOLERANCE, (predicted, cycles)


def test_latency_model_on_a_patched_network(tmp_path) -> None:
    """A plan with patch-based inference (the NAS's memory forms): its windowed layers and patch assembly
    are costed like any layer, within tolerance of the patched build."""
    config = to_netconfig(Space(0.3, 48).sample(random.Random(4)), classes=4)
    policy = PatchPolicy(int(predict(config).arena_bytes * 0.8), 0.3)
    planned = predict(config, patch=policy)
    assert planned.patch is not None
    predicted = LatencyModel("cortex-m7", tmp_path / "cache.json").latency(planned.program)
    report = build_seeded(config, "cortex-m7", tmp_path / "net", **policy.build_options())
    assert report["patch"]["split_step"] == planned.patch[0] and report["qemu"]["bit_exact"]
    assert abs(predicted.instructions / report["qemu"]["instructions"] - 1) <= TOLERANCE
    assert abs(predicted.cycles / report["cycles_estimate"]["total"] - 1) <= TOLERANCE


def test_layers_are_measured_once_and_cached(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache.json"
    a, b = Space(0.3, 32).covering()[:2]
    pa, pb = (arch_prediction(x, 4, "dsp").program for x in (a, b))
    first = LatencyModel("cortex-m7", cache)
    la = first.latency(pa)
    measured = first.measured
    assert measured == len({latency_mod.layer_key("cortex-m7", c) for c in layer_calls(pa)})
    first.latency(pb)  # only b's new layers
    assert measured < first.measured < measured + len(layer_calls(pb))
    again = LatencyModel("cortex-m7", cache)  # a new process: everything from the file
    assert again.latency(pa) == la and again.measured == 0
    assert LatencyModel("cortex-m4", tmp_path / "other.json").latency(pa) != la  # per core
    monkeypatch.setattr(latency_mod, "fingerprint", lambda: "another compiler")
    assert LatencyModel("cortex-m7", cache).layers == {}  # a changed compiler starts afresh


def test_the_evolution_respects_the_latency_limit(tmp_path) -> None:
    mcu = PRESETS["stm32h743"]
    space = Space(0.3, 32)
    model = LatencyModel("cortex-m7", tmp_path / "cache.json")
    rng = random.Random(0)
    samples = [arch_prediction(space.sample(rng), 4, "dsp") for _ in range(12)]
    cycles = sorted(model.latency(p.program).cycles for p in samples)
    limit = LatencyLimit(model, cycles[len(cycles) // 2])

    def by_macs(archs):  # a fitness that wants the biggest network: the limit must hold it back
        return [float(arch_prediction(a, 4, "dsp").macs) for a in archs]

    free, _ = evolve(space, mcu, 4, "dsp", by_macs, population=6, generations=2, seed=0)
    bound, log = evolve(space, mcu, 4, "dsp", by_macs, population=6, generations=2, seed=0, limit=limit)
    assert model.latency(free.prediction.program).cycles > limit.max_cycles
    assert all(c.latency is not None and c.latency.cycles <= limit.max_cycles for c in log.evaluated)
    assert bound.latency == model.latency(bound.prediction.program)
    with pytest.raises(BudgetError, match="modelled cycles"):
        optimise_space(mcu, [32], 4, 4, "dsp", widths=(0.3,), limit=LatencyLimit(model, 1_000))


def test_latency_limits_in_cycles() -> None:
    f746 = resolve_mcu("stm32f746")
    assert latency_cycles(f746, 10, None, None) == 2_160_000  # the preset's 216 MHz
    assert latency_cycles(f746, 10, 100, None) == 1_000_000
    assert latency_cycles(f746, None, None, 123) == 123
    assert latency_cycles(f746, None, None, None) is None
    custom = resolve_mcu(None, "256KB", "1MB")
    for args, message in [((custom, 10, None, None), "needs the core's clock"), ((f746, 10, None, 5), "two"),
                          ((f746, None, 100, None), "without a latency limit"), ((f746, None, None, 0), "positive"),
                          ((f746, -1, None, None), "positive")]:
        with pytest.raises(McunetError, match=message):
            latency_cycles(*args)


@pytest.mark.parametrize("argv,message", [
    (["--sram", "256KB", "--flash", "1MB", "--max-latency-ms", "5"], "needs the core's clock"),
    (["--sram", "256KB", "--flash", "1MB", "--target", "cortex-m55", "--max-cycles", "10000"], "no cycle model"),
    (["--mcu", "stm32f746", "--max-latency-ms", "5", "--max-cycles", "9"], "two latency limits"),
])
def test_bad_latency_options_exit_2(tmp_path, capsys, argv: list[str], message: str) -> None:
    assert nas_main([*argv, "--data", "demo", "--quick", "--out", str(tmp_path / "nas")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "nas" / "result.json").exists()
