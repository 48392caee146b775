"""Record how TF Lite Micro and the compiler handle each file of the conformance corpus.

Run from the repository root in the project's environment, after scripts/make_tflite_corpus.py:

    PYTHONPATH=. .venv/bin/python scripts/check_tflite_corpus.py [NAME ...]

For every file listed in tests/fixtures/corpus/MANIFEST.json (or only the NAMEs given, e.g. resnet8):
  - runs one inference with TF Lite Micro on a seeded random input (``run_tflm`` for one int8 input,
    TFLM's interpreter directly for several inputs or int16) and records ``tflm_runs``, ``tflm_error``
    and ``tflm_arena_bytes``;
  - compiles and runs it with ``python -m mcunet_tvm.build --target host --run`` and records the outcome
    in one line as ``compiler_status_at_creation`` ("ok, bit-exact ..." or the error line).
Each check runs in its own process, so a crash in native code is recorded instead of ending the run.
The manifest is updated in place; the .tflite files are not touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
MANIFEST = CORPUS / "MANIFEST.json"
TIMEOUT_S = 1800
_RANGES = {"int8": (-128, 127), "int16": (-32768, 32767), "uint8": (0, 255), "int32": (-1000, 1000)}


def _random_input(spec: dict, seed: int) -> np.ndarray:
    lo, hi = _RANGES[spec["dtype"]]
    return np.random.default_rng(seed).integers(lo, hi + 1, spec["shape"]).astype(spec["dtype"])


def tflm_one(path: Path) -> dict:
    """Invoke TFLM once on ``path`` (this process); the output shapes and the arena TFLM needs."""
    from tflite_micro import runtime

    from mcunet_tvm.reference.tflm import _ARENA_SIZE, run_tflm, tflm_arena_bytes

    record = next(m for m in json.loads(MANIFEST.read_text())["models"] if m["file"] == path.name)
    inputs = [_random_input(spec, seed) for seed, spec in enumerate(record["inputs"])]
    if len(inputs) == 1 and inputs[0].dtype == np.int8:
        result = run_tflm(path, inputs[0])
        return {"outputs": [list(result.output.shape)], "arena_bytes": result.arena_bytes}
    data = path.read_bytes()
    interp = runtime.Interpreter.from_bytes(data, arena_size=_ARENA_SIZE)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    outputs = [list(np.asarray(interp.get_output(i)).shape) for i in range(len(record["outputs"]))]
    return {"outputs": outputs, "arena_bytes": tflm_arena_bytes(data)[0]}


def _error_line(stderr: str, returncode: int) -> str:
    """One line out of a failed child's stderr: the error and where, else the exception, else the signal."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    if errors:
        i = errors[0]
        where = [ln.removeprefix("where:").strip() for ln in lines[i + 1 : i + 2] if ln.startswith("where:")]
        return lines[i] + (f" (where: {where[0]})" if where else "")
    if returncode < 0:
        return f"crashed with signal {-returncode}" + (f" after: {lines[-1]}" if lines else "")
    exceptions = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", ln)]
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', stderr)
    if not exceptions:
        return f"exit {returncode}" + (f": {lines[-1]}" if lines else "")
    where = ""
    if frames:
        file, line, func = frames[-1]
        file = file.removeprefix(f"{ROOT}/")
        where = f" at {file}:{line} ({func})"
    return f"uncaught {exceptions[-1]}{where}"


def _child(args: list[str]) -> subprocess.CompletedProcess:
    """``python args...`` in the checkout, with the checkout on the import path; never raises on failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=TIMEOUT_S, check=False)


def check_tflm(path: Path) -> dict:
    """``tflm_runs``, ``tflm_error`` and ``tflm_arena_bytes`` of one file, from a child process."""
    proc = _child([__file__, "--tflm-one", str(path)])
    if proc.returncode == 0:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"tflm_runs": True, "tflm_error": None, "tflm_arena_bytes": info["arena_bytes"]}
    return {"tflm_runs": False, "tflm_error": _error_line(proc.stderr, proc.returncode), "tflm_arena_bytes": None}


def check_compiler(path: Path) -> str:
    """The one-line outcome of ``python -m mcunet_tvm.build --target host --run`` on one file."""
    with tempfile.TemporaryDirectory(prefix=f"corpus-{path.stem}-") as out:
        try:
            proc = _child(["-m", "mcunet_tvm.build", "--target", "host", "--model", str(path), "--out", out,
                           "--run", "--quiet"])
        except subprocess.TimeoutExpired:
            return f"timeout after {TIMEOUT_S} s"
        report = Path(out) / "report.json"
        if proc.returncode in (0, 1) and report.exists():
            rep = json.loads(report.read_text())
            run = rep["host_run"]
            checks = [("host reference", run["bit_exact"]), ("TF Lite Micro", run.get("bit_exact_tflm"))]
            same = " and ".join(name for name, ok in checks if ok)
            differ = " and ".join(name for name, ok in checks if ok is False)
            text = f"ok, bit-exact vs {same}" if not differ else f"runs, NOT bit-exact vs {differ}"
            if differ and same:
                text += f" (bit-exact vs {same})"
            return f"{text}; arena {rep['arena_bytes']} B, TFLM arena {rep.get('tflm_arena_bytes')} B"
        return _error_line(proc.stderr, proc.returncode)


def dump_manifest(manifest: dict) -> str:
    """MANIFEST.json text: indented, with lists of numbers (shapes) on one line, as make_tflite_corpus.py writes it."""
    text = json.dumps(manifest, indent=2)
    return re.sub(r"\[\s*([-0-9.e,\s]*?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--tflm-one"]:
        print(json.dumps(tflm_one(Path(argv[1]))))
        return 0
    manifest = json.loads(MANIFEST.read_text())
    for record in manifest["models"]:
        name = record["file"].removesuffix(".tflite")
        if argv and name not in argv:
            continue
        path = (CORPUS / record["file"]).relative_to(ROOT)  # children run in ROOT; errors name the repo path
        record.update(check_tflm(path))
        record["compiler_status_at_creation"] = check_compiler(path)
        tflm = "TFLM ok" if record["tflm_runs"] else f"TFLM FAILS: {record['tflm_error']}"
        print(f"{record['file']}: {tflm}; compiler: {record['compiler_status_at_creation']}", flush=True)
        MANIFEST.write_text(dump_manifest(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
