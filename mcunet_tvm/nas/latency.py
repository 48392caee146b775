"""The NAS's latency model: each layer's instructions and modelled cycles, measured once and cached.

A *layer* is one kernel call of the light program the NAS plans (:mod:`.light`): its descriptor and
kernel choice on one core. Its cost is measured, not given by a formula: the layers a set of
candidates needs and the cache does not hold are built together as one real program, each layer
standalone (its own input and output, constants of the right shapes; no pass runs, so every layer
keeps its planned choice), compiled to C by the compiler's own back end
(:func:`mcunet_tvm.pipeline.generate`), linked for the core's QEMU board and run once in the cycle
emulator (:mod:`mcunet_tvm.cycles`), which gives every step's exact instructions and modelled
cycles. A network's latency is the sum of its layers' costs.

Cache
    JSON (``LatencyModel(cache=...)``; default ``$XDG_CACHE_HOME/mcunet_tvm/layer_latency_<core>.json``)
    holding, per layer key (core, descriptor, choice), ``[instructions, cycles]``, valid for one
    *fingerprint*: a hash of the sources that generate and time code (kernels, code generation, entry
    point, runtime, cycle model, toolchain flags). A changed compiler starts an empty cache.

Assumptions and limits
    - Convolution and dense layers are measured with the fast requantisation (``KernelChoice.
      fast_requant``), which the compiler takes when every shift is a right shift and accumulators stay
      below 2^30: what trained int8 layers give. A layer that does not qualify costs a few instructions
      per output more than predicted.
    - The NAS's light layers carry no quantisation parameters, and some kernels' code depends on them
      (a non-zero input zero point pads with it; ADD's and MEAN's rescaling paths): a layer is measured
      with the parameters a quantised network typically has (:data:`TYPICAL`) where its own are unset.
    - Kernel instruction counts do not depend on the values computed (fixed loops, no data-dependent
      branches in conv, depthwise, add, mean, dense), so fixed constants and a zero input measure them.
    - The entry point's work outside the steps (a few dozen instructions) is not counted.
    - The agreement with a compiled network is checked, not assumed: ``nas`` compares the winner's
      prediction with its QEMU instruction count and its cycle estimate (:data:`TOLERANCE`), and
      ``tests/test_nas_latency.py`` does on random architectures.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from ..errors import McunetError
from ..ir import KernelCall, Program, emit_call, new_main, program_of
from ..kernels import KernelChoice, kernel_cache
from ..ops import Add, Conv2D, Dense, Mean, OpDesc, TransposeConv2D
from ..planner import plan_memory
from ..progress import Progress, note

#: relative error allowed between a network's predicted and its compiled instructions and cycles
TOLERANCE = 0.02
#: a measurement program's tensors stay below this (the M4/M7 QEMU boards have 4 MB of RAM)
CHUNK_BYTES = 2_500_000
#: and it holds at most this many layers (one C file: keeps a gcc run short)
CHUNK_LAYERS = 64
#: what the fingerprint hashes: every source that decides a kernel's code or its modelled time
_SOURCES = ("kernels", "codegen", "aot", "runtime_c", "cycles", "toolchain", "targets.py", "pipeline.py")
_SUFFIXES = (".py", ".c", ".h", ".ld")
_VERSION = 1


@dataclass(frozen=True)
class Latency:
    """Predicted cost of one inference."""

    instructions: int
    cycles: int

    def milliseconds(self, mhz: float) -> float:
        return self.cycles / (mhz * 1e3)

    def to_json(self) -> dict:
        return {"instructions": self.instructions, "cycles": self.cycles}


def layer_calls(prog: Program) -> list[KernelCall]:
    """The calls of ``prog`` that run a kernel (a step of the entry point)."""
    return [c for c in prog.calls if c.kernel and not c.choice.view]


def measured_choice(op: OpDesc, choice: KernelChoice) -> KernelChoice:
    """The choice a layer is measured (and keyed) with: the fast requantisation where it exists."""
    return choice.with_(fast_requant=True) if isinstance(op, (Conv2D, Dense)) else choice


#: quantisation parameters a layer is measured with where the light layer leaves them 0 (values as the
#: compiler's quantiser writes them for a ReLU6 MobileNet: activations' zero point -128, rescaling by
#: a Q31 multiplier and a right shift)
TYPICAL: dict[type, dict[str, int]] = {
    Conv2D: {"in_zp": -128, "out_zp": -128},
    Dense: {"in_zp": -128, "out_zp": 3},
    Add: {"in1_zp": -20, "in1_multiplier": 1 << 30, "in2_zp": 20, "in2_multiplier": 1_174_632_664, "in2_shift": -4,
          "out_zp": -5, "out_multiplier": 1_099_446_722, "out_shift": -18},
    Mean: {"in_zp": -128, "out_zp": -128, "multiplier": 1_618_016_205, "shift": -1},
}


def measured_op(op: OpDesc) -> OpDesc:
    """``op`` with :data:`TYPICAL` parameters in place of the ones it leaves 0."""
    typical = TYPICAL.get(type(op), {})
    changes = {k: v for k, v in typical.items() if getattr(op, k) == 0}
    return dataclasses.replace(op, **changes) if changes else op


def layer_key(core: str, call: KernelCall) -> str:
    return json.dumps([core, measured_op(call.op).to_json(), measured_choice(call.op, call.choice).to_json()])


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of the sources that generate and time code (a changed compiler invalidates the cache)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(str(_VERSION).encode())
    for name in _SOURCES:
        path = root / name
        files = sorted(f for f in path.rglob("*") if f.suffix in _SUFFIXES) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def default_cache(core: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mcunet_tvm" / f"layer_latency_{core}.json"


class LatencyModel:
    """Per-layer costs on ``target``'s core, measured on demand (:meth:`prepare`) and cached."""

    def __init__(self, target: str, cache: Path | None = None, progress: Progress = None) -> None:
        from ..cycles import supports
        from ..targets import get_target

        self.target = get_target(target)
        if not (self.target.mcpu and supports(self.target.mcpu) and self.target.board):
            raise McunetError(f"the latency model has no cycle model for target {target}",
                              where="--max-latency-ms / --max-cycles",
                              hint="use a Cortex-M4 or Cortex-M7 target (e.g. --mcu stm32f746)")
        self.core = self.target.mcpu
        self.cache = cache or default_cache(self.core)
        self.progress = progress
        self.layers: dict[str, tuple[int, int]] = self._load()
        self.measured = 0  # layers this model measured (not from the cache)

    def latency(self, prog: Program) -> Latency:
        """The predicted instructions and cycles of ``prog`` (measuring what the cache lacks)."""
        self.prepare([prog])
        costs = [self.layers[layer_key(self.core, c)] for c in layer_calls(prog)]
        return Latency(sum(i for i, _ in costs), sum(c for _, c in costs))

    def prepare(self, progs: Iterable[Program]) -> int:
        """Measure, in as few builds as possible, every layer of ``progs`` not in the cache; returns how many."""
        missing: dict[str, tuple[KernelCall, list[tuple[int, ...]]]] = {}
        for prog in progs:
            for c in layer_calls(prog):
                key = layer_key(self.core, c)
                if key not in self.layers and key not in missing:
                    missing[key] = (c, [prog.shapes[n] for n in c.inputs])
        items = list(missing.items())
        for chunk in _chunks(items):
            note(self.progress, f"latency model: measuring {len(chunk)} layers on {self.core}")
            costs = self._measure([layer for _, layer in chunk])
            self.layers.update({key: cost for (key, _), cost in zip(chunk, costs, strict=True)})
            self.measured += len(chunk)
            self._save()
        return len(items)

    def _measure(self, layers: list[tuple[KernelCall, list[tuple[int, ...]]]]) -> list[tuple[int, int]]:
        from .. import toolchain
        from ..cycles import estimate
        from ..pipeline import generate
        from ..resources import RUNTIME_C

        with kernel_cache():
            mod = measurement_module(layers)
        # many independent tensors, whose layout does not change a kernel's code: the planner's quick mode
        plan = plan_memory(program_of(mod).memory_graph(), fast=True)
        compiled = generate(mod, self.core, name="latency", plan=plan)
        prog = compiled.program
        with tempfile.TemporaryDirectory(prefix="mcunet-latency-") as tmp:
            work = Path(tmp)
            sources = compiled.write(work / "src")
            objects = toolchain.compile_objects(self.target, sources, [work / "src"], work / "obj")
            exe = toolchain.link(self.target, objects, work / "latency.elf")
            data = bytes(sum(prog.nbytes(n) for n in prog.inputs))
            run = estimate(self.core, RUNTIME_C / "boards" / self.target.board, exe, data, len(layers))
        return list(zip(run.step_instructions, run.step_cycles, strict=True))

    def _load(self) -> dict[str, tuple[int, int]]:
        try:
            data = json.loads(self.cache.read_text())
        except (OSError, ValueError):
            return {}
        if data.get("fingerprint") != fingerprint() or data.get("core") != self.core:
            return {}
        return {k: (int(v[0]), int(v[1])) for k, v in data.get("layers", {}).items()}

    def _save(self) -> None:
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        data = {"fingerprint": fingerprint(), "core": self.core,
                "layers": {k: list(v) for k, v in sorted(self.layers.items())}}
        tmp = self.cache.with_name(self.cache.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=0) + "\n")
        tmp.replace(self.cache)  # atomic: a concurrent reader sees the old or the new file


