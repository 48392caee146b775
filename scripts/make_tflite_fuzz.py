"""Generate seeded random int8 .tflite graphs for the frontend's differential fuzzer.

Each seed gives one small Keras functional graph over the operators a TinyML model uses (convolutions of
every kernel shape, stride, padding and dilation, depthwise, dense, pooling, broadcasting element-wise
operators with branches and skips, concatenation, activations, padding, reshapes, resizes, crops and
slices, transposed convolutions, reductions, softmax, transposes, splits), with random shapes (H, W 1-20,
odd channel counts) and sometimes several inputs and outputs. It is converted full-integer (int8 input and
output) with a seeded representative dataset. Run outside the project's environment:

    /work/tfvenv/bin/python scripts/make_tflite_fuzz.py --seeds 0:40,370,408,542 --out tests/fixtures/fuzz

Writes ``fuzz_<seed>.tflite`` per seed and MANIFEST.json (per file: seed, operators with counts, input and
output shapes, size, sha256; per skipped seed: why). A seed whose graph fails to convert, converts to a
model over the size or operator cap, or with an input or output left float, is skipped and recorded: the same
seed always gives the same outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bit-stable float calibration
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

L = tf.keras.layers
MAX_BYTES = 30_000
MAX_OPS = 20
SAMPLES = 24
OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def name_of(seed: int) -> str:
    """The file name of one seed's model."""
    return f"fuzz_{seed:04d}.tflite"


class Graph:
    """A Keras graph under construction: the tensors made so far, and the random choices."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.inputs: list = []
        self.pool: list = []  # tensors an operator may read, newest last
        self.used: set[int] = set()

    def r(self, lo: int, hi: int) -> int:
        """A random int in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def channels(self) -> int:
        """A channel count in 1..17, odd more often than not."""
        c = self.r(1, 17)
        return c if c % 2 or self.p(0.4) else c + 1 if c < 17 else c - 1

    def add_input(self, shape: tuple[int, ...]) -> None:
        t = tf.keras.Input(shape[1:], batch_size=1, name=f"in{len(self.inputs)}")
        self.inputs.append(t)
        self.pool.append(t)

    def operand(self, rank: int | None = None):
        """A tensor from the pool, the newest most often."""
        cands = [t for t in self.pool if rank is None or len(t.shape) == rank]
        if not cands:
            return None
        if self.p(0.6):
            return cands[-1]
        return self.pick(cands)

    def push(self, t, *sources) -> None:
        for s in sources:
            self.used.add(id(s))
        self.pool.append(t)


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def _act(g: Graph) -> str | None:
    return g.pick([None, None, "relu", "relu6"])


# ---- operators: each takes a 4-D (1, H, W, C) tensor (unless said) and returns a tensor or None -----------

def conv2d(g: Graph, x):
    _, h, w, _ = _shape(x)
    kh, kw = g.r(1, 5), g.r(1, 5)
    if g.p(0.3):
        kw = kh
    dil = 2 if g.p(0.2) else 1
    strides = (1, 1) if dil > 1 else (g.r(1, 2), g.r(1, 2)) if g.p(0.2) else (g.r(1, 2),) * 2
    pad = g.pick(["same", "valid"])
    if pad == "valid" and (h < dil * (kh - 1) + 1 or w < dil * (kw - 1) + 1):
        pad = "same"
    return L.Conv2D(g.channels(), (kh, kw), strides=strides, padding=pad, dilation_rate=dil,
                    use_bias=g.p(0.8), activation=_act(g))(x)


def depthwise(g: Graph, x):
    _, h, w, c = _shape(x)
    kh, kw = g.r(1, 5), g.r(1, 5)
    dil = 2 if g.p(0.2) else 1
    stride = 1 if dil > 1 else g.r(1, 2)
    pad = g.pick(["same", "valid"])
    if pad == "valid" and (h < dil * (kh - 1) + 1 or w < dil * (kw - 1) + 1):
        pad = "same"
    mult = 2 if c <= 8 and g.p(0.3) else 1
    return L.DepthwiseConv2D((kh, kw), strides=stride, padding=pad, depth_multiplier=mult, dilation_rate=dil,
                             use_bias=g.p(0.8), activation=_act(g))(x)


