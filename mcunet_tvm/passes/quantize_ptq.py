"""QuantizePTQ: turn a float NCHW Relax graph into the TFLite-style QDQ form, in NHWC.

Given calibrated activation ranges, every operator is re-emitted between
``dequantize`` and ``quantize`` exactly as TVM's TFLite importer would emit
a full-integer model (so one lowering pass serves both frontends):

* activations int8, asymmetric, per tensor (range widened to contain 0);
* conv weights int8 symmetric per output channel, dense weights per tensor;
* bias int32 with scale ``s_in * s_w`` and zero point 0;
* a ReLU/ReLU6 after conv/dense (+bias) is fused: its range sets the output
  scale and it becomes a ``clip`` in the quantised domain;
* pools and reshapes keep their input's scale, softmax outputs 1/256, -128.

Layouts change from NCHW/OIHW to NHWC/HWIO on the way, so the quantised
model's input is an int8 NHWC tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from .rewrite_util import module_pass

QMIN, QMAX = -128, 127


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """TFLite asymmetric int8 parameters for the range [lo, hi] (widened to include 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32((hi - lo) / 255.0)) if hi > lo else 1.0 / 255.0
    zp = int(np.clip(round(QMIN - lo / scale), QMIN, QMAX))
    return scale, zp


def _op(expr) -> str:
    return expr.op.name if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) else ""


def _const(expr) -> np.ndarray | None:
    return expr.value.numpy() if isinstance(expr, tvm.ir.expr.Constant) else None


def _f32(values) -> relax.Expr:
    return relax.const(np.asarray(values, np.float32))


def _i32(value) -> relax.Expr:
    return relax.const(np.asarray(value, np.int32))


@dataclass
class _Pending:
    """A conv/dense whose bias and activation may still be fused."""

    kind: str  # "conv" | "dense"
    x: relax.Var
    weight: np.ndarray
    attrs: object = None
    bias: np.ndarray | None = None
    act: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class _Q:
    """A quantised tensor in the new graph."""

    expr: relax.Expr
    scale: float
    zp: int