def _chunks(items: list[tuple[str, tuple[KernelCall, list]]]) -> Iterable[list]:
    """``items`` in groups whose tensors fit one measurement program's RAM."""
    chunk: list = []
    size = 0
    for item in items:
        call, shapes = item[1]
        n = sum(int(np.prod(s)) for s in shapes) + int(np.prod(call.op.out_shape)) + call.choice.scratch_bytes(call.op)
        if chunk and (size + n > CHUNK_BYTES or len(chunk) >= CHUNK_LAYERS):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


def measurement_module(layers: list[tuple[KernelCall, list[tuple[int, ...]]]]) -> tvm.IRModule:
    """One integer module running ``layers`` side by side: layer i reads its own inputs ``x<i>_<j>``
    and writes output i, with its measured choice and constants of the right shapes."""
    bb = relax.BlockBuilder()
    params = [[relax.Var(f"x{i}_{j}", relax.TensorType(s, "int8")) for j, s in enumerate(shapes)]
              for i, (_, shapes) in enumerate(layers)]
    with new_main(bb, [p for ps in params for p in ps], {}) as result:
        outs = [emit_call(bb, f"m{i}_{call.op.kind}", measured_op(call.op), ps, layer_consts(call.op),
                          measured_choice(call.op, call.choice))
                for i, ((call, _), ps) in enumerate(zip(layers, params, strict=True))]
        result(*outs)
    mod = bb.get()
    _check_order(program_of(mod), len(layers))
    return mod


