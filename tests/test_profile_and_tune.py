"""Per-operator profiling on QEMU and schedule tuning: deterministic, complete, never changing results."""

from __future__ import annotations

import json

from mcunet_tvm.kernels.simd import default_config
from mcunet_tvm.ops import op_from_json
from mcunet_tvm.profile import main as profile_main


def test_profile_is_complete_and_deterministic(build_cli, tmp_path) -> None:
    code, report, out = build_cli("--target", "cortex-m7", "--model", "demo-cnn", "--profile", "--quiet", out="a")
    assert code == 0 and report["qemu"]["bit_exact"]
    first = json.loads((out / "profile.json").read_text())
    code, _, out_b = build_cli("--target", "cortex-m7", "--model", "demo-cnn", "--profile", "--quiet", out="b")
    assert code == 0
    assert json.loads((out_b / "profile.json").read_text()) == first  # instruction counts (and the model) exact
    steps = first["steps"]
    assert len(steps) == report["kernels"]["layers"]
    assert sorted(r["step"] for r in steps) == list(range(len(steps)))
    assert all(r["instructions"] > 0 for r in steps)
    assert [r["instructions"] for r in steps] == sorted((r["instructions"] for r in steps), reverse=True)
    # the per-step counts add up to the end-to-end count, up to the entry point's own few instructions
    assert first["total_instructions"] == report["qemu"]["instructions"]
    assert 0 <= first["total_instructions"] - first["sum_of_steps"] <= 4 * len(steps)
    assert sum(r["macs"] for r in steps) == report["macs"]
    assert abs(sum(g["share"] for g in first["by_op_type"]) - 1) < 1e-3
    assert report["kernels"]["simd_layers"] > 0  # the M7 has DSP: conv/dense run SIMD micro-kernels
    # the cycle model's estimate, attributed to the same steps (tests/test_cycle_model.py checks the model)
    assert all(r["cycles"] > 0 for r in steps)
    assert sum(g["cycles"] for g in first["by_op_type"]) == sum(r["cycles"] for r in steps)
    assert first["total_cycles_estimate"] == report["cycles_estimate"]["total"] >= sum(r["cycles"] for r in steps)


def test_profile_cli_prints_the_table(tmp_path, capsys) -> None:
    code = profile_main(["--target", "cortex-m7", "--model", "demo-cnn", "--out", str(tmp_path / "p")])
    text = capsys.readouterr().out
    assert code == 0
    assert "instr/MAC" in text and "depthwise_conv2d" in text and "end to end" in text
    assert "cycles (est.)" in text and "a model, not a measurement" in text


def test_profile_needs_an_emulated_core(build_cli, capsys) -> None:
    code, report, _ = build_cli("--target", "host", "--model", "demo-cnn", "--profile")
    assert code != 0 and report is None
    assert "--profile needs an emulated Cortex-M target" in capsys.readouterr().err


def test_tuning_fills_the_database_and_later_builds_reuse_it(build_cli, tmp_path) -> None:
    db = tmp_path / "tuning.json"
    args = ("--target", "cortex-m7", "--model", "demo-cnn", "--tune-db", str(db), "--quiet", "--run")
    code, plain, plain_dir = build_cli(*args, "--kernels", "plain", out="plain")
    assert code == 0 and plain["kernels"]["simd_layers"] == 0
    code, tuned, tuned_dir = build_cli(*args, "--tune", "2", out="tuned")
    assert code == 0 and tuned["qemu"]["bit_exact"] and tuned["qemu"]["bit_exact_tflm"]
    records = json.loads(db.read_text())["records"]
    assert 0 < len(records) <= tuned["kernels"]["simd_layers"]  # identical layers share a record
    for rec in records.values():
        measured = rec["measured"]
        assert len(measured) == 2
        default = default_config(op_from_json(rec["op"])).to_json()
        assert default in measured, "the default schedule is always measured"
        assert measured[rec["best"]] == min(measured.values()) <= measured[default]
    assert tuned["kernels"]["tuned_layers"] == tuned["kernels"]["simd_layers"]
    # a later build without --tune picks the database's schedules: the same program, the same count
    code, again, _ = build_cli(*args, out="again")
    assert code == 0 and again["qemu"]["instructions"] == tuned["qemu"]["instructions"]
    assert json.loads(db.read_text())["records"] == records  # nothing re-measured
    # tuning never changes results, and the SIMD build is faster than the plain kernels
    assert (tuned_dir / "output.bin").read_bytes() == (plain_dir / "output.bin").read_bytes()
    assert tuned["qemu"]["instructions"] < plain["qemu"]["instructions"]


def test_a_corrupt_tuning_database_is_a_clear_error(build_cli, tmp_path, capsys) -> None:
    db = tmp_path / "tuning.json"
    db.write_text("{not json")
    code, report, _ = build_cli("--target", "cortex-m7", "--model", "demo-cnn", "--tune-db", str(db))
    assert code != 0 and report is None
    err = capsys.readouterr().err
    assert "tuning database cannot be read" in err and str(db) in err
