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
    _assert_clean_error(code, err, out, "budget is 1,024 B", "peak at step", "live tensors", "patch")


def test_flash_budget(tmp_path) -> None:
    code, err, out = _cli("--model", str(FIXTURES / "tiny_cnn.tflite"), "--flash-budget", "2KB", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "flash", "budget is 2,048 B")


def test_unreadable_budget(tmp_path) -> None:
    code, err, out = _cli("--model", "demo-cnn", "--sram-budget", "lots", tmp_path=tmp_path)
    _assert_clean_error(code, err, out, "lots", "256KB")