class _Quantizer:
    def __init__(self, mod: tvm.IRModule, ranges: dict[str, tuple[float, float]]) -> None:
        self.func = mod["main"]
        self.ranges = ranges
        self.bindings = [(b.var, b.value) for blk in self.func.body.blocks for b in blk.bindings]
        self.uses: dict[relax.Var, int] = {}
        for _, value in self.bindings:
            for v in relax.analysis.free_vars(value):
                self.uses[v] = self.uses.get(v, 0) + 1
        self.consts: dict[relax.Var, np.ndarray] = {}
        self.q: dict[relax.Var, _Q] = {}
        self.pending: dict[relax.Var, _Pending] = {}
        self.alias: dict[relax.Expr, relax.Expr] = {}
        self.tuples: dict[relax.Var, list[relax.Expr]] = {}
        self.bb = relax.BlockBuilder()

    # ---- helpers -------------------------------------------------------
    def value_const(self, expr) -> np.ndarray | None:
        c = _const(expr)
        return c if c is not None else self.consts.get(expr)

    def qparams(self, var: relax.Var) -> tuple[float, int]:
        if var.name not in self.ranges:
            raise UnsupportedModelError(f"no calibration range for '{var.name}'")
        return activation_qparams(*self.ranges[var.name])

    def error(self, var, value, why: str = "") -> UnsupportedModelError:
        return UnsupportedModelError(
            f"operator '{_op(value) or type(value).__name__}' cannot be quantised{': ' + why if why else ''}",
            where=f"{var.name} = {_op(value)}(...) in the exported PyTorch graph",
            hint="supported: conv2d (incl. depthwise), batch-norm after conv, ReLU/ReLU6, add, "
            "mean/adaptive average pool to 1x1, average/max pool, linear, flatten, softmax",
        )

    def dq(self, t: _Q) -> relax.Expr:
        return self.bb.emit(relax.op.dequantize(t.expr, _f32(t.scale), _i32(t.zp), axis=0))

    def quantize(self, var: relax.Var, expr: relax.Expr, act=None) -> None:
        scale, zp = self.qparams(var)
        out = self.bb.emit(relax.op.quantize(expr, _f32(scale), _i32(zp), axis=0, out_dtype="int8"))
        if act is not None:
            lo = max(QMIN, zp + round(act[0] / scale))
            hi = QMAX if math.isinf(act[1]) else min(QMAX, zp + round(act[1] / scale))
            if (lo, hi) != (QMIN, QMAX):
                out = self.bb.emit(relax.op.clip(out, float(lo), float(hi)))
        self.q[var] = _Q(out, scale, zp)

    def get(self, var: relax.Var, user_var, user) -> _Q:
        while var in self.alias:
            var = self.alias[var]
        if var in self.pending:
            self.finish(var)
        if var not in self.q:
            raise self.error(user_var, user, f"input '{getattr(var, 'name', var)}' is not a quantisable tensor")
        return self.q[var]

    # ---- conv / dense --------------------------------------------------
    def finish(self, var: relax.Var) -> None:
        p = self.pending.pop(var)
        x = self.q[p.x]
        if p.kind == "conv":
            self.emit_conv(var, p, x)
        else:
            self.emit_dense(var, p, x)

    def emit_conv(self, var, p: _Pending, x: _Q) -> None:
        w = p.weight.astype(np.float64)  # OIHW
        cout, cin_g = w.shape[:2]
        groups = int(p.attrs.groups)
        w_scale = np.maximum(np.abs(w).reshape(cout, -1).max(axis=1), 1e-12) / 127.0
        w_scale = w_scale.astype(np.float32)
        wq = np.clip(np.round(w / w_scale.astype(np.float64).reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        if groups == 1:
            kernel, layout, axis = wq.transpose(2, 3, 1, 0), "HWIO", 3
        elif cin_g == 1 and groups == cout:
            kernel, layout, axis = wq[:, 0].transpose(1, 2, 0)[..., None], "HWOI", 2
        else:
            raise UnsupportedModelError(f"grouped convolution (groups={groups}) is not supported", where=var.name)
        dq_w = self.bb.emit(relax.op.dequantize(relax.const(np.ascontiguousarray(kernel)), _f32(w_scale),
                                                _i32(0), axis=axis))
        conv = self.bb.emit(relax.op.nn.conv2d(
            self.dq(x), dq_w, strides=p.attrs.strides, padding=p.attrs.padding, dilation=p.attrs.dilation,
            groups=groups, data_layout="NHWC", kernel_layout=layout, out_dtype="float32"))
        out = self.add_bias(conv, p, x.scale, w_scale, cout)
        self.quantize(var, out, p.act)

    def emit_dense(self, var, p: _Pending, x: _Q) -> None:
        w = p.weight.astype(np.float64)  # (Out, In)
        w_scale = np.float32(max(np.abs(w).max(), 1e-12) / 127.0)
        wq = np.clip(np.round(w / np.float64(w_scale)), -127, 127).astype(np.int8)
        dq_w = self.bb.emit(relax.op.dequantize(relax.const(np.ascontiguousarray(wq.T)), _f32(w_scale),
                                                _i32(0), axis=1))
        mm = self.bb.emit(relax.op.matmul(self.dq(x), dq_w, out_dtype="float32"))
        out = self.add_bias(mm, p, x.scale, np.full(w.shape[0], w_scale, np.float32), w.shape[0])
        self.quantize(var, out, p.act)

    def add_bias(self, acc, p: _Pending, in_scale: float, w_scale: np.ndarray, n: int) -> relax.Expr:
        if p.bias is None:
            return acc
        bias_scale = (np.float32(in_scale) * w_scale).astype(np.float32)
        bq = np.round(p.bias.astype(np.float64).reshape(n) / bias_scale.astype(np.float64))
        bq = np.clip(bq, -(2**31), 2**31 - 1).astype(np.int32)
        dq_b = self.bb.emit(relax.op.dequantize(relax.const(bq), _f32(bias_scale), _i32(0), axis=0))
        return self.bb.emit(relax.op.add(acc, dq_b))

    # ---- the walk ------------------------------------------------------
    def visit(self, var: relax.Var, value: relax.Expr) -> None:
        name = _op(value)
        args = list(value.args) if isinstance(value, relax.Call) else []
        if name in ("relax.permute_dims", "relax.reshape") and self.value_const(args[0]) is not None:
            base = self.value_const(args[0])
            if name == "relax.permute_dims":
                self.consts[var] = np.transpose(base, [int(a) for a in value.attrs.axes])
            else:
                self.consts[var] = base.reshape([int(d) for d in var.ty.shape])
            return
        if name == "relax.nn.conv2d":
            w = self.value_const(args[1])
            if w is None or str(value.attrs.data_layout) != "NCHW" or str(value.attrs.kernel_layout) != "OIHW":
                raise self.error(var, value, "expected NCHW conv2d with constant OIHW weights")
            self.get(args[0], var, value)
            self.pending[var] = _Pending("conv", args[0], w, value.attrs)
            return
        if name == "relax.matmul":
            w = self.value_const(args[1])
            if w is None:
                raise self.error(var, value, "expected a constant weight")
            self.get(args[0], var, value)
            self.pending[var] = _Pending("dense", args[0], np.ascontiguousarray(w.T))
            return
        if name == "relax.add":
            for a, b in ((args[0], args[1]), (args[1], args[0])):
                bias = self.value_const(b)
                if a in self.pending and bias is not None and self.uses.get(a) == 1 \
                        and self.pending[a].bias is None and self.pending[a].act is None:
                    self.pending[var] = self.pending.pop(a)
                    self.pending[var].bias = bias
                    return
            qa, qb = self.get(args[0], var, value), self.get(args[1], var, value)
            self.quantize(var, self.bb.emit(relax.op.add(self.dq(qa), self.dq(qb))))
            return
        if name in ("relax.clip", "relax.nn.relu", "relax.nn.relu6"):
            if name == "relax.clip":
                act = (float(args[1].value), float(args[2].value))
            else:
                act = (0.0, 6.0 if name == "relax.nn.relu6" else math.inf)
            src = args[0]
            if src in self.pending and self.uses.get(src) == 1 and self.pending[src].act is None:
                self.pending[var] = self.pending.pop(src)
                self.pending[var].act = act
                return
            raise self.error(var, value, "activations are only supported right after conv2d/linear")
        if name in ("relax.mean", "relax.nn.adaptive_avg_pool2d"):
            x = self.get(args[0], var, value)
            if name == "relax.mean":
                axes = sorted(int(a) % 4 for a in value.attrs.axis)
                keep = bool(value.attrs.keepdims)
            else:
                axes, keep = [2, 3], True
                if [int(d) for d in var.ty.shape[2:]] != [1, 1]:
                    raise self.error(var, value, "only adaptive average pooling to 1x1")
            if axes != [2, 3]:
                raise self.error(var, value, "only the mean over H and W")
            mean = self.bb.emit(relax.op.mean(self.dq(x), axis=[1, 2], keepdims=keep))
            self.quantize(var, mean)
            return
        if name in ("relax.nn.avg_pool2d", "relax.nn.max_pool2d"):
            x = self.get(args[0], var, value)
            a = value.attrs
            kwargs = dict(pool_size=a.pool_size, strides=a.strides, padding=a.padding, dilation=a.dilation,
                          ceil_mode=bool(a.ceil_mode), layout="NHWC")
            if name == "relax.nn.max_pool2d":
                out = self.bb.emit(relax.op.nn.max_pool2d(x.expr, **kwargs))
            else:
                wide = self.bb.emit(relax.op.astype(x.expr, "int32"))
                pooled = self.bb.emit(relax.op.nn.avg_pool2d(wide, count_include_pad=False, **kwargs))
                out = self.bb.emit(relax.op.astype(pooled, "int8"))
            self.q[var] = _Q(out, x.scale, x.zp)
            return
        if name in ("relax.reshape", "relax.flatten"):
            x = self.get(args[0], var, value)
            src_shape = [int(d) for d in args[0].ty.shape]
            dst = [int(d) for d in var.ty.shape]
            if len(src_shape) == 4 and src_shape[2:] != [1, 1] and len(dst) != 4:
                raise self.error(var, value, "flattening a feature map with H, W > 1 (layout-dependent)")
            self.q[var] = _Q(self.bb.emit(relax.op.reshape(x.expr, dst)), x.scale, x.zp)
            return
        if name == "relax.nn.pad":
            x = self.get(args[0], var, value)
            a = value.attrs
            if str(a.pad_mode) != "constant" or float(a.pad_value) != 0.0:
                raise self.error(var, value, "only zero padding")
            n0, n1, c0, c1, h0, h1, w0, w1 = (int(v) for v in a.pad_width)
            out = self.bb.emit(relax.op.nn.pad(x.expr, [n0, n1, h0, h1, w0, w1, c0, c1], pad_value=float(x.zp)))
            self.q[var] = _Q(out, x.scale, x.zp)
            return
        if name == "relax.nn.softmax":
            x = self.get(args[0], var, value)
            sm = self.bb.emit(relax.op.nn.softmax(self.dq(x), axis=-1))
            out = self.bb.emit(relax.op.quantize(sm, _f32(1.0 / 256.0), _i32(-128), axis=0, out_dtype="int8"))
            self.q[var] = _Q(out, 1.0 / 256.0, -128)
            return
        if isinstance(value, relax.Var):
            self.alias[var] = value
            return
        if isinstance(value, relax.Tuple):
            self.tuples[var] = list(value.fields)
            return
        if isinstance(value, relax.TupleGetItem) and value.tuple_value in self.tuples:
            self.alias[var] = self.tuples[value.tuple_value][value.index]
            return
        if name == "relax.zeros_like":
            return  # e.g. the unused "indices" output of an exported max_pool2d; an error only if used
        raise self.error(var, value)

    def run(self) -> tvm.IRModule:
        param = self.func.params[0]
        n, c, h, w = (int(d) for d in param.ty.shape)
        new_input = relax.Var("input", relax.TensorType((n, h, w, c), "int8"))
        scale, zp = activation_qparams(*self.ranges[param.name])
        self.q[param] = _Q(new_input, scale, zp)
        with self.bb.function("main", [new_input]):
            with self.bb.dataflow():
                for var, value in self.bindings:
                    self.visit(var, value)
                out = self.func.body.body
                while out in self.alias or out in self.tuples:
                    out = self.alias[out] if out in self.alias else self.tuples[out][0]
                if isinstance(out, relax.Tuple):
                    out = out.fields[0]
                result = self.get(out, out, out)
                gv = self.bb.emit_output(result.expr)
            self.bb.emit_func_output(gv)
        return self.bb.get()


def quantize_ptq(mod: tvm.IRModule, ranges: dict[str, tuple[float, float]]) -> tvm.IRModule:
    """The QDQ NHWC form of the float ``main`` of ``mod`` (batch-norm already folded)."""
    return _Quantizer(mod, ranges).run()


def QuantizePTQ(ranges: dict[str, tuple[float, float]]) -> tvm.transform.Pass:  # noqa: N802
    """Pass form of :func:`quantize_ptq`."""
    return module_pass(lambda mod: quantize_ptq(mod, ranges), "mcunet.QuantizePTQ")
