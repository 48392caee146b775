"""FoldBatchNorm: fold inference batch-norm into the preceding convolution.

Rewrites ``bn = batch_norm(conv2d(x, W), gamma, beta, mean, var); y = bn[0]``
(NCHW, constant parameters, training=False) into
``y = add(conv2d(x, W * k), beta - mean * k)`` with ``k = gamma / sqrt(var + eps)``
per output channel, so the network the quantiser sees has exactly one
weight tensor and one bias per convolution, as in TFLite.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .rewrite_util import Substitute, function_attrs, module_pass


def _const(expr) -> np.ndarray | None:
    return expr.value.numpy() if isinstance(expr, tvm.ir.expr.Constant) else None


def _const_through(expr, bindings) -> np.ndarray | None:
    """A constant, possibly reached through reshapes of a constant."""
    while isinstance(expr, relax.Var) and _is(bindings.get(expr), "relax.reshape"):
        expr = bindings[expr].args[0]
    return _const(expr)


def _is(expr, name: str) -> bool:
    return isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == name


def fold_batchnorm(mod: tvm.IRModule) -> tvm.IRModule:
    """Fold every foldable batch-norm of ``main``; others are left unchanged."""
    func = mod["main"]
    bindings = {b.var: b.value for block in func.body.blocks for b in block.bindings}
    uses: dict[relax.Var, int] = {}
    for value in bindings.values():
        for v in relax.analysis.free_vars(value):
            uses[v] = uses.get(v, 0) + 1

    # bn var -> (conv var, per-channel scale k, shift); the conv may carry a bias add
    folded: dict[relax.Var, tuple[relax.Var, np.ndarray, np.ndarray]] = {}
    skip: set[relax.Var] = set()
    for var, value in bindings.items():
        if not _is(value, "relax.nn.batch_norm") or int(value.attrs.axis) != 1:
            continue
        params = [_const(a) for a in value.args[1:5]]
        src, bias, chain = value.args[0], 0.0, [value.args[0]]
        if _is(bindings.get(src), "relax.add") and _const_through(bindings[src].args[1], bindings) is not None:
            bias = _const_through(bindings[src].args[1], bindings).reshape(-1).astype(np.float64)
            src = bindings[src].args[0]
            chain.append(src)
        conv = bindings.get(src)
        if conv is None or not _is(conv, "relax.nn.conv2d") or any(p is None for p in params):
            continue
        if any(uses.get(v, 0) != 1 for v in chain) or _const(conv.args[1]) is None:
            continue
        if str(conv.attrs.data_layout) != "NCHW" or str(conv.attrs.kernel_layout) != "OIHW":
            continue
        gamma, beta, mean, variance = (p.astype(np.float64) for p in params)
        k = gamma / np.sqrt(variance + float(value.attrs.epsilon))
        folded[var] = (src, k, beta + (bias - mean) * k)
        skip.update(chain)

    bb = relax.BlockBuilder()
    env: dict[relax.Var, relax.Expr] = {}

    def remap(expr: relax.Expr) -> relax.Expr:
        return Substitute(env).visit_expr(expr)

    attrs = function_attrs(func)
    with bb.function("main", list(func.params), attrs=attrs):
        with bb.dataflow():
            for var, value in bindings.items():
                if var in folded:
                    conv_var, k, shift = folded[var]
                    conv = bindings[conv_var]
                    w = _const(conv.args[1]).astype(np.float64) * k.reshape(-1, 1, 1, 1)
                    x = remap(conv.args[0])
                    new_conv = bb.emit(relax.op.nn.conv2d(
                        x, relax.const(w.astype(np.float32)), strides=conv.attrs.strides,
                        padding=conv.attrs.padding, dilation=conv.attrs.dilation, groups=conv.attrs.groups,
                        data_layout="NCHW", kernel_layout="OIHW", out_dtype="float32"))
                    bias = relax.const(shift.astype(np.float32).reshape(1, -1, 1, 1))
                    env[var] = relax.Tuple([bb.emit(relax.op.add(new_conv, bias))])
                    continue
                if var in env:
                    continue
                if isinstance(value, relax.TupleGetItem) and value.tuple_value in folded:
                    env[var] = env[value.tuple_value].fields[value.index]
                    continue
                if var in skip:
                    continue  # emitted with its folded weights at the batch-norm
                env[var] = bb.emit(remap(value))
            out = bb.emit_output(remap(func.body.body))
        bb.emit_func_output(out)
    return bb.get()


def FoldBatchNorm() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`fold_batchnorm`."""
    return module_pass(fold_batchnorm, "mcunet.FoldBatchNorm")
