"""Arena safety: guard builds check, on QEMU, after every step, that no kernel wrote outside its tensor."""

from __future__ import annotations

import pytest

import mcunet_tvm.planner as planner
from mcunet_tvm.planner.offsets import Layout

from conftest import FIXTURES


@pytest.mark.parametrize("model", ["demo-cnn", "mcunet-vww-like", str(FIXTURES / "tiny_valid_cnn.tflite")])
def test_guard_build_runs_clean(build_cli, model: str) -> None:
    code, report, _ = build_cli("--target", "cortex-m7", "--model", model, "--run", "--guards", "--quiet")
    assert code == 0
    assert report["guards"] is True
    assert report["qemu"]["bit_exact"] is True


def test_a_broken_layout_is_caught(build_cli, monkeypatch, capsys) -> None:
    """Sabotage the planner: a tensor written 8 bytes into a live neighbour's guard zone.

    The device must stop at that step and say so; no report is written.
    """
    real = planner.assign_offsets

    def broken(intervals, rules=None):
        layout = real(intervals, rules)
        offsets = {name: off + 64 for name, off in layout.offsets.items()}
        ivs = sorted(intervals.values(), key=lambda v: v.first)
        victim, culprit = next((a, b) for a in ivs for b in ivs if b.first > a.first and a.overlaps(b))
        offsets[culprit.name] = offsets[victim.name] - 8
        return Layout(offsets, layout.arena_bytes + 128, "broken")

    monkeypatch.setattr(planner, "assign_offsets", broken)
    code, report, _ = build_cli("--target", "cortex-m7", "--model", str(FIXTURES / "tiny_cnn.tflite"),
                                "--run", "--guards", "--quiet")
    assert code != 0
    assert report is None
    assert "guard bytes overwritten" in capsys.readouterr().err
