"""A numpy executor of float Relax graphs, for calibration.

Runs ``main`` of a float NCHW module (the PyTorch import after batch-norm folding) binding by
binding and returns every float32 tensor it computes, keyed by variable name. It knows the
operators the quantiser accepts (``passes.quantize_ptq``): conv2d (NCHW/OIHW, any groups,
strides, padding, dilation), matmul, add, clip/relu/relu6, mean, 1x1 adaptive average pooling,
average/max pooling (NCHW), reshape/flatten/permute_dims, zero padding, softmax, and tuples.
Any other operator or attribute raises :class:`UnknownFloatOpError` (calibration then compiles the
graph with TVM instead), so this executor never decides what is supported.

Why: compiling the float graph with LLVM and loading it into a Relax VM costs 3-6 s of every
PyTorch build; these graphs run through numpy (BLAS for the convolutions) in well under that.
Results agree with TVM's to float32 rounding (summation order differs), which is all
calibration needs (min/max ranges); ``tests/test_float_exec.py`` checks the agreement.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax


class UnknownFloatOpError(Exception):
    """An operator or attribute this executor does not run."""


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _shape(var: relax.Expr) -> list[int]:
    dims = var.ty.shape
    if dims is None or not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
        raise UnknownFloatOpError(f"{var.name}: a shape not known at compile time")
    return _ints(dims)


def _windows(x: np.ndarray, kernel, strides, dilation, out_hw):
    """(tap (i, j), the NCHW slice of ``x`` that tap reads for every output pixel)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield (i, j), x[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]


def _pad_hw(x: np.ndarray, padding: list[int], value: float) -> np.ndarray:
    top, left, bottom, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _padding4(padding) -> list[int]:
    p = _ints(padding)
    return {1: p * 4, 2: p * 2, 4: p}[len(p)]


