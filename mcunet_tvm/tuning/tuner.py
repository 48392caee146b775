"""``--tune N``: pick each SIMD layer's schedule by measuring candidates on the emulated core.

For every distinct layer that has a SIMD kernel, up to ``N`` schedules from
:func:`~mcunet_tvm.kernels.simd.config_space` are built as a one-layer model,
run on QEMU and timed by instruction count (deterministic). The default
schedule is always measured first, so tuning never makes a layer slower. The
order of the other candidates comes from a learned cost model: an XGBoost
regressor over layer shape and schedule knobs, trained on every measurement
in the database so far (all layers, all earlier runs); with too few samples
the order is a seeded shuffle. Every candidate's output is checked byte for
byte against the host reference: a schedule that changed results would be a
compiler bug, and is reported as one.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from ..errors import McunetError
from ..ir import KernelCall, Program, emit_call, new_main
from ..kernels.simd import SimdConfig, config_space, default_config, simd_supported
from ..ops import OpDesc
from ..targets import TargetSpec
from .database import TuningDatabase

#: fewest measurements before the cost model ranks candidates
MIN_TRAINING = 8


def features(op: OpDesc, cfg: SimdConfig) -> list[float]:
    """Layer shape and schedule knobs, as the cost model sees them."""
    kh, kw = getattr(op, "kernel", (1, 1))
    stride = getattr(op, "strides", (1, 1))[0]
    cin, cout = op.in_shape[-1], op.out_shape[-1]
    pixels = math.prod(op.out_shape[:-1])
    seg = kw * cin
    return [cin, cout, kh * kw, pixels, stride, seg % 4, seg // 4, cfg.pixels, cfg.channels,
            float(cfg.order == "channels"), pixels % cfg.pixels, cout % cfg.channels]


def _rank(candidates: list[SimdConfig], op: OpDesc, db: TuningDatabase, target: str, seed: int) -> list[SimdConfig]:
    samples = db.samples(target)
    if len(samples) < MIN_TRAINING:
        rng = np.random.default_rng(seed)
        return [candidates[i] for i in rng.permutation(len(candidates))]
    import xgboost

    x = np.array([features(o, c) for o, c, _ in samples])
    y = np.array([math.log(n / max(o.macs(), 1)) for o, _, n in samples])
    params = {"max_depth": 4, "eta": 0.2, "nthread": 1, "seed": seed, "objective": "reg:squarederror"}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=60)
    pred = booster.predict(xgboost.DMatrix(np.array([features(op, c) for c in candidates])))
    return [candidates[i] for i in np.argsort(pred, kind="stable")]


def layer_module(call: KernelCall) -> tvm.IRModule:
    """An integer module of the one layer ``call`` (its kernel chosen afresh: no SIMD tile yet)."""
    op = call.op
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(op.input_buffer_shape(0, tuple(op.in_shape)), "int8"))
    with new_main(bb, x, {}) as result:
        result(emit_call(bb, "layer", op, [x], call.consts, call.choice.with_(simd=None)))
    return bb.get()


def measure(target: TargetSpec, call: KernelCall, cfg: SimdConfig, work: Path) -> int:
    """Instructions of the layer ``call`` with schedule ``cfg`` on QEMU; checks the output bit-exactly."""
    from .. import toolchain
    from ..pipeline import compile_relax
    from ..reference.graph_ref import run_reference

    op = call.op
    shape = op.input_buffer_shape(0, tuple(op.in_shape))
    compiled = compile_relax(layer_module(call), target.mcpu, inplace=False, reorder=False,
                             simd=True, schedule=lambda _: cfg)
    sources = compiled.write(work)
    objects = toolchain.compile_objects(target, sources, [work], work / "obj")
    exe = toolchain.link(target, objects, work / "layer.elf")
    x = np.random.default_rng(0).integers(-128, 128, shape, dtype=np.int8)
    result = toolchain.run(target, exe, x.tobytes(), compiled.program.nbytes(compiled.program.output))
    if result.output != run_reference(compiled.program, x).tobytes():
        raise McunetError(f"schedule {cfg.to_json()} changed the results of a {op.kind} layer",
                          where=op.to_json(), hint="this is a compiler bug: please report it")
    return result.step_instructions[0]


def tune_program(
    prog: Program,
    target: TargetSpec,
    db: TuningDatabase,
    trials: int,
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> int:
    """Measure up to ``trials`` schedules for every distinct SIMD layer of ``prog``; returns how many were new."""
    if not target.qemu_machine:
        raise McunetError(f"--tune needs an emulated Cortex-M target, not '{target.name}'", where="--target",
                          hint="instruction counts come from QEMU: use e.g. --target cortex-m7")
    layers: dict[str, KernelCall] = {}
    for call in prog.calls:
        if call.kernel and simd_supported(call.op):
            layers.setdefault(call.op.to_json(), call)
    new = 0
    with tempfile.TemporaryDirectory(prefix="mcunet-tune-") as tmp:
        for n, call in enumerate(layers.values()):
            op = call.op
            done = db.measured(target.name, op)
            budget = trials - len(done)
            if budget <= 0:
                continue
            default = default_config(op)
            rest = [c for c in config_space(op) if c.to_json() not in done and c != default]
            order = ([default] if default.to_json() not in done else []) + _rank(rest, op, db, target.name, seed + n)
            for cfg in order[:budget]:
                count = measure(target, call, cfg, Path(tmp) / f"l{n}_{len(done) + new}")
                db.record(target.name, op, cfg, count)
                new += 1
                db.save()
            if progress:
                best = db.best(target.name, op)
                progress(f"tune [{n + 1}/{len(layers)}] {op.kind} {list(op.in_shape)}->{list(op.out_shape)}: "
                         f"best {best.pixels}x{best.channels} {best.order}, "
                         f"{min(db.measured(target.name, op).values()):,} instructions")
    return new
