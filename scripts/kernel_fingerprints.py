"""Fingerprints of the generated kernels: an oracle for refactoring the kernel generators.

    PYTHONPATH=. .venv/bin/python scripts/kernel_fingerprints.py --out /tmp/fingerprints.json
    PYTHONPATH=. .venv/bin/python scripts/kernel_fingerprints.py --compare /tmp/fingerprints-base.json

Generates a large deterministic set of kernels (every op of ``tests/opcases.py``
and ``tests/patchcases.py``, their patch-inference windows, seeded random
Conv2D / Dense / depthwise geometries with every kernel choice that changes
their code: fast requantisation, in place, ring width, small images unrolled)
in every form (``build_kernel`` with the plain choice, every SIMD schedule of
``config_space`` and the default one, Helium, the shape-generic and compact
forms of ``shared_choice``) and records ``tvm_ffi.structural_hash`` of each
kernel's code (its parameters and body: the attributes that tag it are not
code), with the SHA-256 of its TVMScript text (stricter: variable names too).
The compile-time packing (``KernelChoice.consts``, ``pair_weights``,
``pack_records``, ``add_rescale_table``, ...), scratch, overlaps and SIMD
predicates are hashed on seeded inputs. A refactoring that keeps the kernels
keeps every entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import tvm_ffi  # noqa: E402
from tvm import tirx  # noqa: E402

from mcunet_tvm.kernels import KernelChoice, build_kernel, shared_choice, simd  # noqa: E402
from mcunet_tvm.kernels.elementwise import add_rescale_table  # noqa: E402
from mcunet_tvm.kernels.helium import fold_input_zero_point  # noqa: E402
from mcunet_tvm.kernels.requant import pack_fast_requant  # noqa: E402
from mcunet_tvm.ops import Add, Conv2D, Dense, OpDesc  # noqa: E402

import opcases  # noqa: E402
from patchcases import patch_program, random_chain, random_grid  # noqa: E402


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    head = f"{a.dtype.str}{a.shape}".encode()
    return hashlib.sha256(head + a.tobytes()).hexdigest()[:24]


#: kernel fields an op descriptor carried before they moved to ``KernelChoice`` (stripped if present)
_CHOICE_FIELDS = ("fast_requant", "inplace", "wide_ring", "unroll_small_image")


def _func_entry(func) -> str:
    code = tirx.PrimFunc(func.params, func.body, func.ret_type)  # the code, not the tags
    script = hashlib.sha256(code.script().encode()).hexdigest()[:24]
    return f"{tvm_ffi.structural_hash(code)}:{script}"


def _bare(op: OpDesc) -> OpDesc:
    """``op`` without kernel fields (descriptors of older trees carried them)."""
    present = {f.name for f in dataclasses.fields(op)} & set(_CHOICE_FIELDS)
    return dataclasses.replace(op, **{n: getattr(KernelChoice(), n) for n in present})


class Collector:
    """``{case id: fingerprint}``, ids unique; counts the kernels."""

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self.kernels = 0

    def func(self, key: str, make) -> None:
        assert key not in self.entries, key
        try:
            func = make()
        except Exception as e:  # an op a generator refuses: the refusal is part of the behaviour
            self.entries[key] = f"error:{type(e).__name__}:{e}"
            return
        if func is None:
            self.entries[key] = "none"
            return
        self.kernels += 1
        self.entries[key] = _func_entry(func)

    def value(self, key: str, make) -> None:
        assert key not in self.entries, key
        try:
            v = make()
        except Exception as e:
            self.entries[key] = f"error:{type(e).__name__}:{e}"
            return
        if isinstance(v, np.ndarray):
            self.entries[key] = _array_digest(v)
        elif isinstance(v, list | tuple) and v and all(isinstance(p, tuple) and len(p) == 2 for p in v) and all(
                isinstance(p[1], np.ndarray) for p in v):
            self.entries[key] = json.dumps([(n, _array_digest(a)) for n, a in v])
        else:
            self.entries[key] = json.dumps(v, default=str)


# --- the ops -------------------------------------------------------------------------------------

def _opcases_ops() -> list[tuple[OpDesc, list]]:
    """The kinds of ``tests/opcases.py``, on a spread of seeded shapes."""
    rng = np.random.default_rng(20240601)
    cases = []
    for _ in range(6):
        h, w, c = int(rng.integers(3, 16)), int(rng.integers(3, 16)), int(rng.integers(1, 12))
        cases.append(opcases.add_case(rng, (1, h, w, c)))
        cases.append(opcases.pool_case(rng, h + 2, w + 2, c, int(rng.choice([2, 3])), int(rng.choice([1, 2])),
                               str(rng.choice(["avg", "max"])), pad=int(rng.integers(0, 2))))
        cases.append(opcases.mean_case(rng, h, w, c, keepdims=bool(rng.integers(0, 2))))
        cases.append(opcases.pad_case(rng, h, w, c, ((0, 0), (int(rng.integers(0, 3)), 1), (1, int(rng.integers(0, 3))),
                                             (0, 0))))
    return cases


def _random_convs(seed: int, n: int) -> list[tuple[OpDesc, list]]:
    """Seeded Conv2D / depthwise / Dense geometries: kernels 1-7, strides 1-2, same/valid, odd channels."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        kind = i % 7
        if kind == 6:
            cases.append(opcases.dense_case(rng, int(rng.integers(1, 90)), int(rng.integers(1, 24))))
            continue
        k = int(rng.choice([1, 3, 5, 7]))
        s = int(rng.choice([1, 2]))
        h, w = int(rng.integers(k, 18)), int(rng.integers(k, 18))
        pad = str(rng.choice(["same", "valid"]))
        if kind in (4, 5):  # depthwise
            k = int(rng.choice([3, 5, 7]))
            h, w = int(rng.integers(max(k - 2, 1), 24)), int(rng.integers(max(k - 2, 1), 24))
            c = int(rng.integers(1, 12))
            pad = "same" if h < k or w < k else pad
            cases.append(opcases.conv_case(rng, h, w, c, c, k, s, padding=pad, depthwise=True))
            continue
        cin, cout = int(rng.integers(1, 21)), int(rng.integers(1, 17))
        cases.append(opcases.conv_case(rng, h, w, cin, cout, k, s, padding=pad))
    return cases


