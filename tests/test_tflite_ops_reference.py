"""mcunet_tvm.reference.tflite_ops agrees with TF Lite Micro byte for byte on single-op int8 models
(and on ones with float32 edges: QUANTIZE from float32, DEQUANTIZE to float32).

Each fixture in tests/fixtures/ops/ (made by scripts/make_tflite_op_fixtures.py) is read with the
``tflite`` flatbuffer package; its operators are run one after the other with the numpy reference
(tensors, quantisation, options and constant buffers taken from the file) and every model output is
compared with TF Lite Micro's on the same seeded random int8 (float32) inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pytest
import tflite

from mcunet_tvm.quant import fixedpoint as fp
from mcunet_tvm.reference import tflite_ops as ops
from mcunet_tvm.reference.tflm import run_tflm_outputs

from conftest import FIXTURES

OPS_DIR = FIXTURES / "ops"
MANIFEST = json.loads((OPS_DIR / "MANIFEST.json").read_text())
OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
DTYPES = {tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64,
          tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT16: np.int16}


# ---- reading a .tflite model with the flatbuffer package ----------------------------------------

@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: type
    scales: np.ndarray
    zero_points: np.ndarray
    data: np.ndarray | None  # constant buffer

    @property
    def scale(self) -> float:
        return float(self.scales[0]) if self.scales.size else 0.0

    @property
    def zp(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0


class Graph:
    def __init__(self, data: bytes):
        self.model = tflite.Model.GetRootAsModel(data, 0)
        self.sub = self.model.Subgraphs(0)
        self.tensors = [self._tensor(self.sub.Tensors(i)) for i in range(self.sub.TensorsLength())]
        codes = [self.model.OperatorCodes(i) for i in range(self.model.OperatorCodesLength())]
        self.codes = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) for c in codes]
        self.inputs = [int(i) for i in self.sub.InputsAsNumpy()]
        self.outputs = [int(i) for i in self.sub.OutputsAsNumpy()]

    def _tensor(self, t) -> Tensor:
        dtype = DTYPES[t.Type()]
        q = t.Quantization()
        scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
        zps = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        raw = self.model.Buffers(t.Buffer()).DataAsNumpy()
        data = None
        if not isinstance(raw, int) and raw.size:
            data = np.frombuffer(raw.tobytes(), dtype).reshape(shape)
        return Tensor(shape, dtype, np.asarray(scales, np.float32), np.asarray(zps, np.int64), data)

    def operators(self):
        for i in range(self.sub.OperatorsLength()):
            op = self.sub.Operators(i)
            yield OP_NAMES[self.codes[op.OpcodeIndex()]], op


def _options(op, cls):
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _act(opts) -> str:
    return ACTIVATIONS[opts.FusedActivationFunction()]


# ---- running a graph with the reference -----------------------------------------------------------

def _unary(name, op, t, x, xin, out):
    if name == "RELU":
        return ops.relu(x, xin.scale, xin.zp, out.scale, out.zp)
    if name == "RELU6":
        return ops.relu6(x, xin.scale, xin.zp)
    if name == "LEAKY_RELU":
        alpha = _options(op, tflite.LeakyReluOptions).Alpha()
        return ops.leaky_relu(x, xin.scale, xin.zp, out.scale, out.zp, alpha)
    if name == "HARD_SWISH":
        return ops.hard_swish(x, xin.scale, xin.zp, out.scale, out.zp)
    if name == "LOGISTIC":
        return ops.logistic(x, xin.scale, xin.zp, out.zp)
    if name == "TANH":
        return ops.tanh(x, xin.scale, xin.zp)
    if name == "QUANTIZE" and xin.dtype == np.float32:
        return ops.quantize_float(x, out.scale, out.zp)
    if name == "QUANTIZE":
        return ops.quantize(x, xin.scale, xin.zp, out.scale, out.zp)
    if name == "DEQUANTIZE":
        return ops.dequantize(x, xin.scale, xin.zp)
    raise KeyError(name)


def _binary(name, op, ins, vals, out):
    (a, b), (ta, tb) = vals, ins
    if name in ("MAXIMUM", "MINIMUM"):
        return (ops.maximum if name == "MAXIMUM" else ops.minimum)(a, b)
    if name == "PRELU":
        return ops.prelu(a, b, ta.scale, ta.zp, tb.scale, tb.zp, out.scale, out.zp)
    cls = {"ADD": tflite.AddOptions, "SUB": tflite.SubOptions, "MUL": tflite.MulOptions}[name]
    fn = {"ADD": ops.add, "SUB": ops.sub, "MUL": ops.mul}[name]
    return fn(a, b, ta.scale, ta.zp, tb.scale, tb.zp, out.scale, out.zp, _act(_options(op, cls)))


def _const(t: Tensor) -> list[int]:
    assert t.data is not None, "expected a constant tensor"
    return [int(v) for v in t.data.reshape(-1)]


def run_op(name: str, op, g: Graph, env: dict) -> list[np.ndarray]:
    idx = [int(i) for i in op.InputsAsNumpy()]
    ins = [g.tensors[i] if i >= 0 else None for i in idx]
    vals = [env.get(i, ins[k].data if ins[k] is not None else None) for k, i in enumerate(idx)]
    outs = [g.tensors[int(i)] for i in op.OutputsAsNumpy()]
    out = outs[0]
    if name in ("RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE"):
        return [_unary(name, op, g, vals[0], ins[0], out)]
    if name in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "PRELU"):
        return [_binary(name, op, ins[:2], vals[:2], out)]
    if name == "TRANSPOSE":
        return [ops.transpose(vals[0], _const(ins[1]))]
    if name == "CONCATENATION":
        o = _options(op, tflite.ConcatenationOptions)
        assert _act(o) == "NONE"
        return [ops.concatenation(vals, o.Axis(), [t.scale for t in ins], [t.zp for t in ins], out.scale, out.zp)]
    if name == "SPLIT":
        return ops.split(vals[1], _options(op, tflite.SplitOptions).NumSplits(), _const(ins[0])[0])
    if name == "SPLIT_V":
        return ops.split_v(vals[0], _const(ins[1]), _const(ins[2])[0])
    if name == "SLICE":
        return [ops.slice_(vals[0], _const(ins[1]), _const(ins[2]))]
    if name == "STRIDED_SLICE":
        o = _options(op, tflite.StridedSliceOptions)
        assert not o.Offset()
        return [ops.strided_slice(vals[0], _const(ins[1]), _const(ins[2]), _const(ins[3]), o.BeginMask(),
                                  o.EndMask(), o.ShrinkAxisMask(), o.EllipsisMask(), o.NewAxisMask())]
    if name == "PACK":
        return [ops.pack(vals, _options(op, tflite.PackOptions).Axis())]
    if name == "UNPACK":
        return ops.unpack(vals[0], _options(op, tflite.UnpackOptions).Axis())
    if name == "PAD":
        return [ops.pad(vals[0], _const(ins[1]), out.zp)]
    if name == "PADV2":
        return [ops.padv2(vals[0], _const(ins[1]), vals[2], ins[2].scale, ins[2].zp, out.scale, out.zp)]
    if name == "MIRROR_PAD":
        mode = {tflite.MirrorPadMode.REFLECT: "REFLECT", tflite.MirrorPadMode.SYMMETRIC: "SYMMETRIC"}[
            _options(op, tflite.MirrorPadOptions).Mode()]
        return [ops.mirror_pad(vals[0], _const(ins[1]), mode)]
    if name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return [ops.reshape(vals[0], out.shape)]
    if name in ("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"):
        cls = tflite.ResizeNearestNeighborOptions if name == "RESIZE_NEAREST_NEIGHBOR" else \
            tflite.ResizeBilinearOptions
        o = _options(op, cls)
        fn = ops.resize_nearest_neighbor if name == "RESIZE_NEAREST_NEIGHBOR" else ops.resize_bilinear
        return [fn(vals[0], _const(ins[1]), bool(o.AlignCorners()), bool(o.HalfPixelCenters()))]
    if name == "TRANSPOSE_CONV":
        o = _options(op, tflite.TransposeConvOptions)
        bias = vals[3] if len(vals) > 3 and ins[3] is not None else None
        return [ops.transpose_conv(vals[2], vals[1], bias, ins[2].scale, ins[2].zp, ins[1].scales, out.scale, out.zp,
                                   _const(ins[0]), (o.StrideH(), o.StrideW()), _padding(o.Padding()), _act(o))]
    if name == "DEPTHWISE_CONV_2D":
        o = _options(op, tflite.DepthwiseConv2DOptions)
        bias = vals[2] if len(vals) > 2 and ins[2] is not None else None
        return [ops.depthwise_conv2d(vals[0], vals[1], bias, ins[0].scale, ins[0].zp, ins[1].scales, out.scale,
                                     out.zp, (o.StrideH(), o.StrideW()), _padding(o.Padding()),
                                     (o.DilationHFactor(), o.DilationWFactor()), o.DepthMultiplier(), _act(o))]
    if name in ("MEAN", "SUM"):
        keep = bool(_options(op, tflite.ReducerOptions).KeepDims())
        fn = ops.mean if name == "MEAN" else ops.reduce_sum
        return [fn(vals[0], _const(ins[1]), keep, ins[0].scale, ins[0].zp, out.scale, out.zp)]
    if name == "ARG_MAX":
        return [ops.arg_max(vals[0], _const(ins[1])[0])]
    if name == "BATCH_MATMUL":
        o = _options(op, tflite.BatchMatMulOptions)
        return [ops.batch_matmul(vals[0], vals[1], ins[0].scale, ins[0].zp, ins[1].scale, ins[1].zp, out.scale,
                                 out.zp, bool(o.AdjX()), bool(o.AdjY()))]
    raise NotImplementedError(f"no reference for {name}")


def _padding(code: int) -> str:
    return {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}[code]


def run_reference(g: Graph, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    env = dict(zip(g.inputs, inputs, strict=True))
    names = []
    for name, op in g.operators():
        results = run_op(name, op, g, env)
        for i, r in zip(op.OutputsAsNumpy(), results, strict=True):
            t = g.tensors[int(i)]
            assert r.dtype == t.dtype and r.shape == t.shape, (name, r.dtype, r.shape, t.shape)
            env[int(i)] = r
        names.append(name)
    return [env[i] for i in g.outputs], names


# ---- inputs ---------------------------------------------------------------------------------------

def _float_input(g: Graph, i: int, rng: np.random.Generator, trial: int) -> np.ndarray:
    """A float32 input (a QUANTIZE reads it): trial 0 every half step of the int8 range in the QUANTIZE's
    scale (the rounding's ties), trial 1 the clamps (far outside the range, zero, +-half a step), the
    rest uniform over the range and a little beyond."""
    (q,) = [g.tensors[int(op.OutputsAsNumpy()[0])] for name, op in g.operators()
            if name == "QUANTIZE" and int(op.InputsAsNumpy()[0]) == i]
    shape, scale = g.tensors[i].shape, np.float32(q.scale)
    size = int(np.prod(shape))
    if trial == 0:
        steps = np.resize(np.arange(-280, 280), size) * 0.5 - q.zp
    elif trial == 1:
        steps = rng.choice(np.array([-1e6, 1e6, -0.5, 0.5, 0.0, -200.0, 200.0]), size) - q.zp
    else:
        steps = rng.uniform(-136, 135, size) - q.zp
    return (steps * scale).astype(np.float32).reshape(shape)


def _inputs(g: Graph, rng: np.random.Generator, trial: int) -> list[np.ndarray]:
    """Trial 0 sweeps all 256 int8 values (tiled), trial 1 the extremes, the rest are uniform random
    (float32 inputs: see ``_float_input``)."""
    arrays = []
    for k, i in enumerate(g.inputs):
        shape = g.tensors[i].shape
        size = int(np.prod(shape))
        if g.tensors[i].dtype == np.float32:
            arrays.append(_float_input(g, i, rng, trial))
            continue
        if trial == 0:
            flat = np.resize(np.roll(np.arange(-128, 128), 37 * k), size)
        elif trial == 1:
            flat = rng.choice(np.array([-128, -127, 126, 127, 0, g.tensors[i].zp]), size)
        else:
            flat = rng.integers(-128, 128, size)
        arrays.append(flat.astype(np.int8).reshape(shape))
    return arrays


def _seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def compare(name: str, data: bytes, trials: int, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Run TFLM and the reference on ``trials`` inputs; fail on the first differing byte."""
    g = Graph(data)
    seen = []
    for trial in range(trials):
        inputs = _inputs(g, rng, trial)
        try:
            expected = run_tflm_outputs(data, inputs)
        except RuntimeError as exc:  # TFLM refused the model in Prepare: the reference must refuse it too
            with pytest.raises(ValueError):
                run_reference(g, inputs)
            return [[np.array(str(exc))]]
        got, names = run_reference(g, inputs)
        assert names == MANIFEST[name]["ops"]
        assert len(got) == len(expected)
        for k, (e, r) in enumerate(zip(expected, got, strict=True)):
            assert e.dtype == r.dtype and e.shape == r.shape, (k, e.dtype, r.dtype, e.shape, r.shape)
            if not np.array_equal(e, r):
                bad = np.argwhere(e != r)
                pytest.fail(f"{name} trial {trial} output {k}: {len(bad)} of {e.size} differ, first at "
                            f"{tuple(bad[0])}: TFLM {e[tuple(bad[0])]} reference {r[tuple(bad[0])]}")
        seen.append(expected)
    return seen


def check_fixture(name: str, trials: int) -> None:
    data = (OPS_DIR / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == MANIFEST[name]["sha256"], "fixture differs from MANIFEST.json"
    seen = compare(name, data, trials, np.random.default_rng(_seed(name)))
    for k in range(len(seen[0])):
        values = np.concatenate([s[k].reshape(-1) for s in seen])
        assert np.unique(values).size > 1, f"output {k} is one value in every trial: the test would hide a bug"


# ---- the same models with other quantisation parameters -------------------------------------------

def _groups(g: Graph) -> dict[int, int]:
    """Tensors whose qparams TFLM requires to be equal (CONCATENATION, PADV2's constant) share a root."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for name, op in g.operators():
        idx = [int(i) for i in op.InputsAsNumpy()] + [int(i) for i in op.OutputsAsNumpy()]
        if name == "CONCATENATION":
            tied = idx
        elif name == "PADV2":
            tied = [idx[2], idx[3]]
        else:
            continue
        for i in tied[1:]:
            parent[root(i)] = root(tied[0])
    return {i: root(i) for i in range(len(g.tensors))}


def perturbed(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` with new activation scales (x0.3 .. x3) and zero points, and a new LEAKY_RELU alpha.

    The flatbuffer is edited in place: the scale and zero-point vectors are numpy views of the bytes.
    """
    buf = bytearray(data)
    g = Graph(bytes(buf))
    model = tflite.Model.GetRootAsModel(buf, 0)
    sub = model.Subgraphs(0)
    pinned = set()  # LOGISTIC's output zero point must stay -128
    for name, op in g.operators():
        if name == "LOGISTIC":
            pinned.update(int(i) for i in op.OutputsAsNumpy())
        if name == "LEAKY_RELU":
            table = op.BuiltinOptions()
            opts = tflite.LeakyReluOptions()
            opts.Init(table.Bytes, table.Pos)
            field = opts._tab.Offset(4)
            if field:
                np.frombuffer(buf, np.float32, 1, opts._tab.Pos + field)[0] = rng.uniform(-1.5, 1.5)
    roots = _groups(g)
    tied = {r for i, r in roots.items() if i != r}
    new = {}
    for i, t in enumerate(g.tensors):
        if t.dtype != np.int8 or not t.scales.size or t.scales.size > 1:
            continue
        if t.data is not None and roots[i] == i and i not in tied:
            continue  # weights and constants keep their qparams unless tied to an activation
        r = roots[i]
        if r not in new:
            new[r] = (np.float32(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))), int(rng.integers(-128, 128)))
        factor, zp = new[r]
        q = sub.Tensors(i).Quantization()
        q.ScaleAsNumpy()[0] = np.float32(g.tensors[r].scales[0] * factor)
        if i not in pinned:
            q.ZeroPointAsNumpy()[0] = zp
    return bytes(buf)


