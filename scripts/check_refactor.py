"""Behaviour-preserving refactors: the generated C of two trees, case by case.

    .venv/bin/python scripts/check_refactor.py --base REV            # compare HEAD's tree with REV
    .venv/bin/python scripts/check_refactor.py --base REV --run      # ... and run differing cases on QEMU
    .venv/bin/python scripts/check_refactor.py --base REV --only demo-cnn

For each case (a model of the zoo or of the test fixtures, a target, and build options) both trees
compile the model through the public API (``mcunet_tvm.frontend.load_model``,
``mcunet_tvm.pipeline.compile_relax``) and every generated file is hashed, together with the arena,
its lower bound and the patch split. The NAS light planner's predictions on seeded random
architectures are compared too. A case passes when every file is identical; with ``--run`` a case
whose C differs passes when both builds, run on QEMU with the same input, give the same output,
the same instruction count and the same arena.

Each tree runs in its own interpreter (``PYTHONPATH`` = the tree; ``REV`` is checked out with
``git worktree`` under ``build/check_refactor/``), so the comparison never mixes code of the two.
Results of a revision are cached by commit hash. Exit 0 when every case passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "check_refactor"
FIXTURES = ("tests/fixtures/tiny_cnn.tflite", "tests/fixtures/tiny_valid_cnn.tflite")
ZOO = ("demo-cnn", "mbv2-w0.35-r96", "mbv2-w0.35-r144", "mbv2-w0.5-r128", "mbv2-w1.0-r224",
       "mcunet-vww-like", "mcunet-in-like")
SMALL = ("demo-cnn", "mbv2-w0.35-r96", "mcunet-vww-like", *FIXTURES)
PATCHED = ("demo-cnn", "mbv2-w0.35-r144", "mcunet-vww-like", "mcunet-in-like")
#: the NAS light planner: this many seeded random architectures per (width, resolution)
NAS_SAMPLES = 6
NAS_SPACES = ((0.3, 96), (0.5, 128), (0.75, 160))


def cases() -> list[dict]:
    """Every (model, target, options) pair that is compared."""
    out = []
    corpus = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "fixtures" / "corpus").glob("*.tflite"))
    for model in (*ZOO, *FIXTURES, *corpus):
        out.append({"model": model, "mcpu": "cortex-m7"})
        out.append({"model": model, "mcpu": None})
        out.append({"model": model, "mcpu": "cortex-m7", "optimize": "size"})
    for model in (*SMALL, *corpus):
        out.append({"model": model, "mcpu": "cortex-m4"})
        out.append({"model": model, "mcpu": "cortex-m55"})
    for model in PATCHED:
        out.append({"model": model, "mcpu": "cortex-m7", "patch": "auto"})
        out.append({"model": model, "mcpu": "cortex-m7", "patch": "auto", "stream_input": True})
    out.append({"model": "mbv2-w0.35-r144", "mcpu": "cortex-m7", "patch": "auto", "sram_budget": 120_000})
    out.append({"model": "demo-cnn", "mcpu": "cortex-m7", "guard_bytes": 16})
    out.append({"model": "demo-cnn", "mcpu": "cortex-m7", "simd": False})
    out.append({"model": "demo-cnn", "mcpu": "cortex-m7", "inplace": False, "reorder": False})
    return out


def _folder(case: dict) -> str:
    """The case's build folder name (no commas: older trees pass the map path to the linker with -Wl,)."""
    return case_id(case).replace(",", "__")


def case_id(case: dict) -> str:
    model = case["model"]
    parts = [Path(model).stem if model.endswith(".tflite") else model, case["mcpu"] or "host"]
    parts += [f"{k}={v}" for k, v in sorted(case.items()) if k not in ("model", "mcpu")]
    return ",".join(parts)


# ---- worker: runs inside the tree under test -------------------------------------------------
def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _module(model):
    """The loaded model's Relax module (``LoadedModel.module``; ``qdq_module`` in older trees)."""
    return model.module if hasattr(model, "module") else model.qdq_module