def conv_transpose(g: Graph, x):
    _, h, w, _ = _shape(x)
    stride = g.r(1, 2)
    if h * stride > 20 or w * stride > 20:
        return None
    k = (g.r(1, 3), g.r(1, 3))
    return L.Conv2DTranspose(g.channels(), k, strides=stride, padding=g.pick(["same", "valid"]),
                             use_bias=g.p(0.7), activation=_act(g))(x)


def dense(g: Graph, x):
    c = _shape(x)[-1]
    units = g.channels()
    if g.p(0.5) or len(x.shape) == 2:
        return L.Dense(units, activation=_act(g))(x)  # on the last axis (4-D or 2-D)
    flat = int(np.prod(_shape(x)[1:]))
    if flat * units > 12_000 or flat == c:
        return L.Dense(units, activation=_act(g))(x)
    return L.Dense(units, activation=_act(g))(L.Flatten()(x))


def pool(g: Graph, x):
    _, h, w, _ = _shape(x)
    size = (g.r(1, 3), g.r(1, 3))
    pad = g.pick(["same", "valid"])
    if pad == "valid" and (h < size[0] or w < size[1]):
        pad = "same"
    layer = L.AveragePooling2D if g.p(0.5) else L.MaxPooling2D
    return layer(size, strides=g.r(1, 2), padding=pad)(x)


def activation(g: Graph, x):
    kind = g.pick(["relu", "relu6", "sigmoid", "tanh", "hard_swish", "leaky_relu", "prelu"])
    if kind == "relu6":
        return L.ReLU(6.0)(x)
    if kind == "leaky_relu":
        return L.LeakyReLU(negative_slope=float(np.round(g.rng.uniform(0.05, 0.9), 2)))(x)
    if kind == "prelu":
        shared = g.pick([None, [1, 2], [1, 2, 3]]) if len(x.shape) == 4 else None
        return L.PReLU(shared_axes=shared)(x)
    return L.Activation(kind)(x)


def pad2d(g: Graph, x):
    return L.ZeroPadding2D(((g.r(0, 2), g.r(0, 2)), (g.r(0, 2), g.r(0, 2))))(x)


