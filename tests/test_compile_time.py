"""Compile time: each distinct kernel generated once per build, progress lines of long work."""

from __future__ import annotations

import collections

import pytest

import mcunet_tvm.kernels as kernels
from mcunet_tvm.build import main
from mcunet_tvm.codegen.tir_to_c import kernels_to_c
from mcunet_tvm.frontend import load_model
from mcunet_tvm.kernels.choice import choice_of, op_of
from mcunet_tvm.pipeline import compile_relax, tvm_target
from mcunet_tvm.progress import Counter

from conftest import FIXTURES


@pytest.fixture(scope="module")
def demo():
    return load_model("demo-cnn")


def test_each_distinct_kernel_is_generated_once_and_gives_fresh_c(demo, monkeypatch) -> None:
    """A patched build generates one kernel per distinct (descriptor, choice), fewer than it uses, and its
    kernels' C equals that of every kernel generated afresh (no cache)."""
    generated: collections.Counter = collections.Counter()
    make = kernels.make_kernel

    def counting(op, choice=None):
        generated[(op.to_json(), (choice or kernels.KernelChoice()).to_json())] += 1
        return make(op, choice)

    monkeypatch.setattr(kernels, "make_kernel", counting)
    with kernels.kernel_cache() as cache:
        compiled = compile_relax(demo.module, None, patch=(4, (2, 2)))
    assert compiled.patch is not None
    assert generated and max(generated.values()) == 1
    assert len(generated) == len(cache.kernels) < cache.requests
    used = {(op_of(f).to_json(), choice_of(f).to_json()) for f in compiled.program.kernels.values()}
    assert used <= set(generated)
    monkeypatch.setattr(kernels, "make_kernel", make)
    fresh = {f"mcunet_{name}": kernels.build_kernel(op_of(f), choice_of(f))
             for name, f in compiled.program.kernels.items()}  # (the C symbols carry the library's name)
    assert kernels_to_c(fresh, tvm_target(None)).source == compiled.files["mcunet_kernels.c"]


def test_build_reports_progress_unless_quiet(tmp_path, capsys) -> None:
    args = ["--target", "host", "--model", str(FIXTURES / "tiny_cnn.tflite"), "--patch", "auto"]
    assert main([*args, "--out", str(tmp_path / "loud")]) == 0
    out = capsys.readouterr().out
    for phase in ("patch search: candidates planned", "lowering", "kernels rendered as C",
                  "compiling 2 C files", "linking"):
        assert phase in out, phase
    assert main([*args, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_plain_progress_lines_are_throttled() -> None:
    lines: list[str] = []
    count = Counter(lines.append, "work", 1000, every=3600.0)
    for _ in range(1000):
        count.step()
    count.close()
    assert len(lines) == 1 and lines[0].startswith("work: 1000/1000 in ")
