"""Bad input: a clear error (what, where, what to do), non-zero exit, no traceback, no report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT


def _cli(*args: str, tmp_path: Path, env: dict | None = None) -> tuple[int, str, Path]:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "mcunet_tvm.build", *args, "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )
    return proc.returncode, proc.stderr, out


def _assert_clean_error(code: int, stderr: str, out: Path, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("error: ") or "\nerror: " in stderr, stderr
    for needle in needles:
        assert needle in stderr, stderr
    assert not (out / "report.json").exists()


def test_unsupported_operator_names_op_and_index(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "corpus" / "lstm_kws.tflite"), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "UNIDIRECTIONAL_SEQUENCE_LSTM", "operator #0", "supported TFLite operators")


def test_float_tflite_says_how_to_quantise(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "float_cnn.tflite"), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "not a full-integer model", "TFLITE_BUILTINS_INT8")


def test_dynamic_range_tflite(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "dynamic_range.tflite"), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "dynamic-range", "representative_dataset")


def test_corrupt_file(tmp_path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes((FIXTURES / "tiny_cnn.tflite").read_bytes()[:300])
    code, err, out = _cli("--model", str(bad), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, str(bad))


def test_not_a_tflite(tmp_path) -> None:
    bad = tmp_path / "text.tflite"
    bad.write_text("hello")
    code, err, out = _cli("--model", str(bad), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "TFL3", str(bad))


def test_missing_file(tmp_path) -> None:
    code, err, out = _cli("--model", str(tmp_path / "nope.tflite"), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "nope.tflite")


def test_unknown_zoo_name_lists_models(tmp_path) -> None:
    code, err, out = _cli("--model", "resnet-9000", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "resnet-9000", "demo-cnn")


def test_unknown_target(tmp_path) -> None:
    code, err, out = _cli("--model", "demo-cnn", "--target", "cortex-a53", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "cortex-a53", "cortex-m7")


def test_wrong_input_size(tmp_path) -> None:
    data = tmp_path / "in.bin"
    data.write_bytes(b"\0" * 10)
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--run", "--input", str(data),
                          tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "10 bytes", "768")


def test_bad_netconfig_names_block(tmp_path) -> None:
    from mcunet_tvm.frontend.zoo import CONFIGS

    config = json.loads(json.dumps(CONFIGS["demo-cnn"]))
    config["blocks"][2]["mobile_inverted_conv"]["name"] = "FancyLayer"
    path = tmp_path / "net.json"
    path.write_text(json.dumps(config))
    code, err, out = _cli("--model", str(path), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "FancyLayer", "blocks[2]")


def test_invalid_json(tmp_path) -> None:
    path = tmp_path / "net.json"
    path.write_text("{ not json")
    code, err, out = _cli("--model", str(path), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "invalid JSON", str(path))


def test_missing_toolchain_gives_install_command(tmp_path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # python only: no gcc, no qemu
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), tmp_path=tmp_path, env=env)
    _assert_clean_error(code, err, out, "arm-none-eabi-gcc", "apt-get install")


@pytest.mark.parametrize("flag", ["--help"])
def test_help_documents_every_option(flag: str, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.build", flag], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0
    for option in ("--target", "--model", "--out", "--run", "--input", "--seed"):
        assert option in proc.stdout


def test_sram_budget_names_peak_step(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--sram-budget", "1KB", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "budget is 1,024 B", "peak at step", "live in tensors at arena ranges",
                        "--patch auto")


def test_flash_budget(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--flash-budget", "2KB", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "flash", "budget is 2,048 B")


def test_unreadable_budget(tmp_path) -> None:
    code, err, out = _cli("--model", "demo-cnn", "--sram-budget", "lots", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "lots", "256KB")


# ---- net configs: every field removed, negated, zeroed, retyped ---------------------------------------
def _leaves(obj, path=()):
    """(path, value) of every scalar field of a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _mutated(config: dict, path: tuple, change):
    config = json.loads(json.dumps(config))
    parent = config
    for k in path[:-1]:
        parent = parent[k]
    if change == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = change(parent[path[-1]])
    return config


_CHANGES = {"remove": "remove", "negate": lambda v: -v if isinstance(v, int | float) else v,
            "zero": lambda v: 0, "retype": lambda v: str(v), "half": lambda v: v / 2 if isinstance(v, int) else v}