def _compile_case(case: dict, models: dict, save: Path | None) -> dict:
    from mcunet_tvm.frontend import load_model
    from mcunet_tvm.pipeline import compile_relax

    spec = case["model"]
    path = ROOT / spec
    if spec not in models:
        models[spec] = load_model(str(path) if path.exists() else spec)
    options = {k: v for k, v in case.items() if k not in ("model", "mcpu")}
    t0 = time.monotonic()
    compiled = compile_relax(_module(models[spec]), case["mcpu"], **options)
    result = {
        "seconds": round(time.monotonic() - t0, 1),
        "files": {name: _sha(text) for name, text in sorted(compiled.files.items())},
        "arena_bytes": compiled.plan.arena_bytes,
        "lower_bound_bytes": compiled.plan.lower_bound_bytes,
        "patch": None if compiled.patch is None else [compiled.patch.split_step, list(compiled.patch.grid)],
        "input_bytes": sum(compiled.program.nbytes(n) for n in compiled.program.inputs),  # packed, in order
        "output_bytes": sum(compiled.program.nbytes(n) for n in compiled.program.outputs),
    }
    if save is not None:
        folder = save / _folder(case)
        compiled.write(folder)
    return result


def _run_case(case: dict, models: dict, work: Path) -> dict:
    """Build the case's C into an ELF and run it on QEMU (host: natively) with a seeded input."""
    import numpy as np

    from mcunet_tvm import toolchain
    from mcunet_tvm.targets import get_target

    names = {None: "host", "cortex-m4": "cortex-m4", "cortex-m7": "cortex-m7", "cortex-m55": "cortex-m55"}
    target = get_target(names[case["mcpu"]])
    folder = work / _folder(case)
    info = _compile_case(case, models, work)
    sources = [folder / n for n in ("mcunet_kernels.c", "mcunet_model.c")]
    objects = toolchain.compile_objects(target, sources, [folder], folder / "obj")
    exe = toolchain.link(target, objects, folder / "model.elf")
    x = np.random.default_rng(0).integers(-128, 128, info["input_bytes"], dtype=np.int8).tobytes()
    result = toolchain.run(target, exe, x, info["output_bytes"])
    return {**info, "instructions": result.instructions, "output": hashlib.sha256(result.output).hexdigest()[:16]}


def _nas_predictions() -> dict:
    import random

    from mcunet_tvm.nas.light import predict
    from mcunet_tvm.nas.space import Space, to_netconfig

    out = {}
    for width, res in NAS_SPACES:
        rng = random.Random(f"{width}-{res}")
        for i in range(NAS_SAMPLES):
            config = to_netconfig(Space(width, res).sample(rng), classes=10)
            for dsp, mve in ((True, False), (False, False), (True, True)):
                p = predict(config, res, dsp=dsp, mve=mve, fast=i % 2 == 0)
                out[f"nas,{width},{res},{i},dsp={dsp},mve={mve}"] = [p.arena_bytes, p.flash_bytes, p.macs, p.params]
    return out


def worker(selected: list[dict], out: Path, run: bool, save: Path | None) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    results: dict = {}
    models: dict = {}
    for case in selected:
        key = case_id(case)
        try:
            results[key] = _run_case(case, models, save) if run else _compile_case(case, models, save)
        except Exception as exc:  # a case that fails in one tree must fail the same way in the other
            results[key] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
        print(f"  {key}: {results[key].get('seconds', '-')} s", file=sys.stderr, flush=True)
    if not run and save is None:
        results["nas"] = _nas_predictions()
    out.write_text(json.dumps(results, indent=1, sort_keys=True))