def _dilated(seed: int, n: int) -> list[tuple[OpDesc, list]]:
    """Dilated convolutions (plain and depthwise: the tap kernel) and asymmetric paddings."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        k, d = int(rng.choice([3, 5])), int(rng.choice([1, 2]))
        s = int(rng.choice([1, 2]))
        h, w = int(rng.integers(d * (k - 1) + 1, 16)), int(rng.integers(d * (k - 1) + 1, 16))
        pads = tuple(int(v) for v in rng.integers(0, k, 4))
        dw = i % 2 == 0
        c = int(rng.integers(1, 9))
        oc = c if dw else int(rng.integers(1, 9))
        oh = (h + pads[0] + pads[2] - d * (k - 1) - 1) // s + 1
        ow = (w + pads[1] + pads[3] - d * (k - 1) - 1) // s + 1
        op = Conv2D((1, h, w, c), (1, oh, ow, oc), kernel=(k, k), strides=(s, s), padding=pads, dilation=(d, d),
                    depthwise=dw, in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
                    act_min=int(rng.choice([-128, -90])), act_max=int(rng.choice([127, 90])))
        wshape = (k, k, c) if dw else (oc, k, k, c)
        consts = [rng.integers(-127, 128, wshape, dtype=np.int8), rng.integers(-5000, 5000, oc, dtype=np.int32),
                  rng.integers(1 << 30, (1 << 31) - 1, oc, dtype=np.int64).astype(np.int32),
                  rng.integers(-12, 0, oc).astype(np.int32)]
        cases.append((op, consts))
    return cases


def _windowed(seed: int, n: int) -> list[tuple[OpDesc, list]]:
    """Convs reading a window of a larger buffer (patch inference), as ``patch_program`` makes them."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        op, consts = opcases.conv_case(
            rng, int(rng.integers(4, 12)), int(rng.integers(4, 12)), int(rng.integers(1, 13)),
            int(rng.integers(1, 13)), int(rng.choice([1, 3, 5])), int(rng.choice([1, 2])),
            depthwise=bool(rng.integers(0, 2)))
        _, h, w, _ = op.in_shape
        r0, c0 = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        win = (r0, c0, h + r0 + int(rng.integers(0, 3)), w + c0 + int(rng.integers(0, 3)))
        cases.append((dataclasses.replace(op, windows=(win,)), consts))
    return cases


def _wide(seed: int) -> list[tuple[OpDesc, list]]:
    """Pointwise convs and dense layers of many channels (run-time reduction lengths of the
    shape-generic form, looped rows), batched dense layers, wide 3x3 layers."""
    rng = np.random.default_rng(seed)
    cases = []
    for cin in (8, 12, 16, 24, 32, 40, 48, 64, 72, 96):
        for cout in (int(rng.integers(1, 9)), int(rng.integers(9, 40))):
            h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
            cases.append(opcases.conv_case(rng, h, w, cin, cout, 1, 1))
        cases.append(opcases.conv_case(rng, 6, 7, cin, int(rng.integers(2, 12)), 3, int(rng.choice([1, 2]))))
        cases.append(opcases.dense_case(rng, cin * 3 + int(rng.integers(0, 4)), int(rng.integers(1, 30))))
    for batch in (2, 3, 5):
        op, consts = opcases.dense_case(rng, int(rng.integers(4, 70)), int(rng.integers(1, 20)))
        cases.append((dataclasses.replace(op, in_shape=(batch, op.in_shape[1]), out_shape=(batch, op.out_shape[1])),
                      consts))
    return cases