def test_every_mutated_netconfig_builds_or_is_a_clear_error() -> None:
    """Each field of a zoo config removed, negated, zeroed, halved or turned into a string: the network
    builds and runs on its input, or the error names the field's JSON path. Never a traceback."""
    import torch

    from mcunet_tvm.errors import McunetError
    from mcunet_tvm.frontend.netconfig import ProxylessNet, check_config
    from mcunet_tvm.frontend.zoo import CONFIGS

    config = CONFIGS["demo-cnn"]
    refused = built = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention
    for path, _ in _leaves(config):
        for change in _CHANGES.values():
            mutant = _mutated(config, path, change)
            try:
                check_config(mutant)
                net = ProxylessNet(mutant).eval()  # (build_from_config: this, with seeded weights)
            except McunetError as exc:
                refused += 1
                assert exc.where, exc.format()
                continue
            res = min(int(mutant.get("resolution", 224)), 16)  # any size runs the same layers; small is fast
            with torch.no_grad():
                y = net(torch.zeros(1, int(mutant["first_conv"]["in_channels"]), res, res))
            assert y.shape == (1, int(mutant["classifier"]["out_features"]))
            built += 1
    torch.set_num_threads(threads)
    assert refused > 100 and built > 20, (refused, built)


@pytest.mark.parametrize("field,value,needles", [
    (("first_conv", "in_channels"), None, ["first_conv.in_channels"]),
    (("blocks", 1, "mobile_inverted_conv", "out_channels"), -4, ["blocks[1].mobile_inverted_conv.out_channels"]),
    (("resolution",), 0, ["resolution"]),
    (("blocks", 1, "mobile_inverted_conv", "stride"), "two", ["blocks[1].mobile_inverted_conv.stride"]),
    (("blocks", 2, "mobile_inverted_conv", "in_channels"), 12, ["blocks[2].mobile_inverted_conv.in_channels",
                                                               "produces 16"]),
])
def test_netconfig_errors_name_the_json_path(field, value, needles, tmp_path) -> None:
    from mcunet_tvm.frontend.zoo import CONFIGS

    config = _mutated(CONFIGS["demo-cnn"], field, "remove" if value is None else (lambda _: value))
    path = tmp_path / "net.json"
    path.write_text(json.dumps(config))
    code, err, out = _cli("--model", str(path), tmp_path=tmp_path)
    assert code == 2
    _assert_clean_error(code, err, out, str(path), *needles)


# ---- command-line arguments: checked before any work ------------------------------------------------
@pytest.mark.parametrize("args,needles", [
    (["--sram-budget", "inf"], ["--sram-budget", "inf"]),
    (["--sram-budget", "1e400"], ["--sram-budget"]),
    (["--sram-budget=-1KB"], ["--sram-budget"]),
    (["--sram-budget", "0"], ["--sram-budget", "below"]),
    (["--flash-budget", "0.5"], ["--flash-budget"]),
    (["--tune=-1"], ["--tune", "negative"]),
    (["--max-mac-overhead=-1"], ["--max-mac-overhead"]),
    (["--max-mac-overhead", "nan"], ["--max-mac-overhead"]),
    (["--patch", "0x0@3"], ["--patch", "0x0"]),
    (["--patch", "lots"], ["--patch", "3x3@12"]),
    (["--stream-input"], ["--stream-input", "--patch"]),
    (["--seed=-3"], ["--seed"]),
    (["--kernels", "fast"], ["--kernels"]),
    (["--bogus"], ["--bogus"]),
])
def test_bad_arguments_fail_before_compiling(args, needles, tmp_path, capsys) -> None:
    """In process (the CLI's own main): exit 2 with our error, before any compiling, --out not created."""
    import time

    from mcunet_tvm.build import main

    out = tmp_path / "out"
    start = time.monotonic()
    try:
        code = main(["--model", str(FIXTURES / "tiny_cnn.tflite"), *args, "--out", str(out)])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    _assert_clean_error(code, err, out, *needles)
    assert not out.exists()
    assert time.monotonic() - start < 5  # nothing was compiled


def test_input_without_run_is_an_error(tmp_path) -> None:
    data = tmp_path / "in.bin"
    data.write_bytes(b"\0" * 768)
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--input", str(data), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "--input", "--run")


