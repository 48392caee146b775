"""The output folder is a library: named symbols (two models in one program), the header's provenance and
quantisation, an application-provided arena, and the CMake target."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from mcunet_tvm.aot.emit_c import ModelSource
from mcunet_tvm.frontend import load_model
from mcunet_tvm.frontend.tflite.reader import read_model
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.reference.graph_ref import run_reference

from conftest import FIXTURES

MODELS = {"tiny": FIXTURES / "tiny_cnn.tflite", "speech": FIXTURES / "corpus" / "micro_speech.tflite"}
WARN = ["-Wall", "-Wextra", "-Werror"]


def _build(name: str, mcpu: str | None, folder):
    path = MODELS[name]
    model = load_model(str(path))
    source = ModelSource(path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    compiled = compile_relax(model.module, mcpu=mcpu, name=name, source=source)
    compiled.write(folder)
    return compiled


def _input(compiled, seed: int) -> np.ndarray:
    shape = compiled.program.shapes[compiled.program.input]
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)


def _main_c(inputs: dict[str, np.ndarray], external: str = "") -> str:
    """A program running every model on its input and printing the outputs' bytes as hex, one line each."""
    lines = ["#include <stdio.h>", *(f'#include "{n}_model.h"' for n in inputs)]
    if external:
        lines.append(f"static int8_t app_arena[{external.upper()}_ARENA_BYTES] __attribute__((aligned(16)));")
    for n, x in inputs.items():
        data = ", ".join(str(int(v)) for v in x.reshape(-1))
        lines += [f"static const int8_t {n}_in[{n.upper()}_INPUT_BYTES] = {{{data}}};",
                  f"static int8_t {n}_out[{n.upper()}_OUTPUT_BYTES];"]
    lines.append("int main(void) {")
    if external:
        lines.append(f"  {external}_set_arena(app_arena);")
    for n in inputs:
        lines += [f"  if ({n}_run({n}_in, {n}_out) != 0) return 1;",
                  f"  for (int i = 0; i < {n.upper()}_OUTPUT_BYTES; ++i)",
                  f'    printf("%02x", (unsigned)(uint8_t){n}_out[i]);',
                  '  printf("\\n");']
    return "\n".join([*lines, "  return 0;", "}", ""])


def test_two_named_models_link_into_one_host_program(tmp_path) -> None:
    compiled = {n: _build(n, None, tmp_path / n) for n in MODELS}
    inputs = {n: _input(c, k) for k, (n, c) in enumerate(compiled.items())}
    (tmp_path / "main.c").write_text(_main_c(inputs))
    sources = [tmp_path / "main.c", *(tmp_path / n / f"{n}_{part}.c" for n in MODELS for part in ("model", "kernels"))]
    exe = tmp_path / "app"
    subprocess.run(["gcc", "-O2", *WARN, *(f"-I{tmp_path / n}" for n in MODELS), *map(str, sources), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    for line, (n, c) in zip(lines, compiled.items(), strict=True):
        assert bytes.fromhex(line) == run_reference(c.program, inputs[n]).tobytes(), n
    for n, c in compiled.items():  # every exported symbol and macro carries the model's name
        for file in (f"{n}_model.h", f"{n}_kernels.h"):
            text = c.files[file]
            assert not re.search(r"\bmcunet_\w+\(|\bMCUNET_\w+", re.sub(r"/\*.*?\*/", "", text, flags=re.S)), file


def test_two_named_models_link_for_cortex_m(tmp_path) -> None:
    """Cortex-M4 objects of both models (SIMD kernels) with -Werror, linked into one relocatable object:
    no symbol defined twice."""
    objects = []
    for n in MODELS:
        _build(n, "cortex-m4", tmp_path / n)
        for part in ("model", "kernels"):
            obj = tmp_path / f"{n}_{part}.o"
            subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", *WARN, f"-I{tmp_path / n}", "-c",
                            str(tmp_path / n / f"{n}_{part}.c"), "-o", str(obj)], check=True, capture_output=True)
            objects.append(str(obj))
    proc = subprocess.run(["arm-none-eabi-gcc", "-nostdlib", "-Wl,-r", *objects, "-o", str(tmp_path / "both.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_header_names_quantisation_shapes_and_provenance(tmp_path) -> None:
    c = _build("speech", None, tmp_path / "speech")
    header = c.files["speech_model.h"]
    model = read_model(MODELS["speech"])
    tin, tout = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    macros = dict(re.findall(r"#define (\w+) (.+?)(?:  /\*.*)?$", header, re.M))
    assert float(macros["SPEECH_INPUT_SCALE"].rstrip("f")) == pytest.approx(tin.quantization.scales[0], rel=1e-7)
    assert int(macros["SPEECH_INPUT_ZERO_POINT"]) == tin.quantization.zero_points[0]
    assert np.float32(macros["SPEECH_OUTPUT_SCALE"].rstrip("f")) == np.float32(tout.quantization.scales[0])
    assert int(macros["SPEECH_OUTPUT_ZERO_POINT"]) == tout.quantization.zero_points[0]
    assert macros["SPEECH_INPUT_SHAPE"] == "{" + ", ".join(map(str, tin.shape)) + "}"
    assert macros["SPEECH_MODEL_SHA256"].strip('"') == hashlib.sha256(MODELS["speech"].read_bytes()).hexdigest()
    assert "SPEECH_COMPILER_VERSION" in macros and "CMakeLists.txt" in c.files and "README.md" in c.files


def test_application_provided_arena(tmp_path) -> None:
    """Compiled with NAME_EXTERNAL_ARENA, the model runs in the buffer the application passes."""
    c = _build("tiny", None, tmp_path / "tiny")
    x = _input(c, 3)
    (tmp_path / "main.c").write_text(_main_c({"tiny": x}, external="tiny"))
    exe = tmp_path / "app"
    subprocess.run(["gcc", "-O2", *WARN, "-DTINY_EXTERNAL_ARENA", f"-I{tmp_path / 'tiny'}", str(tmp_path / "main.c"),
                    str(tmp_path / "tiny" / "tiny_model.c"), str(tmp_path / "tiny" / "tiny_kernels.c"), "-o", str(exe)],
                   check=True, capture_output=True)
    model_c = (tmp_path / "tiny" / "tiny_model.c").read_text()
    assert "static int8_t *tiny_arena;" in model_c
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()[0]
    assert bytes.fromhex(out) == run_reference(c.program, x).tobytes()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_library_target_builds(tmp_path) -> None:
    _build("tiny", None, tmp_path / "tiny")
    for cmd in (["cmake", "-S", str(tmp_path / "tiny"), "-B", str(tmp_path / "b")],
                ["cmake", "--build", str(tmp_path / "b")]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert list((tmp_path / "b").glob("libtiny.a"))


def test_named_build_runs_on_qemu(build_cli) -> None:
    """The QEMU harness (which uses the default names) runs a model built with --name through the generated
    mcunet_harness.h; the stream-input build asks the harness for its rows under the model's name."""
    code, report, out = build_cli("--target", "cortex-m4", "--model", str(MODELS["tiny"]), "--run", "--name", "kws",
                                  "--quiet")
    assert code == 0 and report["qemu"]["bit_exact"] and report["qemu"]["bit_exact_tflm"]
    assert (out / "kws_model.c").exists() and not (out / "mcunet_model.c").exists()