# ---- driver ----------------------------------------------------------------------------------
def _tree_of(rev: str) -> tuple[Path, str]:
    sha = subprocess.check_output(["git", "rev-parse", rev], cwd=ROOT, text=True).strip()
    tree = WORK / f"tree-{sha[:12]}"
    if not tree.exists():
        subprocess.check_call(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
        if (tree / "passes").is_dir() and not (tree / "mcunet_tvm" / "passes").exists():
            (tree / "mcunet_tvm" / "passes").symlink_to("../passes")  # before passes/ moved into the package
    return tree, sha


def _in_tree(tree: Path, selected: list[dict], out: Path, run: bool, save: Path | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--json", str(out),
           "--cases", json.dumps(selected)]
    if run:
        cmd.append("--run")
    if save is not None:
        cmd += ["--save", str(save)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(cmd, cwd=tree, env=env, check=True)
    return json.loads(out.read_text())


def _results(tree: Path, label: str, selected: list[dict], cache: bool) -> dict:
    """The tree's results for ``selected``; with ``cache``, only cases not computed before are run."""
    out = WORK / f"{label}.json"
    cached = json.loads(out.read_text()) if cache and out.exists() else {}
    missing = [c for c in selected if case_id(c) not in cached]
    if missing or "nas" not in cached:
        fresh = _in_tree(tree, missing, WORK / f"{label}-new.json", run=False, save=None)
        cached.update(fresh)
        out.write_text(json.dumps(cached, indent=1, sort_keys=True))
    return cached


def _compare(base: dict, head: dict, keys: list[str]) -> list[str]:
    differing = []
    for key in keys:
        a, b = base.get(key), head.get(key)
        if a is None or b is None:
            differing.append(key)
            continue
        same = {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
        if not same:
            differing.append(key)
    return differing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="HEAD~1", help="the revision to compare with (default HEAD~1)")
    p.add_argument("--head", default=None, help="a revision instead of the working tree")
    p.add_argument("--only", nargs="*", help="cases whose id contains one of these strings")
    p.add_argument("--skip", nargs="*", default=[], help="leave out cases whose id contains one of these")
    p.add_argument("--run", action="store_true", help="run cases whose C differs on QEMU")
    p.add_argument("--record", action="store_true", help="only compute (and cache) the base's results")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cases", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.cases), args.json, args.run, args.save)
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    selected = [c for c in cases() if (not args.only or any(s in case_id(c) for s in args.only))
                and not any(s in case_id(c) for s in args.skip)]
    base_tree, base_sha = _tree_of(args.base)
    head_tree, head_label = (ROOT, "worktree") if args.head is None else _tree_of(args.head)
    t0 = time.monotonic()
    print(f"base {base_sha[:12]}: {len(selected)} cases", flush=True)
    base = _results(base_tree, f"base-{base_sha[:12]}", selected, cache=True)
    if args.record:
        return 0
    print(f"head {head_label[:12]}", flush=True)
    head = _results(head_tree, f"head-{head_label[:12]}", selected, cache=args.head is not None)
    keys = [case_id(c) for c in selected] + (["nas"] if "nas" in base and "nas" in head else [])
    differing = _compare(base, head, keys)
    failed = []
    for key in differing:
        if key == "nas":
            bad = {k: (base["nas"].get(k), head["nas"].get(k)) for k in base["nas"]
                   if base["nas"].get(k) != head["nas"].get(k)}
            print(f"DIFF nas light planner: {len(bad)} predictions differ, e.g. {next(iter(bad.items()))}")
            failed.append(key)
            continue
        a, b = base.get(key, {}), head.get(key, {})
        files = sorted(n for n in set(a.get("files", {})) | set(b.get("files", {}))
                       if a.get("files", {}).get(n) != b.get("files", {}).get(n))
        others = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if k not in ("files", "seconds")
                  and a.get(k) != b.get(k)}
        print(f"DIFF {key}: files {files} {others or ''}")
        failed.append(key)
    if args.run and failed:
        rerun = [c for c in selected if case_id(c) in failed]
        print(f"running {len(rerun)} differing cases on QEMU", flush=True)
        ran_base = _in_tree(base_tree, rerun, WORK / "run-base.json", True, WORK / "run-base")
        ran_head = _in_tree(head_tree, rerun, WORK / "run-head.json", True, WORK / "run-head")
        for c in rerun:
            key = case_id(c)
            a, b = ran_base[key], ran_head[key]
            keep = ("arena_bytes", "instructions", "output", "error")
            same = "error" not in a and "error" not in b and {k: a.get(k) for k in keep} == {k: b.get(k) for k in keep}
            print(f"{'SAME' if same else 'DIFF'} on QEMU {key}: instructions {a.get('instructions')} -> "
                  f"{b.get('instructions')}, arena {a.get('arena_bytes')} -> {b.get('arena_bytes')}, "
                  f"output {'equal' if a.get('output') == b.get('output') else 'DIFFERENT'}"
                  + "".join(f"\n  {name} error: {r['error']}" for name, r in (("base", a), ("head", b))
                            if "error" in r))
            if same:
                failed.remove(key)
    n = len(keys)
    print(f"{n - len(failed)}/{n} cases identical{' or equal on QEMU' if args.run else ''} "
          f"({time.monotonic() - t0:.0f} s)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
