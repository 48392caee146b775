"""Differential fuzzing of the TFLite frontend and compiler on many seeded random graphs (slow).

Run from the repository root in the project's environment; it calls TensorFlow's environment only to
generate the models (scripts/make_tflite_fuzz.py) into a temporary folder:

    PYTHONPATH=. .venv/bin/python scripts/fuzz_tflite.py --seeds 0:300 [--host 30] [--qemu cortex-m4,cortex-m7]

For every generated model: it imports and the numpy reference on the imported program equals TF Lite Micro
on the original file byte for byte on two seeded inputs, or it is refused with an UnsupportedModelError naming
the file and the operator (tests/fuzzcases.py, as tests/test_tflite_fuzz.py does on the fixed sample). The
first ``--host`` imported one-input, one-output models are also compiled to C, run on the host and compared
with TFLM; with ``--qemu``, the first ``--qemu-count`` imported models are built and run on each core with
``python -m mcunet_tvm.build ... --run`` and report.json must say bit-exact with the reference and TFLM.
Prints a summary (imported, refused by reason, mismatches, tracebacks) and exits 1 on any mismatch or
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzzcases import Outcome, check_model, single_io  # noqa: E402

TF_PYTHON = os.environ.get("TF_PYTHON", "/work/tfvenv/bin/python")


def generate(seeds: str, out: Path, tf_python: str) -> dict:
    """Run the generator in TensorFlow's environment; its MANIFEST.json."""
    subprocess.run([tf_python, str(ROOT / "scripts" / "make_tflite_fuzz.py"), "--seeds", seeds, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "MANIFEST.json").read_text())


def _where(exc: BaseException) -> str:
    """``Type: message at file:line (function)`` of the innermost frame of ours."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(ROOT) in f.filename] or \
        traceback.extract_tb(exc.__traceback__)
    f = frames[-1]
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    file = f.filename.removeprefix(f"{ROOT}/")
    return f"{type(exc).__name__}: {text} at {file}:{f.lineno} ({f.name})"


def check_all(folder: Path, names: list[str]) -> list[Outcome]:
    """The differential check of every model; a failing assertion or exception becomes a ``traceback``."""
    outcomes = []
    for name in names:
        path = folder / name
        try:
            outcome = check_model(path)
        except Exception as exc:  # every exception is a finding: record it and go on
            outcome = Outcome(path, "traceback", _where(exc))
        outcomes.append(outcome)
        if outcome.status in ("mismatch", "traceback"):
            print(f"{name}: {outcome.status.upper()} {outcome.reason}", flush=True)
    return outcomes


def run_host(outcomes: list[Outcome], count: int, work: Path) -> list[tuple[str, str]]:
    """Compile the first ``count`` imported one-input, one-output models for the host; (name, result)."""
    from mcunet_tvm.pipeline import compile_relax
    from mcunet_tvm.reference.tflm import run_tflm_outputs

    from opcases import run_compiled

    results = []
    for outcome in [o for o in outcomes if o.status == "imported" and single_io(o)][:count]:
        name = outcome.path.stem
        try:
            folder = work / "host" / name
            folder.mkdir(parents=True)
            outputs = run_compiled(compile_relax(outcome.mod, mcpu=None), "host", folder,
                                   [xs[0] for xs in outcome.inputs])
            same = [out == run_tflm_outputs(outcome.path, xs)[0].tobytes()
                    for xs, out in zip(outcome.inputs, outputs, strict=True)]
            result = "ok" if all(same) else f"MISMATCH on input seeds {[i for i, s in enumerate(same) if not s]}"
        except Exception as exc:  # every exception is a finding
            result = f"TRACEBACK {_where(exc)}"
        results.append((name, result))
        if result != "ok":
            print(f"{name} (host C): {result}", flush=True)
    return results


def run_qemu(outcomes: list[Outcome], targets: list[str], count: int, work: Path) -> list[tuple[str, str]]:
    """``mcunet_tvm.build --run`` of the first ``count`` imported models on each target; (name@target, result)."""
    results = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for outcome in [o for o in outcomes if o.status == "imported"][:count]:
        for target in targets:
            out = work / "qemu" / f"{outcome.path.stem}-{target}"
            proc = subprocess.run([sys.executable, "-m", "mcunet_tvm.build", "--target", target, "--model",
                                   str(outcome.path), "--out", str(out), "--run", "--quiet"],
                                  capture_output=True, text=True, env=env, cwd=ROOT, check=False)
            report = out / "report.json"
            if proc.returncode not in (0, 1) or not report.exists():
                lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or ["(no output)"]
                result = f"TRACEBACK exit {proc.returncode}: {lines[-1][:200]}"
            else:
                run = json.loads(report.read_text())["qemu"]
                exact = run["bit_exact"] and run["bit_exact_layer_based"] and run.get("bit_exact_tflm") is True
                result = "ok" if exact else f"MISMATCH {run}"
            results.append((f"{outcome.path.stem}@{target}", result))
            print(f"{outcome.path.stem} on {target}: {result}", flush=True)
    return results


def summary(manifest: dict, outcomes: list[Outcome], host: list, qemu: list) -> tuple[str, int]:
    """The summary table and the number of findings (mismatches and tracebacks)."""
    status = Counter(o.status for o in outcomes)
    reasons = Counter(o.reason for o in outcomes if o.status == "refused")
    lines = [f"seeds {manifest['seeds']}: {len(manifest['models'])} models, "
             f"{len(manifest['skipped'])} seeds skipped by the generator", "",
             f"| {'outcome':40s} | count |", f"| {'-' * 40} | ----- |"]
    for key in ("imported", "refused", "mismatch", "traceback"):
        lines.append(f"| {key:40s} | {status[key]:5d} |")
    for reason, n in reasons.most_common():
        lines.append(f"| {'  refused: ' + reason:40s} | {n:5d} |")
    bad = [r for r in host + qemu if r[1] != "ok"]
    lines.append(f"| {'host C equal to TFLM':40s} | {sum(r[1] == 'ok' for r in host):3d}/{len(host):<1d} |")
    if qemu:
        lines.append(f"| {'QEMU bit-exact (reference and TFLM)':40s} | {sum(r[1] == 'ok' for r in qemu):3d}/"
                     f"{len(qemu):<1d} |")
    findings = [f"{o.path.name}: {o.status} {o.reason}" for o in outcomes if o.status in ("mismatch", "traceback")]
    findings += [f"{name}: {result}" for name, result in bad]
    if findings:
        lines += ["", "findings:", *(f"  {f}" for f in findings)]
    return "\n".join(lines), len(findings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:200", help="A:B, the seeds A..B-1, or seeds, comma-separated")
    parser.add_argument("--host", type=int, default=20, help="imported models compiled for the host (default 20)")
    parser.add_argument("--qemu", default="", help="cores to build and run on, e.g. cortex-m4,cortex-m7")
    parser.add_argument("--qemu-count", type=int, default=4, help="imported models run on each core (default 4)")
    parser.add_argument("--tf-python", default=TF_PYTHON, help="the Python of TensorFlow's environment")
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this folder instead of a temporary one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-tflite-") as tmp:
        folder = args.keep or Path(tmp) / "models"
        manifest = generate(args.seeds, folder, args.tf_python)
        outcomes = check_all(folder, sorted(manifest["models"]))
        host = run_host(outcomes, args.host, Path(tmp))
        targets = [t for t in args.qemu.split(",") if t]
        qemu = run_qemu(outcomes, targets, args.qemu_count, Path(tmp)) if targets else []
        text, findings = summary(manifest, outcomes, host, qemu)
    print(text)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