def _patched(seeds) -> list[tuple[OpDesc, list]]:
    """Every op of ``patchcases.random_chain`` layer-based and on its patch grid (windows), streamed too."""
    cases = []
    from mcunet_tvm.ir import program_of

    for seed in seeds:
        mod = random_chain(seed)
        cases += [(c.op, list(c.consts)) for c in program_of(mod).calls]
        split, grid = random_grid(seed, mod)
        for stream in (False, True):
            try:
                patched, _ = patch_program(mod, split, grid, stream_input=stream)
            except Exception:
                continue
            cases += [(c.op, list(c.consts)) for c in patched.calls]
    return cases


def _variants(op: OpDesc) -> list[tuple[str, KernelChoice]]:
    """The kernel choices that change a conv / dense op's plain kernel (named by their values)."""
    choices = [KernelChoice()]
    if isinstance(op, Conv2D | Dense):
        choices += [KernelChoice(fast_requant=True)]
    if isinstance(op, Conv2D) and op.depthwise:
        for fast in (False, True):
            for wide, unroll, inplace in ((False, True, False), (True, False, False), (False, False, False),
                                          (True, True, True), (True, False, True), (False, True, True)):
                if not (inplace and op.windows):
                    choices.append(KernelChoice(fast_requant=fast, inplace=inplace, wide_ring=wide,
                                                unroll_small_image=unroll))
    names = ("fr", "ip", "nr", "nu")
    flags = lambda c: (c.fast_requant, c.inplace, not c.wide_ring, not c.unroll_small_image)  # noqa: E731
    return [(".".join(n for n, on in zip(names, flags(c), strict=True) if on), c) for c in choices]


# --- the kernels ---------------------------------------------------------------------------------

def _simd_configs(op: OpDesc) -> list[tuple[str, simd.SimdConfig]]:
    cfgs = [("default", simd.default_config(op))]
    cfgs += [(f"cs{i}", c) for i, c in enumerate(simd.config_space(op))]
    cfgs.append(("shdefault", dataclasses.replace(simd.default_config(op), shared=True)))
    if isinstance(op, Conv2D) and op.kernel == (1, 1):  # where the shape-generic form may apply
        cfgs += [(f"sh{i}", dataclasses.replace(c, shared=True)) for i, c in enumerate(simd.config_space(op))]
    helium = simd.helium_config(op)
    if helium is not None:
        cfgs.append(("helium", helium))
        tiles = {simd.helium_config(op, c) for c in simd.config_space(op)} - {helium}
        cfgs += [(f"he{c.pixels}x{c.channels}", c) for c in sorted(tiles, key=lambda c: (c.pixels, c.channels))]
    return cfgs


_PREDICATES = ("staged_input_bytes", "paired_weights", "shape_generic", "straight_line_tile")


def _record_op(col: Collector, key: str, op: OpDesc, choice: KernelChoice, consts: list) -> None:
    col.func(f"{key}/plain", lambda: build_kernel(op, choice))
    col.value(f"{key}/scratch", lambda: [choice.scratch_bytes(op), list(choice.overlap(op))])
    if consts:
        col.value(f"{key}/consts", lambda: choice.consts(op, consts))
    if isinstance(op, Conv2D) and op.depthwise:
        col.func(f"{key}/compact", lambda: build_kernel(op, choice.with_(compact=True)))
        col.func(f"{key}/shared", lambda: _shared(op, choice))
    if not simd.simd_supported(op):
        return
    col.value(f"{key}/flat", lambda: [simd.flat_window(op), simd.staged_rows(op)])
    for name, cfg in _simd_configs(op):
        k = f"{key}/simd:{name}"
        tiled = choice.with_(simd=cfg)
        col.func(k, lambda tiled=tiled: build_kernel(op, tiled))
        if not cfg.helium:
            col.value(f"{k}/pred", lambda cfg=cfg, tiled=tiled: [getattr(simd, p)(op, cfg) for p in _PREDICATES]
                      + [tiled.scratch_bytes(op), list(tiled.overlap(op))])
        if consts:
            col.value(f"{k}/consts", lambda tiled=tiled: tiled.consts(op, consts))
        if name in ("default",) or name.startswith("cs"):
            col.func(f"{k}/shared", lambda tiled=tiled: _shared(op, tiled))