def _check_order(prog: Program, n: int) -> None:
    if len(layer_calls(prog)) != n:
        raise RuntimeError(f"measurement program has {len(layer_calls(prog))} steps for {n} layers")


def layer_consts(op: OpDesc) -> list[np.ndarray]:
    """Semantic constants of the right shapes for measuring ``op``'s kernel: small weights, zero bias,
    multiplier 2^30 and a right shift of 8 (values the fast requantisation accepts)."""
    if not op.const_args:
        return []
    if isinstance(op, (Conv2D, TransposeConv2D)):
        cout, cin = op.out_shape[3], op.in_shape[3]
        shape = (*op.kernel, cin) if isinstance(op, Conv2D) and op.depthwise else (cout, *op.kernel, cin)
    elif isinstance(op, Dense):
        cout, shape = op.out_shape[-1], (op.out_shape[-1], op.in_shape[-1])
    else:
        raise McunetError(f"the latency model cannot measure a {op.kind} layer (constants {op.const_args})",
                          hint="the NAS's networks hold convolutions, additions, means and dense layers")
    rng = np.random.default_rng(0)
    return [rng.integers(-3, 4, shape, dtype=np.int8), np.zeros(cout, np.int32),
            np.full(cout, 1 << 30, np.int32), np.full(cout, -8, np.int32)]


__all__ = ["TOLERANCE", "Latency", "LatencyModel", "default_cache", "fingerprint", "layer_key",
           "measurement_module"]
