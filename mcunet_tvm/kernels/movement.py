"""Data movement kernels: transpose, concatenation, nearest-neighbour resize (index maps, no arithmetic)."""

from __future__ import annotations

import math

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Concat, ResizeNearest, Transpose
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