def _shared(op: OpDesc, choice: KernelChoice):
    """The kernel ``UseSharedKernels`` gives ``op`` (None: it keeps its kernel)."""
    shared = shared_choice(op, choice)
    return None if shared is None else build_kernel(op, shared)


def _record_packing(col: Collector) -> None:
    """The numpy packing functions on seeded inputs (shapes of every kind: odd counts, partial words)."""
    rng = np.random.default_rng(99)
    for i in range(60):
        oc, kh, kw, c = (int(v) for v in (rng.integers(1, 20), rng.integers(1, 8), rng.integers(1, 8),
                                          rng.integers(1, 20)))
        w = rng.integers(-128, 128, (oc, kh, kw, c), dtype=np.int8)
        bias = rng.integers(-100000, 100000, oc, dtype=np.int32)
        mult = rng.integers(1 << 30, (1 << 31) - 1, oc, dtype=np.int64).astype(np.int32)
        shift = rng.integers(-20, 1, oc).astype(np.int32)
        out_zp = int(rng.integers(-128, 128))
        rq = pack_fast_requant(shift, out_zp)
        col.value(f"pack{i}/pair_weights", lambda w=w: simd.pair_weights(w))
        col.value(f"pack{i}/pair_weights_dense", lambda w=w: simd.pair_weights(w.reshape(w.shape[0], -1)))
        col.value(f"pack{i}/pack_fast_requant", lambda shift=shift, out_zp=out_zp: pack_fast_requant(shift, out_zp))
        for doubled in (False, True):
            for group in (1, 2):
                col.value(f"pack{i}/records:{doubled}:{group}",
                          lambda w=w, bias=bias, mult=mult, rq=rq, doubled=doubled, group=group:
                          simd.pack_records(w, bias, mult, rq, doubled, group))
        in_zp = int(rng.integers(-128, 128))
        col.value(f"pack{i}/fold_zp", lambda w=w, bias=bias, in_zp=in_zp: fold_input_zero_point(bias, w, in_zp))
        col.value(f"pack{i}/record_words", lambda kh=kh: [simd.record_words(kh * 2 * q, g)
                                                          for q in range(1, 5) for g in (1, 2)])
    for i in range(40):
        h, w, c = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        op, _ = opcases.add_case(rng, (1, h, w, c))
        if i % 3 == 0:
            op = dataclasses.replace(op, in1_multiplier=1 << 30, in1_shift=0)
        elif i % 3 == 1:
            op = dataclasses.replace(op, in2_multiplier=1 << 30, in2_shift=0)
        col.value(f"addtable{i}", lambda op=op: add_rescale_table(op))
        col.func(f"addtable{i}/plain", lambda op=op: build_kernel(op))
        assert isinstance(op, Add)
    col.value("config_space_all", lambda: [c.to_json() for c in simd.CONFIG_SPACE])
    col.value("fused_steps", lambda: [simd.fused_steps(kh, words) for kh in range(1, 8) for words in range(1, 10)])


def collect() -> Collector:
    col = Collector()
    groups = {
        "opc": _opcases_ops(),
        "rnd": _random_convs(1, 84),
        "dil": _dilated(3, 24),
        "wide": _wide(5),
        "win": _windowed(4, 30),
        "patch": _patched(range(8)),
    }
    seen: set[str] = set()
    for group, cases in groups.items():
        for n, (op, consts) in enumerate(cases):
            op = _bare(op)
            for tag, choice in _variants(op):
                ident = op.to_json() + choice.to_json()
                if ident in seen:  # the same op from two sources: once is enough
                    continue
                seen.add(ident)
                _record_op(col, f"{group}:{n}{'.' + tag if tag else ''}", op, choice, consts)
    _record_packing(col)
    return col


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    parser.add_argument("--compare", type=Path, help="compare with this baseline JSON; exit 1 on any difference")
    args = parser.parse_args()
    col = collect()
    doc = {"kernels": col.kernels, "entries": col.entries}
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text)
    elif not args.compare:
        print(text)
    print(f"{col.kernels} kernels, {len(col.entries)} entries", file=sys.stderr)
    if args.compare:
        base = json.loads(args.compare.read_text())["entries"]
        missing = sorted(set(base) - set(col.entries))
        extra = sorted(set(col.entries) - set(base))
        changed = sorted(k for k in set(base) & set(col.entries) if base[k] != col.entries[k])
        structural = [k for k in changed if base[k].split(":")[0] != col.entries[k].split(":")[0]]
        for k in (missing + extra + changed)[:40]:
            print(f"DIFF {k}: {base.get(k)} -> {col.entries.get(k)}", file=sys.stderr)
        print(f"compare: {len(base)} baseline entries, {len(missing)} missing, {len(extra)} extra, "
              f"{len(changed)} changed ({len(structural)} structurally)", file=sys.stderr)
        return 1 if missing or extra or changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
