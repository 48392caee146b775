"""ShrinkPeakScratch (passes/peak_scratch.py): kernel scratch never sets the arena's peak without need.

On MLPerf Tiny's FC autoencoder shape (tests/fixtures/corpus/fc_autoencoder.tflite, 640 inputs) the first
dense layer's SIMD kernel in pixel order widens its whole input into the arena (1,280 B beside the 640 B
input): it takes the unstaged channel-order form, the arena falls to the tensors alone, and the device
stays bit-exact with TF Lite Micro. On the corpus, with the pass and without it (the identity), the
peak of live bytes never rises, falls wherever a kernel changed, and every changed kernel has less
scratch and says so (``memory_first``).
"""

from __future__ import annotations

import dataclasses

import pytest

import mcunet_tvm.passes.peak_scratch as peak_scratch
from mcunet_tvm.frontend.tflite.importer import import_tflite
from mcunet_tvm.ir import program_of
from mcunet_tvm.pipeline import PipelineOptions, optimise
from mcunet_tvm.planner import live_bytes

from conftest import FIXTURES

CORPUS = FIXTURES / "corpus"


def _program(name: str, mcpu: str, shrink: bool, monkeypatch):
    if not shrink:
        monkeypatch.setattr(peak_scratch, "peak_scratch_choices", lambda prog: {})
    mod, _ = import_tflite(CORPUS / f"{name}.tflite")
    prog = program_of(optimise(mod, PipelineOptions(mcpu=mcpu), light=True)[0])
    monkeypatch.undo()
    return prog


@pytest.mark.parametrize("name", ["fc_autoencoder", "ds_cnn", "resnet8", "mobilenet_v1_025_vww"])
@pytest.mark.parametrize("mcpu", ["cortex-m7", "cortex-m55"])
def test_peak_falls_or_nothing_changes(name: str, mcpu: str, monkeypatch) -> None:
    before = _program(name, mcpu, False, monkeypatch)
    after = _program(name, mcpu, True, monkeypatch)
    peak_before, peak_after = max(live_bytes(before.memory_graph())), max(live_bytes(after.memory_graph()))
    changed = [(b, a) for b, a in zip(before.calls, after.calls, strict=True) if b.choice != a.choice]
    assert peak_after < peak_before if changed else peak_after == peak_before
    for b, a in changed:
        assert a.choice.memory_first and not b.choice.memory_first
        assert a.choice.scratch_bytes(a.op) < b.choice.scratch_bytes(b.op)
        assert dataclasses.replace(a.choice, simd=b.choice.simd, wide_ring=b.choice.wide_ring,
                                   memory_first=False) == b.choice  # only the scratch form changed
    assert all(not c.choice.memory_first for c in before.calls)


def test_smaller_scratch_forms_shrink() -> None:
    mod, _ = import_tflite(CORPUS / "fc_autoencoder.tflite")
    prog = program_of(optimise(mod, PipelineOptions(mcpu="cortex-m7", inplace=False), light=True)[0])
    for call in prog.calls:
        if not call.kernel:
            continue
        scratch = call.choice.scratch_bytes(call.op)
        forms = call.choice.smaller_scratch(call.op)
        assert all(f.scratch_bytes(call.op) < scratch and f.memory_first and 0 <= gain < 1 for f, gain in forms)
        assert forms or not scratch or call.choice.simd is None


def test_autoencoder_arena_is_its_tensors_and_stays_exact_on_qemu(build_cli) -> None:
    code, report, _ = build_cli("--target", "cortex-m4", "--model", str(CORPUS / "fc_autoencoder.tflite"), "--run")
    assert code == 0
    assert report["qemu"]["bit_exact"] is True and report["qemu"]["bit_exact_tflm"] is True
    steps = report["memory"]["steps"]
    first = steps[0]
    assert report["arena_bytes"] == max(s["live_bytes"] for s in steps)
    traded = report["memory"]["smaller_scratch_steps"]
    assert traded and traded[0]["step"] == 0 and traded[0]["scratch_bytes"] == 0
    # the first step holds its input and output only: the widened input (1,280 B) is gone
    assert [e["tensor"] for e in first["live"]] == ["input", first["output"]]
    assert report["arena_bytes"] == 640 + 128
