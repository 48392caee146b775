"""LowerQDQToInteger: rewrite QDQ Relax graphs into integer kernel calls.

Both frontends produce *QDQ* graphs: float operators sandwiched between
``dequantize`` and ``quantize`` (TVM's TFLite importer, and our own PTQ for
PyTorch). This pass finds each ``quantize`` and matches the float subgraph
that feeds it against TFLite's integer operators::

    quantize(add(conv2d(dq(x), dq(W)), dq(bias)))        -> Conv2D (+ clip)
    quantize(add(matmul(dq(x), dq(W^T)), dq(bias)))      -> Dense
    quantize(add(dq(a), dq(b)))                          -> Add
    quantize(mean(dq(x), axis=[1, 2]))                   -> Mean
    quantize(softmax(dq(x)))                             -> Softmax
    astype(avg_pool2d(astype(x, int32)), int8)           -> Pool2D avg
    max_pool2d(x) / reshape(x) / pad(x) on int8          -> Pool2D max / Reshape / Pad

and emits ``R.call_tir`` to a generated TIR kernel (see ``mcunet_tvm.kernels``)
with int8/int32 constants computed with TFLite's fixed-point rules. A
``clip`` on the quantised result becomes the kernel's activation clamp.
Anything that does not match is an error naming the operator: there is no
float fallback on a microcontroller.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from ..ir import INPUT_QPARAMS, emit_call
from ..kernels import KernelChoice
from ..ops import OpDesc, Pad, Pool2D, Reshape
from ..quant import int8_ops
from ..quant.int8_ops import QParams
from .rewrite_util import module_pass

SUPPORTED = (
    "conv2d (kernels 1-7, stride 1/2, groups 1 or depthwise), dense/fully-connected, "
    "add (residual), average/max pool, mean over H,W (global average pool), softmax, "
    "reshape/flatten, pad"
)


#: operators on int8 tensors whose output has the input's scale and zero point
_SAME_QPARAMS = ("relax.nn.pad", "relax.reshape", "relax.nn.max_pool2d", "relax.nn.avg_pool2d", "relax.astype")


def _op_name(expr: relax.Expr) -> str:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return str(expr.op.name)
    return ""


def _const(expr: relax.Expr) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.expr.Constant):
        return expr.value.numpy()
    return None


def _ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _shape(expr: relax.Expr) -> tuple[int, ...]:
    return _ints(expr.ty.shape)


class _Lowering:
    """Walks the bindings of ``main`` once, emitting the integer graph."""

    def __init__(self, mod: tvm.IRModule) -> None:
        self.mod = mod
        self.func: relax.Function = mod["main"]
        self.bindings: dict[relax.Var, relax.Expr] = {}
        self.users: dict[relax.Var, int] = {}
        self.bb = relax.BlockBuilder()
        # old int8 var -> new var, and the op that produced it (for clip fusion)
        self.env: dict[relax.Var, relax.Expr] = {}
        self.emitted: dict[relax.Var, tuple[OpDesc, list[relax.Expr], KernelChoice]] = {}
        self.index = 0
        #: vars computed from constants only (weights being reshaped/transposed)
        self.const_vars: set[relax.Var] = set()

    # ---- graph helpers -------------------------------------------------
    def producer(self, expr: relax.Expr) -> relax.Expr:
        while isinstance(expr, relax.Var) and expr in self.bindings:
            expr = self.bindings[expr]
        return expr

    def dq(self, expr: relax.Expr) -> tuple[relax.Expr, float, int] | None:
        """If ``expr`` is dequantize(v) of a per-tensor int8 value: (v, scale, zp)."""
        call = self.producer(expr)
        if _op_name(call) != "relax.dequantize":
            return None
        scale, zp = _const(call.args[1]), _const(call.args[2])
        if scale is None or zp is None or scale.size != 1:
            return None
        return call.args[0], float(np.float32(scale.reshape(-1)[0])), int(zp.reshape(-1)[0])

    def const_dq(self, expr: relax.Expr) -> tuple[np.ndarray, np.ndarray] | None:
        """If ``expr`` is dequantize of a constant (maybe reshaped/transposed): (values, scales)."""
        call = self.producer(expr)
        transforms = []
        while _op_name(call) in ("relax.reshape", "relax.permute_dims"):
            transforms.append(call)
            call = self.producer(call.args[0])
        if _op_name(call) != "relax.dequantize":
            return None
        values = _const(self.producer(call.args[0]))
        inner = self.producer(call.args[0])
        if values is None and _op_name(inner) == "relax.permute_dims":
            base = _const(self.producer(inner.args[0]))
            if base is not None:
                values = np.transpose(base, _ints(inner.attrs.axes))
        scales = _const(call.args[1])
        if values is None or scales is None:
            return None
        for t in reversed(transforms):
            if _op_name(t) == "relax.reshape":
                values = values.reshape(_shape(t))
            else:
                values = np.transpose(values, _ints(t.attrs.axes))
        return values, scales.astype(np.float32).reshape(-1)

    def int_input(self, old: relax.Expr, where: str) -> relax.Expr:
        if old in self.env:
            return self.env[old]
        if isinstance(old, relax.Var) and any(old.same_as(p) for p in self.func.params):
            return old
        raise UnsupportedModelError(
            "an operator input is not an int8 tensor produced by a supported operator",
            where=where,
            hint=f"supported operators: {SUPPORTED}",
        )

    def error(self, call: relax.Expr, where: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"operator '{_op_name(call) or type(call).__name__}' cannot be lowered to integer kernels",
            where=where,
            hint=f"supported operators: {SUPPORTED}. Quantise the whole model to int8 "
            "(full-integer) using only these operators.",
        )

    # ---- emission ------------------------------------------------------
    def emit(self, old_var: relax.Var, op: OpDesc, inputs: list[relax.Expr], consts: list[np.ndarray],
             choice: KernelChoice | None = None) -> None:
        choice = choice or KernelChoice()
        if isinstance(op, Reshape):
            new = self.bb.emit(relax.op.reshape(inputs[0], op.out_shape))
        else:
            self.index += 1
            new = emit_call(self.bb, f"k{self.index}_{op.kind}", op, inputs, consts, choice)
        self.env[old_var] = new
        self.emitted[old_var] = (op, [*inputs, *consts], choice)

    # ---- patterns ------------------------------------------------------
    def lower_quantize(self, var: relax.Var, call: relax.Call) -> None:
        where = f"{var.name} = {_op_name(call)}(...)"
        out_scale = float(np.float32(_const(call.args[1]).reshape(-1)[0]))
        out_zp = int(_const(call.args[2]).reshape(-1)[0])
        src = self.producer(call.args[0])
        name = _op_name(src)
        bias = None
        if name == "relax.add":
            lhs, rhs = self.producer(src.args[0]), self.producer(src.args[1])
            if _op_name(lhs) in ("relax.nn.conv2d", "relax.matmul"):
                bias, src = self.const_dq(src.args[1]), lhs
            elif _op_name(rhs) in ("relax.nn.conv2d", "relax.matmul"):
                bias, src = self.const_dq(src.args[0]), rhs
            else:
                return self.lower_add(var, src, out_scale, out_zp, where)
            name = _op_name(src)
        if name == "relax.nn.conv2d":
            return self.lower_conv(var, src, bias, out_scale, out_zp, where)
        if name == "relax.matmul":
            return self.lower_dense(var, src, bias, out_scale, out_zp, where)
        if name == "relax.mean":
            return self.lower_mean(var, src, out_scale, out_zp, where)
        if name == "relax.nn.softmax":
            return self.lower_softmax(var, src, out_scale, out_zp, where)
        if name == "relax.reshape":
            x = self.dq(src.args[0])
            if x is not None:
                inp = self.int_input(x[0], where)
                return self.emit(var, Reshape(_shape(inp), _shape(src)), [inp], [])
        raise self.error(src, where)

    def lower_conv(self, var, conv, bias, out_scale, out_zp, where) -> None:
        x = self.dq(conv.args[0])
        w = self.const_dq(conv.args[1])
        attrs = conv.attrs
        if x is None or w is None:
            raise self.error(conv, where + " (conv2d inputs are not dequantised int8 tensors)")
        if str(attrs.data_layout) != "NHWC":
            raise self.error(conv, where + f" (layout {attrs.data_layout}, expected NHWC)")
        inp = self.int_input(x[0], where)
        in_shape, out_shape = _shape(inp), _shape(conv)
        values, scales = w
        layout = str(attrs.kernel_layout)
        groups = int(attrs.groups)
        cin, cout = in_shape[3], out_shape[3]
        hwio = np.transpose(values, [layout.index(c) for c in "HWIO"])
        depthwise = groups > 1
        if depthwise and not (groups == cin == cout):
            raise self.error(conv, where + f" (grouped conv with groups={groups} is not depthwise)")
        if depthwise:
            weight = hwio.reshape(hwio.shape[0], hwio.shape[1], cout)
        else:
            weight = np.transpose(hwio, (3, 0, 1, 2))
        lowered = int8_ops.conv2d(
            in_shape, out_shape, QParams(x[1], x[2]), QParams(out_scale, out_zp), weight, scales,
            None if bias is None else bias[0], strides=_ints(attrs.strides), padding=_ints(attrs.padding),
            dilation=_ints(attrs.dilation), depthwise=depthwise,
        )
        self.emit(var, lowered.op, [inp], lowered.consts, lowered.choice)

    def lower_dense(self, var, mm, bias, out_scale, out_zp, where) -> None:
        x = self.dq(mm.args[0])
        w = self.const_dq(mm.args[1])
        if x is None or w is None:
            raise self.error(mm, where + " (matmul operands are not int8 activation x int8 const)")
        inp = self.int_input(x[0], where)
        values, scales = w  # (In, Out)
        lowered = int8_ops.dense(_shape(inp), _shape(mm), QParams(x[1], x[2]), QParams(out_scale, out_zp),
                                 values.T, scales, None if bias is None else bias[0])
        self.emit(var, lowered.op, [inp], lowered.consts, lowered.choice)

    def lower_add(self, var, add, out_scale, out_zp, where) -> None:
        a, b = self.dq(add.args[0]), self.dq(add.args[1])
        if a is None or b is None:
            raise self.error(add, where + " (add operands are not dequantised int8 tensors)")
        ia, ib = self.int_input(a[0], where), self.int_input(b[0], where)
        if _shape(ia) != _shape(ib):
            raise self.error(add, where + f" (broadcasting add {_shape(ia)} + {_shape(ib)})")
        lowered = int8_ops.add(_shape(ia), _shape(add), QParams(a[1], a[2]), QParams(b[1], b[2]),
                               QParams(out_scale, out_zp))
        self.emit(var, lowered.op, [ia, ib], [])

    def lower_mean(self, var, mean, out_scale, out_zp, where) -> None:
        x = self.dq(mean.args[0])
        axes = sorted(int(a) % 4 for a in mean.attrs.axis) if mean.attrs.axis is not None else []
        if x is None or axes != [1, 2]:
            raise self.error(mean, where + " (only the mean over H and W of an NHWC tensor)")
        inp = self.int_input(x[0], where)
        lowered = int8_ops.mean_hw(_shape(inp), _shape(mean), QParams(x[1], x[2]), QParams(out_scale, out_zp))
        self.emit(var, lowered.op, [inp], [])

    def lower_softmax(self, var, sm, out_scale, out_zp, where) -> None:
        x = self.dq(sm.args[0])
        if x is None or int(sm.attrs.axis) not in (-1, len(_shape(sm)) - 1):
            raise self.error(sm, where + " (softmax over the last axis of an int8 tensor)")
        if not (math.isclose(out_scale, 1 / 256) and out_zp == -128):
            raise self.error(sm, where + " (int8 softmax output must have scale 1/256, zero point -128)")
        inp = self.int_input(x[0], where)
        lowered = int8_ops.softmax(_shape(inp), _shape(sm), QParams(x[1], x[2]), QParams(out_scale, out_zp))
        self.emit(var, lowered.op, [inp], [])

    def lower_int8_op(self, var: relax.Var, call: relax.Call) -> bool:
        """Operators applied directly to int8 tensors. True if handled."""
        name = _op_name(call)
        where = f"{var.name} = {name}(...)"
        if name == "relax.clip":
            return self.fuse_clip(var, call, where)
        if name == "relax.nn.max_pool2d":
            inp = self.int_input(call.args[0], where)
            return self.emit_pool(var, call, inp, "max", where)
        if name == "relax.astype" and call.ty.dtype == "int8":
            pool = self.producer(call.args[0])
            if _op_name(pool) == "relax.nn.avg_pool2d":
                cast = self.producer(pool.args[0])
                if _op_name(cast) == "relax.astype":
                    inp = self.int_input(cast.args[0], where)
                    return self.emit_pool(var, pool, inp, "avg", where)
            raise self.error(pool, where)
        if name == "relax.reshape":
            inp = self.int_input(call.args[0], where)
            self.emit(var, Reshape(_shape(inp), _shape(call)), [inp], [])
            return True
        if name == "relax.nn.pad":
            inp = self.int_input(call.args[0], where)
            widths = _ints(call.attrs.pad_width)
            pads = tuple((widths[2 * i], widths[2 * i + 1]) for i in range(len(widths) // 2))
            if str(call.attrs.pad_mode) != "constant":
                raise self.error(call, where + f" (pad mode {call.attrs.pad_mode})")
            fill = round(float(call.attrs.pad_value))
            self.emit(var, Pad(_shape(inp), _shape(call), pads=pads, value=fill), [inp], [])
            return True
        return False

    def emit_pool(self, var, pool, inp, mode, where) -> bool:
        attrs = pool.attrs
        if str(attrs.layout) != "NHWC" or bool(attrs.ceil_mode):
            raise self.error(pool, where + " (pooling must be NHWC without ceil mode)")
        if mode == "avg" and bool(attrs.count_include_pad) and any(_ints(attrs.padding)):
            raise self.error(pool, where + " (average pooling counting padded taps)")
        op = Pool2D(
            _shape(inp),
            _shape(pool),
            mode=mode,
            pool=_ints(attrs.pool_size),
            strides=_ints(attrs.strides),
            padding=_ints(attrs.padding),
        )
        self.emit(var, op, [inp], [])
        return True

    def fuse_clip(self, var, call, where) -> bool:
        src = call.args[0]
        lo = max(-128, math.ceil(float(call.args[1].value)))
        hi = min(127, math.floor(float(call.args[2].value)))
        if src not in self.emitted:
            raise self.error(call, where + " (clip of a tensor that no supported operator produced)")
        op, args, choice = self.emitted[src]
        if not hasattr(op, "act_min"):
            raise self.error(call, where + f" (clip after '{op.kind}' cannot be fused)")
        if (lo, hi) == (op.act_min, op.act_max) or self.users.get(src, 0) > 1:
            if (lo, hi) != (op.act_min, op.act_max):
                raise self.error(call, where + " (clipped tensor is also used unclipped)")
            self.env[var] = self.env[src]
            self.emitted[var] = self.emitted[src]
            return True
        fused = type(op)(**{**op.__dict__, "act_min": max(lo, op.act_min), "act_max": min(hi, op.act_max)})
        n_in = fused.num_inputs
        self.emit(var, fused, list(args[:n_in]), list(args[n_in:]), choice)
        return True

    def input_qparams(self, func: relax.Function) -> tuple[float, int] | None:
        """(scale, zero point) of the model input: from the first dequantize reached from it
        through operators that keep the quantisation (pad, pools, reshape, casts)."""
        frontier = {func.params[0]}
        for var, value in self.bindings.items():
            if not isinstance(value, relax.Call) or not value.args or not any(
                value.args[0].same_as(f) for f in frontier
            ):
                continue
            if _op_name(value) == "relax.dequantize":
                found = self.dq(value)
                if found is not None:
                    return found[1], found[2]
            elif _op_name(value) in _SAME_QPARAMS:
                frontier.add(var)
        return None

    # ---- driver --------------------------------------------------------
    def run(self) -> tvm.IRModule:
        func = self.func
        if not isinstance(func.body, relax.SeqExpr):
            raise UnsupportedModelError("main function has no body to lower")
        for block in func.body.blocks:
            for binding in block.bindings:
                self.bindings[binding.var] = binding.value
                free = relax.analysis.free_vars(binding.value)
                for v in free:
                    self.users[v] = self.users.get(v, 0) + 1
                if all(v in self.const_vars for v in free):
                    self.const_vars.add(binding.var)
        for param in func.params:
            if param.ty.dtype != "int8":
                raise UnsupportedModelError(
                    f"model input '{param.name}' is {param.ty.dtype}, not int8",
                    hint="export a full-integer model (int8 input and output)",
                )
        attrs = {"global_symbol": "main"}
        in_qp = self.input_qparams(func)
        if in_qp is not None:
            attrs[INPUT_QPARAMS] = [float(in_qp[0]), float(in_qp[1])]
        with self.bb.function("main", list(func.params), attrs=attrs):
            with self.bb.dataflow():
                for block in func.body.blocks:
                    for binding in block.bindings:
                        var, value = binding.var, binding.value
                        name = _op_name(value)
                        if var in self.const_vars:
                            continue
                        if isinstance(value, relax.Var) and value in self.env:
                            self.env[var] = self.env[value]
                            self.emitted[var] = self.emitted.get(value)
                            continue
                        if name == "relax.quantize":
                            self.lower_quantize(var, value)
                        elif value.ty.dtype == "int8" and not isinstance(value, tvm.ir.expr.Constant):
                            if not self.lower_int8_op(var, value):
                                raise self.error(value, f"{var.name} = {name}(...)")
                out_old = func.body.body
                if out_old not in self.env:
                    raise UnsupportedModelError(
                        "the model output is not an int8 tensor",
                        hint="export a full-integer model (int8 input and output)",
                    )
                out = self.bb.emit_output(self.env[out_old])
            self.bb.emit_func_output(out)
        lowered = self.bb.get()
        return relax.transform.DeadCodeElimination(["main"])(lowered)


def lower_qdq_to_integer(mod: tvm.IRModule) -> tvm.IRModule:
    """Rewrite the QDQ ``main`` of ``mod``; raises :class:`UnsupportedModelError`."""
    return _Lowering(mod).run()


def LowerQDQToInteger() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """The pass form of :func:`lower_qdq_to_integer`, for use in TVM pipelines."""
    return module_pass(lower_qdq_to_integer, "mcunet.LowerQDQToInteger")