def crop(g: Graph, x):
    _, h, w, c = _shape(x)
    if g.p(0.5) and (h > 2 or w > 2):
        t, b = (g.r(0, 1), g.r(0, 1)) if h > 2 else (0, 0)
        lft, rgt = (g.r(0, 1), g.r(0, 1)) if w > 2 else (0, 0)
        return L.Cropping2D(((t, b), (lft, rgt)))(x)
    c0, c1 = (g.r(0, c // 2), c) if c > 1 else (0, 1)
    h0 = g.r(0, h - 1) if h > 1 else 0
    if g.p(0.5):  # SLICE
        return L.Lambda(lambda t: tf.slice(t, [0, h0, 0, c0], [1, -1, w, c1 - c0]))(x)
    step = g.r(1, 2)
    return L.Lambda(lambda t: t[:, h0::step, :, c0:c1])(x)


def reshape(g: Graph, x):
    _, h, w, c = _shape(x)
    if g.p(0.3):
        return L.Flatten()(x)
    return L.Reshape(g.pick([(h * w, 1, c), (1, h * w, c), (h, w * c, 1), (w, h, c)]))(x)


def upsample(g: Graph, x):
    _, h, w, _ = _shape(x)
    if h > 10 or w > 10:
        return None
    if g.p(0.5):
        return L.UpSampling2D(2, interpolation="bilinear")(x)
    size = (2 * h, 2 * w) if g.p(0.7) else (h + g.r(1, 3), w + g.r(0, 3))
    ac, hp = g.pick([(False, False), (True, False), (False, True)])
    fn = tf.compat.v1.image.resize_nearest_neighbor if g.p(0.6) else tf.compat.v1.image.resize_bilinear
    return L.Lambda(lambda t: fn(t, size, align_corners=ac, half_pixel_centers=hp))(x)


def reduce(g: Graph, x):
    if g.p(0.4):
        return L.GlobalAveragePooling2D(keepdims=g.p(0.5))(x)
    axes = g.pick([[1, 2], [1], [2], [3], [-1]])
    keep = g.p(0.5)
    fn = tf.reduce_mean if g.p(0.6) else tf.reduce_sum
    return L.Lambda(lambda t: fn(t, axis=axes, keepdims=keep))(x)


def softmax(g: Graph, x):
    return L.Softmax()(x)


def permute(g: Graph, x):
    return L.Permute(g.pick([(2, 1, 3), (3, 1, 2), (1, 3, 2), (3, 2, 1)]))(x)


def split(g: Graph, x):
    c = _shape(x)[-1]
    if c < 2:
        return None
    parts = 2 if c < 3 or g.p(0.5) else 3
    sizes = None if c % parts == 0 and g.p(0.6) else [1] * (parts - 1) + [c - parts + 1]
    outs = L.Lambda(lambda t: tf.split(t, sizes if sizes else parts, axis=-1))(x)
    # every part is used (the converter leaves an unused part's quantisation to chance): a channel shuffle
    outs = [L.Activation(g.pick(["relu", "tanh"]))(o) if g.p(0.4) else o for o in outs]
    return L.Concatenate()(outs[::-1])


def _branch(g: Graph, x):
    """A tensor of ``x``'s shape (or one that broadcasts to it) computed from ``x`` or another input."""
    same = [t for t in g.pool if _shape(t) == _shape(x) and t is not x]
    if same and g.p(0.5):
        return g.pick(same)
    _, h, w, c = _shape(x)
    kind = g.pick(["conv", "dw", "act", "gap", "chan", "const"])
    if kind == "conv":
        return L.Conv2D(c, g.pick([1, 3]), padding="same")(x)
    if kind == "dw":
        return L.DepthwiseConv2D(3, padding="same")(x)
    if kind == "act":
        return L.Activation(g.pick(["relu", "tanh", "sigmoid"]))(x)
    if kind == "gap":
        return L.GlobalAveragePooling2D(keepdims=True)(x)
    if kind == "chan":
        return L.Lambda(lambda t: tf.reduce_mean(t, axis=-1, keepdims=True))(x)
    value = g.rng.uniform(-1, 1, g.pick([(c,), (1, w, 1), (h, 1, c)])).astype(np.float32)
    return L.Lambda(lambda t: t * 0.0 + value)(x)


def binary(g: Graph, x):
    y = _branch(g, x)
    kind = g.pick(["add", "sub", "mul", "max", "min"])
    if kind == "sub":
        return L.Lambda(lambda ab: ab[0] - ab[1])([x, y]) if _shape(y) != _shape(x) else L.Subtract()([x, y])
    fns = {"add": tf.add, "mul": tf.multiply, "max": tf.maximum, "min": tf.minimum}
    if _shape(y) != _shape(x):
        fn = fns[kind]
        return L.Lambda(lambda ab: fn(ab[0], ab[1]))([x, y])
    layer = {"add": L.Add, "mul": L.Multiply, "max": L.Maximum, "min": L.Minimum}[kind]
    return layer()([x, y])


def concat(g: Graph, x):
    _, h, w, _ = _shape(x)
    same = [t for t in g.pool if len(t.shape) == 4 and _shape(t)[1:3] == (h, w) and t is not x]
    y = g.pick(same) if same and g.p(0.6) else L.Conv2D(g.channels(), 1)(x)
    axis = -1
    if g.p(0.2) and _shape(y)[-1] == _shape(x)[-1]:
        axis = g.pick([1, 2])
    return L.Concatenate(axis=axis)([x, y])


OPS_4D: tuple[tuple[Callable, float], ...] = (
    (conv2d, 3), (depthwise, 2), (dense, 1), (pool, 1.5), (activation, 3), (pad2d, 0.7), (crop, 1),
    (reshape, 0.6), (upsample, 1.2), (conv_transpose, 0.8), (reduce, 1), (softmax, 0.5), (permute, 0.7),
    (split, 0.8), (binary, 3), (concat, 1.2),
)


def dense_2d(g: Graph, x):
    return L.Dense(g.channels(), activation=_act(g))(x)


def binary_2d(g: Graph, x):
    y = L.Dense(_shape(x)[-1])(x) if g.p(0.6) else L.Activation("tanh")(x)
    return g.pick([L.Add, L.Subtract, L.Multiply, L.Maximum, L.Minimum])()([x, y])


OPS_2D: tuple[tuple[Callable, float], ...] = (
    (dense_2d, 3), (activation, 1.5), (softmax, 0.5), (binary_2d, 1.5),
    (lambda g, x: L.Reshape((1, 1, _shape(x)[-1]))(x) if _shape(x)[-1] <= 64 else None, 0.5),
)


def _weighted(g: Graph, table):
    weights = np.array([w for _, w in table], np.float64)
    return table[int(g.rng.choice(len(table), p=weights / weights.sum()))][0]


def _fits(t) -> bool:
    shape = _shape(t)
    if len(shape) == 4:
        return all(1 <= d <= 20 for d in shape[1:3]) and shape[3] <= 34
    return len(shape) == 2 and shape[1] <= 400


def _ancestors(t) -> set[int]:
    """The ids of every tensor ``t`` is computed from (``t`` included)."""
    seen, todo = set(), [t]
    while todo:
        u = todo.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        op, node, _ = u._keras_history
        todo.extend(op._inbound_nodes[node].input_tensors)
    return seen


def build_graph(seed: int) -> tf.keras.Model:
    """The random Keras model of ``seed``."""
    g = Graph(np.random.default_rng(seed))
    for _ in range(2 if g.p(0.15) else 1):
        if g.p(0.12):
            g.add_input((1, g.r(1, 40)))
        else:
            h = 1 if g.p(0.15) else g.r(1, 20)
            g.add_input((1, h, g.r(1, 20), g.channels()))
    steps = g.r(2, 8)
    for _ in range(steps):
        x = g.operand()
        rank = len(x.shape)
        op = _weighted(g, OPS_4D if rank == 4 else OPS_2D)
        y = op(g, x)
        if y is None or not _fits(y):
            continue
        g.push(y, x)
    if len(g.inputs) == 2 and not all(id(i) in _ancestors(g.pool[-1]) for i in g.inputs):
        a = g.pool[-1]  # join the inputs so that both reach the output
        missing = next(i for i in g.inputs if id(i) not in _ancestors(a))
        b = next(t for t in reversed(g.pool) if id(missing) in _ancestors(t))
        a, b = (L.Flatten()(t) if len(t.shape) == 4 else t for t in (a, b))
        a, b = (L.Dense(8)(t) if _shape(t)[-1] > 400 else t for t in (a, b))
        g.push(L.Concatenate()([L.Dense(g.channels())(a), L.Dense(g.channels())(b)]), a, b)
    outputs = [g.pool[-1]]
    inside = _ancestors(outputs[0])
    spare = [t for t in g.pool if id(t) not in inside]
    if spare and g.p(0.3):
        outputs.append(g.pick(spare))
    return tf.keras.Model(g.inputs, outputs if len(outputs) > 1 else outputs[0])


def randomize(model, rng: np.random.Generator) -> None:
    """Non-zero biases and PReLU slopes (both start at zero)."""
    for layer in model.layers:
        for var in layer.weights:
            leaf = var.path.split("/")[-1]
            if leaf == "bias":
                var.assign(rng.normal(0.0, 0.1, var.shape).astype(np.float32))
            elif leaf == "alpha":
                var.assign(rng.uniform(-0.5, 0.8, var.shape).astype(np.float32))


def _input_order(model) -> list[int]:
    """Indices into ``model.inputs`` in the converted model's input order (which calibration follows)."""
    if len(model.inputs) == 1:
        return [0]
    interp = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert())
    names = [inp.name for inp in model.inputs]
    return [names.index(d["name"].removeprefix("serving_default_").split(":")[0]) for d in interp.get_input_details()]


def convert(model, seed: int) -> bytes:
    """Full-integer conversion, int8 input and output, seeded representative dataset."""
    shapes = [_shape(model.inputs[i]) for i in _input_order(model)]
    rng = np.random.default_rng(seed + 1_000_003)
    data = [[rng.uniform(-1, 1, s).astype(np.float32) for s in shapes] for _ in range(SAMPLES)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: iter(data)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def describe(data: bytes) -> dict:
    """Operator counts and input/output shapes of a .tflite."""
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    sub = model.subgraphs[0]
    ops: Counter[str] = Counter()
    for op in sub.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops[OP_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]] += 1
    return {"ops": dict(sorted(ops.items())), "operator_count": sum(ops.values()),
            "inputs": [[int(d) for d in sub.tensors[i].shape] for i in sub.inputs],
            "outputs": [[int(d) for d in sub.tensors[i].shape] for i in sub.outputs]}


@contextlib.contextmanager
def _quiet():
    """The converter's chatter (it writes to file descriptors 1 and 2 from C++) into /dev/null."""
    sys.stdout.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def generate(seed: int) -> tuple[bytes | None, dict]:
    """One seed's model bytes and manifest record (``None`` and the reason when skipped)."""
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    try:
        with _quiet():
            model = build_graph(seed)
            randomize(model, np.random.default_rng(seed + 7))
            data = convert(model, seed)
    except Exception as exc:  # a graph Keras or the converter rejects: skipped, recorded
        return None, {"seed": seed, "skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    info = describe(data)
    model = schema.ModelT.InitFromPackedBuf(data, 0).subgraphs[0]
    wide = [k for k, i in enumerate([*model.inputs, *model.outputs]) if model.tensors[i].type != schema.TensorType.INT8]
    if wide:  # the converter left an input or output float (a tensor it had no statistics for)
        return None, {"seed": seed, "skipped": f"not int8 in and out: interface tensors {wide}"}
    if len(data) > MAX_BYTES or info["operator_count"] > MAX_OPS:
        return None, {"seed": seed, "skipped": f"too big: {len(data)} bytes, {info['operator_count']} operators"}
    return data, {"seed": seed, **info, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def parse_seeds(text: str) -> list[int]:
    """``0:40,370`` -> 0..39 and 370."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        seeds += range(int(lo), int(hi)) if hi else [int(lo)]
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:40", help="A:B (the seeds A..B-1) or single seeds, comma-separated")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    models, skipped = {}, {}
    for seed in parse_seeds(args.seeds):
        data, record = generate(seed)
        if data is None:
            skipped[str(seed)] = record["skipped"]
            print(f"seed {seed}: skipped ({record['skipped']})", flush=True)
            continue
        (args.out / name_of(seed)).write_bytes(data)
        models[name_of(seed)] = record
        print(f"{name_of(seed)}: {len(data)} B, {' '.join(f'{k}x{v}' for k, v in record['ops'].items())}", flush=True)
    manifest = {"generator": "scripts/make_tflite_fuzz.py", "tensorflow": tf.__version__, "seeds": args.seeds,
                "models": models, "skipped": skipped}
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(r["bytes"] for r in models.values())
    print(f"{len(models)} models ({total} bytes), {len(skipped)} seeds skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