def check_perturbed(name: str, variants: int, trials: int) -> None:
    data = (OPS_DIR / name).read_bytes()
    rng = np.random.default_rng(_seed(name) + 1)
    for _ in range(variants):
        compare(name, perturbed(data, rng), trials, rng)


ALL_FIXTURES = sorted(MANIFEST)
#: the int8 fixtures this reference covers (the 16x8 ``i16_*`` ones are checked against TFLM through the
#: compiler's own reference, test_tflite_frontend.py and test_int16x8.py)
FIXTURE_NAMES = [n for n in ALL_FIXTURES if MANIFEST[n]["attributes"].get("mode") != "int16x8"]


def test_manifest_lists_every_fixture() -> None:
    assert sorted(p.name for p in OPS_DIR.glob("*.tflite")) == ALL_FIXTURES
    assert sum((OPS_DIR / n).stat().st_size for n in ALL_FIXTURES) < 1_500_000
    assert len(ALL_FIXTURES) - len(FIXTURE_NAMES) >= 24  # the 16x8 ones


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reference_matches_tflm(name: str) -> None:
    check_fixture(name, trials=6)


@pytest.mark.slow
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reference_matches_tflm_many_inputs(name: str) -> None:
    check_fixture(name, trials=60)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reference_matches_tflm_other_qparams(name: str) -> None:
    check_perturbed(name, variants=4, trials=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reference_matches_tflm_many_qparams(name: str) -> None:
    check_perturbed(name, variants=60, trials=4)


def test_every_operator_is_covered() -> None:
    covered = {op for entry in MANIFEST.values() for op in entry["ops"]}
    wanted = {"RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "QUANTIZE", "PRELU", "ADD", "SUB",
              "MUL", "MAXIMUM", "MINIMUM", "TRANSPOSE", "CONCATENATION", "SPLIT", "SPLIT_V", "SLICE",
              "STRIDED_SLICE", "PACK", "UNPACK", "PAD", "PADV2", "MIRROR_PAD", "RESHAPE", "RESIZE_NEAREST_NEIGHBOR",
              "RESIZE_BILINEAR", "TRANSPOSE_CONV", "DEPTHWISE_CONV_2D", "MEAN", "SUM", "ARG_MAX", "BATCH_MATMUL",
              "DEQUANTIZE"}
    assert wanted <= covered, wanted - covered


def test_comparison_catches_single_rounding(monkeypatch) -> None:
    """The comparison is sharp enough to tell TFLM's double rounding from single rounding."""
    def single_rounding(x, multiplier, shift):
        total = 31 - np.asarray(shift, np.int64)
        return (fp.wrap_int32(x) * np.asarray(multiplier, np.int64) + (np.int64(1) << (total - 1))) >> total

    monkeypatch.setattr(ops, "_mbqm", single_rounding)
    with pytest.raises(pytest.fail.Exception, match="differ"):
        check_fixture("mean_hw.tflite", trials=6)


# ---- refusals and helpers -------------------------------------------------------------------------

def test_refusals_raise_value_error() -> None:
    x = np.zeros((1, 2, 2, 1), np.int8)
    with pytest.raises(ValueError, match="zero point"):
        ops.concatenation([x, x], 3, [0.1, 0.2], [0, 0], 0.1, 0)
    with pytest.raises(ValueError, match="align_corners"):
        ops.resize_bilinear(x, (4, 4), align_corners=True, half_pixel_centers=True)
    with pytest.raises(ValueError, match="-128"):
        ops.logistic(x, 0.1, 0, out_zp=0)
    with pytest.raises(ValueError, match="ellipsis"):
        ops.strided_slice(x, [0] * 4, [1] * 4, [1] * 4, ellipsis_mask=1)
    with pytest.raises(ValueError, match="non-zero"):
        ops.strided_slice(x, [0] * 4, [1] * 4, [1, 0, 1, 1])
    with pytest.raises(ValueError, match="HARD_SWISH"):
        ops.hard_swish(x, 1.0, 0, 0.001, 0)
    with pytest.raises(ValueError, match="5 dimensions"):
        ops.transpose(np.zeros((1,) * 6, np.int8), range(6))
    with pytest.raises(ValueError, match="SmallerThanOne"):
        ops.add(x, x, 1.0, 0, 1.0, 0, 1e-7, 0)


def test_signed_multiplier_matches_positive_one() -> None:
    rng = np.random.default_rng(3)
    for real in rng.uniform(1e-6, 0.999, 200):
        assert fp.quantize_multiplier_signed(real) == fp.quantize_multiplier(real)
        m, s = fp.quantize_multiplier_signed(-real)
        assert (-m, s) == fp.quantize_multiplier(real)


def test_fixed_point_logistic_and_tanh_are_close_to_float() -> None:
    raw = np.linspace(-(1 << 31) + 1, (1 << 31) - 1, 4001).astype(np.int64)
    real = raw / float(1 << 27)  # Q4.27
    assert np.abs(fp.fixed_logistic(raw, 4) / 2.0**31 - 1 / (1 + np.exp(-real))).max() < 1e-6
    assert np.abs(fp.fixed_tanh(raw, 4) / 2.0**31 - np.tanh(real)).max() < 1e-6