def _conv2d(x: np.ndarray, w: np.ndarray, attrs, out_shape: list[int]) -> np.ndarray:
    if str(attrs.data_layout) != "NCHW" or str(attrs.kernel_layout) != "OIHW":
        raise UnknownFloatOpError("conv2d layout")
    groups = int(attrs.groups)
    n, oc, oh, ow = out_shape
    xp = _pad_hw(x, _padding4(attrs.padding), 0.0)
    out = np.zeros((n, oc, oh, ow), np.float32)
    kernel, strides, dilation = w.shape[2:], _ints(attrs.strides), _ints(attrs.dilation)
    if groups == 1:
        for (i, j), xs in _windows(xp, kernel, strides, dilation, (oh, ow)):
            out += np.einsum("oc,nchw->nohw", w[:, :, i, j], xs, optimize=True)
        return out
    cg = x.shape[1] // groups
    grouped = out.reshape(n, groups, oc // groups, oh, ow)
    wg = w.reshape(groups, oc // groups, cg, *w.shape[2:])
    for (i, j), xs in _windows(xp, kernel, strides, dilation, (oh, ow)):
        xs = xs.reshape(n, groups, cg, oh, ow)
        if cg == 1:
            grouped += xs * wg[:, :, 0, i, j][None, :, :, None, None]
        else:
            grouped += np.einsum("goc,ngchw->ngohw", wg[:, :, :, i, j], xs, optimize=True)
    return out


def _pool2d(x: np.ndarray, attrs, out_shape: list[int], kind: str) -> np.ndarray:
    if str(attrs.layout) != "NCHW" or str(attrs.out_layout) not in ("NCHW", ""):
        raise UnknownFloatOpError("pool layout")
    top, left, bottom, right = _padding4(attrs.padding)
    oh, ow = out_shape[2:]
    kernel, strides, dilation = _ints(attrs.pool_size), _ints(attrs.strides), _ints(attrs.dilation)
    # ceil_mode: the last window may run past the padded input; those positions count as padding
    bottom = max(bottom, (oh - 1) * strides[0] + dilation[0] * (kernel[0] - 1) + 1 - x.shape[2] - top)
    right = max(right, (ow - 1) * strides[1] + dilation[1] * (kernel[1] - 1) + 1 - x.shape[3] - left)
    padding = [top, left, bottom, right]
    if kind == "max":
        xp = _pad_hw(x, padding, -np.inf)
        return np.max(np.stack([s for _, s in _windows(xp, kernel, strides, dilation, (oh, ow))]), axis=0)
    taps = [s for _, s in _windows(_pad_hw(x, padding, 0.0), kernel, strides, dilation, (oh, ow))]
    total = np.sum(np.stack(taps), axis=0, dtype=np.float32)
    if bool(attrs.count_include_pad):
        return (total / np.float32(kernel[0] * kernel[1])).astype(np.float32)
    ones = np.ones((1, 1, *x.shape[2:]), np.float32)
    count = sum(s for _, s in _windows(_pad_hw(ones, padding, 0.0), kernel, strides, dilation, (oh, ow)))
    return (total / count).astype(np.float32)


def _pad(x: np.ndarray, attrs) -> np.ndarray:
    if str(attrs.pad_mode) != "constant":
        raise UnknownFloatOpError("pad mode")
    width = _ints(attrs.pad_width)
    return np.pad(x, list(zip(width[0::2], width[1::2], strict=True)), constant_values=float(attrs.pad_value))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(np.float32)


def _scalar(expr) -> float:
    value = getattr(expr, "value", None)
    if isinstance(expr, tvm.ir.expr.Constant) and isinstance(value, (int, float)):
        return float(value)
    raise UnknownFloatOpError("a non-constant scalar")


def _batched_shape(var: relax.Var, n: int | None) -> list[int]:
    """The graph's shape of ``var``, its leading (batch) dimension ``n`` if it is batched."""
    shape = _shape(var)
    if n is None:
        return shape
    if not shape or shape[0] != 1:
        raise UnknownFloatOpError(f"{var.name}: a batched tensor whose first dimension is not the batch")
    return [n, *shape[1:]]


def _check_batch(call: relax.Call, args: list, batched: list[bool]) -> None:
    """Raise unless running ``call`` on tensors batched along dimension 0 keeps that dimension apart."""
    name, attrs = call.op.name, call.attrs
    first = args[0]
    if name in ("relax.nn.conv2d", "relax.matmul") and (not batched[0] or any(batched[1:])):
        raise UnknownFloatOpError(f"{name} of a batched weight")
    if name == "relax.add":
        rank = max(np.ndim(a) for a, b in zip(args, batched, strict=True) if b)
        for a, b in zip(args, batched, strict=True):
            if not b and (np.ndim(a) > rank or (np.ndim(a) == rank and np.shape(a)[0] != 1)):
                raise UnknownFloatOpError("add broadcasting over the batch")
    if name == "relax.mean" and (attrs.axis is None or 0 in [int(a) % first.ndim for a in attrs.axis]):
        raise UnknownFloatOpError("mean over the batch")
    if name == "relax.nn.softmax" and int(attrs.axis) % first.ndim == 0:
        raise UnknownFloatOpError("softmax over the batch")
    if name == "relax.permute_dims" and (attrs.axes is None or int(attrs.axes[0]) != 0):
        raise UnknownFloatOpError("permute_dims moving the batch")
    if name == "relax.nn.pad" and _ints(attrs.pad_width)[:2] != [0, 0]:
        raise UnknownFloatOpError("padding the batch")
    if name == "relax.flatten":
        raise UnknownFloatOpError("flatten of a batched tensor")


def _call(call: relax.Call, args: list, out_shape: list[int]) -> np.ndarray:
    """The value of ``call(args)`` (arguments already evaluated) of shape ``out_shape``."""
    name, attrs = call.op.name, call.attrs
    if name == "relax.nn.conv2d":
        return _conv2d(args[0], args[1], attrs, out_shape)
    if name == "relax.matmul":
        return np.matmul(args[0], args[1])
    if name == "relax.add":
        return np.add(args[0], args[1])
    if name == "relax.clip":
        return np.clip(args[0], _scalar(call.args[1]), _scalar(call.args[2]))
    if name == "relax.nn.relu":
        return np.maximum(args[0], np.float32(0))
    if name == "relax.nn.relu6":
        return np.clip(args[0], np.float32(0), np.float32(6))
    if name == "relax.mean":
        axes = None if attrs.axis is None else tuple(int(a) for a in attrs.axis)
        return np.mean(args[0], axis=axes, keepdims=bool(attrs.keepdims), dtype=np.float32)
    if name == "relax.nn.adaptive_avg_pool2d":
        if str(attrs.layout) != "NCHW" or out_shape[2:] != [1, 1]:
            raise UnknownFloatOpError("adaptive pooling other than NCHW to 1x1")
        return np.mean(args[0], axis=(2, 3), keepdims=True, dtype=np.float32)
    if name in ("relax.nn.avg_pool2d", "relax.nn.max_pool2d"):
        return _pool2d(args[0], attrs, out_shape, "max" if name == "relax.nn.max_pool2d" else "avg")
    if name in ("relax.reshape", "relax.flatten"):
        return np.reshape(args[0], out_shape)
    if name == "relax.permute_dims":
        return np.transpose(args[0], None if attrs.axes is None else _ints(attrs.axes))
    if name == "relax.nn.pad":
        return _pad(args[0], attrs)
    if name == "relax.nn.softmax":
        return _softmax(args[0], int(attrs.axis))
    if name == "relax.zeros_like":
        return np.zeros_like(args[0])
    raise UnknownFloatOpError(name)


def _value(expr: relax.Expr, env: dict) -> tuple[object, object]:
    """(value, batched flag) of a call argument or a binding's non-call value; tuples hold tuples of both."""
    if isinstance(expr, relax.Var):
        return env[expr]
    if isinstance(expr, tvm.ir.expr.GenericConst):
        return expr.value.numpy(), False
    if isinstance(expr, (tvm.ir.expr.Constant, relax.ShapeExpr, tvm.ir.expr.StringImm)):
        return expr, False  # a scalar, a shape or a string: read by the operator from the call
    if isinstance(expr, relax.Tuple):
        fields = [_value(f, env) for f in expr.fields]
        return tuple(v for v, _ in fields), tuple(b for _, b in fields)
    if isinstance(expr, relax.TupleGetItem):
        values, flags = _value(expr.tuple_value, env)
        return values[expr.index], flags[expr.index]
    raise UnknownFloatOpError(type(expr).__name__)


def _bindings(func: relax.Function) -> list[relax.VarBinding]:
    out = [b for block in func.body.blocks for b in block.bindings]
    if len(func.params) != 1 or not all(isinstance(b, relax.VarBinding) for b in out):
        raise UnknownFloatOpError("more than one input, or a match_cast")
    return out


def _last_uses(bindings: list[relax.VarBinding]) -> dict[relax.Var, int]:
    """For every variable, the index of the last binding that reads it."""
    last: dict[relax.Var, int] = {}
    for i, binding in enumerate(bindings):
        for var in relax.analysis.free_vars(binding.value):
            last[var] = i
    return last


def _step(binding: relax.VarBinding, env: dict, n: int) -> tuple[object, object]:
    """(value, batched flag) of one binding."""
    value = binding.value
    if not (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op)):
        return _value(value, env)
    evaluated = [_value(a, env) for a in value.args]
    if any(isinstance(b, tuple) for _, b in evaluated):
        raise UnknownFloatOpError(f"{value.op.name} of a tuple")
    args, flags = [v for v, _ in evaluated], [b for _, b in evaluated]
    batched = any(flags)
    if batched:
        _check_batch(value, args, flags)
    result = _call(value, args, _batched_shape(binding.var, n if batched else None))
    return result, batched


def value_ranges(func: relax.Function, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """(min, max) of every float32 tensor ``func`` computes, by binding name, over the batch ``x``.

    ``func`` is written for a batch of one; ``x`` stacks any number of samples along dimension 0,
    which every operator keeps apart (else :class:`UnknownFloatOpError`). Tensors are freed after their
    last use.
    """
    bindings = _bindings(func)
    last = _last_uses(bindings)
    n = int(x.shape[0])
    env: dict = {func.params[0]: (np.asarray(x, np.float32), True)}
    ranges: dict[str, tuple[float, float]] = {}
    for i, binding in enumerate(bindings):
        var = binding.var
        result, batched = _step(binding, env, n)
        env[var] = (result, batched)
        if isinstance(var.ty, relax.TensorType) and var.ty.dtype == "float32":
            if list(np.shape(result)) != _batched_shape(var, n if batched is True else None):
                raise UnknownFloatOpError(f"{var.name}: a shape other than the graph's")
            lo, hi = ranges.get(var.name, (np.inf, -np.inf))
            ranges[var.name] = (min(lo, float(np.min(result))), max(hi, float(np.max(result))))
        for used in relax.analysis.free_vars(binding.value):
            if last.get(used) == i and used is not func.params[0]:
                env.pop(used, None)
    return ranges


def batch_size(func: relax.Function, budget_bytes: int = 64 << 20) -> int:
    """Samples per :func:`value_ranges` call so that no tensor exceeds ``budget_bytes``."""
    largest = max((4 * math.prod(_shape(b.var)) for b in _bindings(func)
                   if isinstance(b.var.ty, relax.TensorType)), default=1)
    return max(1, budget_bytes // max(1, largest))
