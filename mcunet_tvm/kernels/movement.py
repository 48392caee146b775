"""Data movement kernels: transpose, concatenation, nearest-neighbour resize (index maps, no arithmetic),
bilinear resize (index and weight maps)."""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Concat, ResizeBilinear, ResizeNearest, Transpose
from .common import OUT, arg, finish


def transpose(op: Transpose) -> tirx.PrimFunc:
    """``out[j] = x[i]`` with ``i[perm[d]] = j[d]``."""
    x = arg(0, op.in_shape, "int8", "x")

    def body(*j):
        i = [None] * len(j)
        for d, p in enumerate(op.perm):
            i[p] = j[d]
        return x[tuple(i)]

    return finish([x, te.compute(op.out_shape, body, name=OUT)])


def concat(op: Concat) -> tirx.PrimFunc:
    """One copy loop per input into its slice of ``axis``: rows of ``prod(shape[axis:])`` bytes.

    (Not one TE expression selecting the input per element: TVM's simplifier takes every load
    as in bounds and folds such a select away.)
    """
    outer = math.prod(op.out_shape[: op.axis])
    rows = [math.prod(s[op.axis :]) for s in op.in_shapes]
    total = sum(rows)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            xs = [T.arg(f"p{k}_x{k}", T.buffer((outer * n,), "int8")) for k, n in enumerate(rows)]
            out = T.arg(OUT, T.buffer((outer * total,), "int8"))
            start = 0
            for x, n in zip(xs, rows, strict=True):
                with T.grid(outer, n) as (o, i):
                    T.buffer_store(out, x[o * n + i], [o * total + start + i])
                start += n
    return builder.get()


def resize_nearest(op: ResizeNearest) -> tirx.PrimFunc:
    """``out[n, y, x, c] = in[n, rows[y], cols[x], c]`` (the maps are constant arguments)."""
    x = arg(0, op.in_shape, "int8", "x")
    rows = arg(1, (op.out_shape[1],), "int32", "rows")
    cols = arg(2, (op.out_shape[2],), "int32", "cols")
    out = te.compute(op.out_shape, lambda n, h, w, c: x[n, rows[h], cols[w], c], name=OUT)
    return finish([x, rows, cols, out])


#: the weights of a bilinear tap are in 1/2^10, a blend of four in 1/2^20
_ONE = 1 << 10


def bilinear_bound(rows: np.ndarray, cols: np.ndarray) -> int:
    """The largest ``|sum of the four weighted int8 values|`` of a bilinear resize with these maps."""
    wy = np.abs(_ONE - rows[:, 2].astype(np.int64)) + np.abs(rows[:, 2].astype(np.int64))
    wx = np.abs(_ONE - cols[:, 2].astype(np.int64)) + np.abs(cols[:, 2].astype(np.int64))
    return 128 * int(wy.max(initial=0)) * int(wx.max(initial=0))


def resize_bilinear(op: ResizeBilinear) -> tirx.PrimFunc:
    """TFLM's ``ResizeBilinearInteger``: per output row the two input rows and the row weight, per column
    the two columns and the column weight (``rows``, ``cols``: (size, 3) int32 maps, bound once per row
    and column), per channel two column blends of one row each, then their row blend:
    ``(top * (1024 - dy) + bottom * dy)``, equal to TFLM's sum of four products. Rounded half away from
    zero by 2^20 and wrapped to int8. The sums are int32: the maps must keep :func:`bilinear_bound` below
    2^31 (TFLM's keep it at most 2^29: weights in [-512, 1024])."""
    n, h, w, c = op.in_shape
    _, oh, ow, _ = op.out_shape
    acc = "int32"

    def const(v: int):
        return tirx.const(v, acc)

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((n * h * w * c,), "int8"))
            rows = T.arg("p1_rows", T.buffer((oh * 3,), "int32"))
            cols = T.arg("p2_cols", T.buffer((ow * 3,), "int32"))
            out = T.arg(OUT, T.buffer((n * oh * ow * c,), "int8"))
            with T.grid(n, oh) as (b, y):
                top = T.bind((b * h + rows[y * 3]) * (w * c))
                bottom = T.bind((b * h + rows[y * 3 + 1]) * (w * c))
                dy = T.bind(rows[y * 3 + 2].astype(acc))
                with T.serial(0, ow) as xo:
                    left = T.bind(cols[xo * 3] * c)
                    right = T.bind(cols[xo * 3 + 1] * c)
                    dx = T.bind(cols[xo * 3 + 2].astype(acc))
                    base = T.bind(((b * oh + y) * ow + xo) * c)
                    with T.serial(0, c) as k:

                        def blend(row):
                            return (x[row + left + k].astype(acc) * (const(_ONE) - dx)
                                    + x[row + right + k].astype(acc) * dx)

                        total = T.bind(blend(top) * (const(_ONE) - dy) + blend(bottom) * dy)
                        half = const(1 << 19)
                        value = tirx.Select(total > const(0), (total + half) >> const(20),
                                            const(0) - ((half - total) >> const(20)))
                        T.buffer_store(out, value.astype("int8"), [base + k])
    return builder.get()
