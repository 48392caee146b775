"""End to end on emulated Cortex-M: compile, link, run on QEMU, compare byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mcunet_tvm.frontend.netconfig import randomize
from mcunet_tvm.frontend.zoo import CONFIGS

from conftest import FIXTURES


def _check(code: int, report: dict) -> dict:
    assert code == 0
    run = report["qemu"]
    assert run["bit_exact"] is True
    assert run.get("bit_exact_tflm") is True
    assert run["instructions"] > report["macs"] > 0
    assert 0 < report["stack_bytes"] < 16384
    assert report["arena_bytes"] >= report["arena_lower_bound_bytes"] > 0
    assert report["flash_bytes"] > report["model_flash_bytes"] > 0
    return run


@pytest.mark.parametrize(
    "model,target",
    [
        ("tiny_cnn.tflite", "cortex-m7"),
        ("tiny_valid_cnn.tflite", "cortex-m7"),
        ("tiny_cnn.tflite", "cortex-m4"),
        ("tiny_cnn.tflite", "cortex-m55"),
        ("unsupported_op.tflite", "cortex-m4"),  # LOGISTIC (written when it was unsupported): a table lookup
    ],
)
def test_tflite_on_qemu(build_cli, model: str, target: str) -> None:
    code, report, out = build_cli("--target", target, "--model", str(FIXTURES / model), "--run")
    _check(code, report)
    assert report["tflm_arena_bytes"] > 0
    assert (out / "output.bin").stat().st_size == int(np.prod(report["output_shape"]))
    for name in ("mcunet_model.c", "mcunet_model.h", "mcunet_kernels.c", "mcunet_kernels.h"):
        assert (out / name).exists()


def test_binary_operator_on_qemu(build_cli) -> None:
    """MUL of a (3, 4, 7) activation by a constant (7,) vector on Cortex-M4: bit-exact with the reference and
    TF Lite Micro, and the output overwrites its input (the arena's peak is one tensor)."""
    code, report, _ = build_cli("--target", "cortex-m4", "--model", str(FIXTURES / "ops" / "mul_const.tflite"),
                                "--run")
    assert code == 0
    assert report["qemu"]["bit_exact"] is True and report["qemu"]["bit_exact_tflm"] is True
    assert report["arena_lower_bound_bytes"] == 3 * 4 * 7


#: corpus models in CI (converter-written, the shapes of public TinyML reference networks); all of them, on
#: both cores, in the slow sweep (and scripts/bench_corpus.py)
CORPUS_CI = [("ds_cnn", "cortex-m4"), ("resnet8", "cortex-m7"), ("fomo_detector", "cortex-m7"),
             ("pytorch_style_nchw", "cortex-m4"), ("multi_io", "cortex-m4"), ("int16x8_cnn", "cortex-m4"),
             ("int16x8_cnn", "cortex-m7")]
CORPUS_ALL = ("resnet8", "ds_cnn", "mobilenet_v1_025_vww", "fc_autoencoder", "person_detect", "micro_speech",
              "efficientnet_lite0", "fomo_detector", "pytorch_style_nchw", "multi_io", "mobilenet_v3_small",
              "unet_small", "int16x8_cnn")


def _corpus_case(build_cli, name: str, target: str) -> None:
    code, report, out = build_cli("--target", target, "--model", str(FIXTURES / "corpus" / f"{name}.tflite"), "--run")
    _check(code, report)
    assert report["tflm_arena_bytes"] > 0 and report["arena_bytes"] > 0
    shapes = report["output_shapes"]
    files = ["output.bin"] if len(shapes) == 1 else [f"output{k}.bin" for k in range(len(shapes))]
    for name, shape, dtype in zip(files, shapes, report["output_dtypes"], strict=True):
        assert (out / name).stat().st_size == int(np.prod(shape)) * np.dtype(dtype).itemsize


@pytest.mark.parametrize("name,target", CORPUS_CI)
def test_corpus_model_on_qemu(build_cli, name: str, target: str) -> None:
    _corpus_case(build_cli, name, target)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7"])
@pytest.mark.parametrize("name", CORPUS_ALL)
def test_whole_corpus_on_qemu(build_cli, name: str, target: str) -> None:
    _corpus_case(build_cli, name, target)


def test_pytorch_zoo_model_on_qemu(build_cli) -> None:
    code, report, _ = build_cli("--target", "cortex-m7", "--model", "demo-cnn", "--run")
    _check(code, report)
    assert report["model_kind"] == "zoo"


def test_instruction_count_is_deterministic(build_cli) -> None:
    args = ("--target", "cortex-m7", "--model", str(FIXTURES / "tiny_cnn.tflite"), "--run", "--seed", "3")
    first = build_cli(*args, out="a")[1]["qemu"]["instructions"]
    second = build_cli(*args, out="b")[1]["qemu"]["instructions"]
    assert first == second


def test_user_input_file(build_cli, tmp_path) -> None:
    data = np.random.default_rng(9).integers(-128, 128, 16 * 16 * 3, dtype=np.int8).tobytes()
    (tmp_path / "in.bin").write_bytes(data)
    code, report, _ = build_cli("--target", "cortex-m7", "--model", str(FIXTURES / "tiny_cnn.tflite"),
                                "--run", "--input", str(tmp_path / "in.bin"))
    _check(code, report)


def test_float_edges_on_qemu(build_cli, tmp_path) -> None:
    """A converter-written model with float32 input and output around an int8 depthwise convolution, on Cortex-M4
    with a float32 --input file: output.bin holds the float32 output, bytes equal to TF Lite Micro's."""
    from mcunet_tvm.reference.tflm import run_tflm_outputs

    path = FIXTURES / "ops" / "float_edges_dwconv.tflite"
    x = np.random.default_rng(4).uniform(-1.2, 1.2, (1, 6, 7, 3)).astype("<f4")
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    code, report, out = build_cli("--target", "cortex-m4", "--model", str(path), "--run",
                                  "--input", str(tmp_path / "in.bin"))
    _check(code, report)
    (expected,) = run_tflm_outputs(path, [x])
    assert expected.dtype == np.float32 and (out / "output.bin").read_bytes() == expected.tobytes()
    assert (out / "output.bin").stat().st_size == 4 * int(np.prod(report["output_shape"]))


class PadPoolNet(torch.nn.Module):
    """Exercises pad, biased conv + BN, max/avg pool, mean, linear and softmax from PyTorch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3)
        self.bn = torch.nn.BatchNorm2d(6)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, (1, 2, 0, 1))
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.nn.functional.avg_pool2d(torch.nn.functional.max_pool2d(x, 2), 2)
        return torch.softmax(self.fc(x.mean((2, 3))), -1)


def test_pt2_program_on_qemu(build_cli, tmp_path) -> None:
    model = randomize(PadPoolNet())
    program = torch.export.export(model, (torch.zeros(1, 3, 15, 14),))
    torch.export.save(program, str(tmp_path / "padpool.pt2"))
    code, report, _ = build_cli("--target", "cortex-m7", "--model", str(tmp_path / "padpool.pt2"), "--run")
    _check(code, report)
    assert report["input_shape"] == [1, 15, 14, 3]


def test_netconfig_json_on_qemu(build_cli, tmp_path) -> None:
    config = dict(CONFIGS["demo-cnn"], resolution=32)
    (tmp_path / "net.json").write_text(json.dumps(config))
    code, report, _ = build_cli("--target", "cortex-m7", "--model", str(tmp_path / "net.json"), "--run")
    _check(code, report)
    assert report["input_shape"] == [1, 32, 32, 3]


def test_memory_report(build_cli) -> None:
    code, report, out = build_cli("--target", "cortex-m7", "--model", str(FIXTURES / "tiny_cnn.tflite"),
                                  "--sram-budget", "64KB")
    assert code == 0
    mem = report["memory"]
    assert len(mem["steps"]) == 9
    peak = max(s["live_bytes"] for s in mem["steps"])
    assert peak == report["arena_lower_bound_bytes"] <= report["arena_bytes"]
    for step in mem["steps"]:
        assert step["output"] in {t["tensor"] for t in step["live"]} or step["op"] == "reshape"
        for t in step["live"]:
            assert 0 <= t["range"][0] < t["range"][1] <= report["arena_bytes"]
    assert (out / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