def test_out_must_be_a_folder_of_ours(tmp_path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.build", "--model", "demo-cnn", "--out", str(afile)],
                          capture_output=True, text=True, cwd=ROOT)
    _assert_clean_error(proc.returncode, proc.stderr, tmp_path / "none", "is a file")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.build", "--model", "demo-cnn", "--out", str(mine)],
                          capture_output=True, text=True, cwd=ROOT)
    _assert_clean_error(proc.returncode, proc.stderr, mine, "not a build's output")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_out_path_with_commas_and_spaces(build_cli) -> None:
    """The linker gets the map file's path whole (``-Xlinker``: ``-Wl,`` splits at commas)."""
    code, report, out = build_cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--target", "cortex-m4",
                                  out="run 1,cortex-m4")
    exe = out / report["executable"]
    assert code == 0 and exe.is_file() and exe.with_suffix(".map").is_file()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failed_build_leaves_the_earlier_build_untouched(tmp_path) -> None:
    """A good build, then failing ones into the same folder (wrong input size after compiling, unknown
    target, host --profile, a refused model): the folder holds exactly the first build's files, and
    no staging folder is left beside it."""
    model = str(FIXTURES / "tiny_cnn.tflite")
    code, err, out = _cli("--model", model, "--target", "host", "--run", tmp_path=tmp_path)
    assert code == 0, err
    before = _snapshot(out)
    assert "report.json" in before and "output.bin" in before
    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 10)
    for args in (["--model", model, "--target", "host", "--run", "--input", str(short)],
                 ["--model", model, "--target", "cortex-a9"],
                 ["--model", model, "--target", "host", "--profile"],
                 ["--model", str(FIXTURES / "corpus" / "lstm_kws.tflite"), "--target", "host"]):
        code, err, _ = _cli(*args, tmp_path=tmp_path)
        assert code == 2 and "Traceback" not in err, err
        assert _snapshot(out) == before, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "short.bin"]


def test_profile_has_its_own_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.profile", "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0
    assert "mcunet_tvm.profile" in proc.stdout and "--run" not in proc.stdout and "--profile" not in proc.stdout


def test_list_models(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.build", "--list-models"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0 and "demo-cnn" in proc.stdout.split()


def test_calibration_that_is_not_npy(tmp_path) -> None:
    text = tmp_path / "calib.txt"
    text.write_text("hello")
    code, err, out = _cli("--model", "demo-cnn", "--calibration", str(text), tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "not a .npy", "numpy.save")
    assert "pickle" not in err


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys) -> None:
    import mcunet_tvm.api
    from mcunet_tvm.build import run_cli

    def broken(options):
        raise RuntimeError("internal invariant")

    monkeypatch.setattr(mcunet_tvm.api, "build", broken)
    assert run_cli(lambda: None, lambda result: None) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: internal invariant" in err and "bug in mcunet-tvm" in err


def _damaged_builds(count: int, tmp_path: Path, capsys) -> dict[str, int]:
    """``count`` damaged copies of a fixture built (in process, host, with --run) into a folder holding a good
    build: exit 0 with a bit-exact run, or exit 2 with our error and the folder exactly as it was."""
    from test_tflite_frontend import _mutants

    from mcunet_tvm.build import main

    out = tmp_path / "out"
    model = FIXTURES / "tiny_cnn.tflite"
    assert main(["--model", str(model), "--target", "host", "--run", "--quiet", "--out", str(out)]) == 0
    outcomes = {"built": 0, "error": 0}
    for i, mutant in enumerate(_mutants(model.read_bytes(), count, seed=11)):
        before = _snapshot(out)
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(mutant)
        capsys.readouterr()
        code = main(["--model", str(path), "--target", "host", "--run", "--quiet", "--out", str(out)])
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (i, code, err)
        if code == 2:
            assert err.startswith("error: ") and _snapshot(out) == before, (i, err)
            outcomes["error"] += 1
        else:
            report = json.loads((out / "report.json").read_text())
            assert report["host_run"]["bit_exact"] and report["host_run"]["bit_exact_tflm"], i
            outcomes["built"] += 1
    return outcomes


def test_damaged_tflite_builds_or_leaves_the_folder(tmp_path, capsys) -> None:
    outcomes = _damaged_builds(16, tmp_path, capsys)
    assert outcomes["error"] > 0, outcomes


@pytest.mark.slow
def test_damaged_tflite_builds_or_leaves_the_folder_sweep(tmp_path, capsys) -> None:
    outcomes = _damaged_builds(300, tmp_path, capsys)
    assert outcomes["error"] > 0 and outcomes["built"] > 0, outcomes
