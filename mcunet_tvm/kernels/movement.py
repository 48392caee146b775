"""Data movement kernels: transpose, concatenation, nearest-neighbour resize (index maps, no arithmetic),
bilinear resize (index and weight maps), strided slices and mirror padding (strided copy loops).
Transpose, concatenation and strided slices copy elements of their descriptor's ``dtype`` (int8 or
int16)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import MIRROR_MODES, Concat, MirrorPad, ResizeBilinear, ResizeNearest, Slice, Transpose
from .common import OUT, arg, finish


def transpose(op: Transpose) -> tirx.PrimFunc:
    """``out[j] = x[i]`` with ``i[perm[d]] = j[d]``."""
    x = arg(0, op.in_shape, op.dtype, "x")

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
            xs = [T.arg(f"p{k}_x{k}", T.buffer((outer * n,), op.dtype)) for k, n in enumerate(rows)]
            out = T.arg(OUT, T.buffer((outer * total,), op.dtype))
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


def _row_major(shape: Sequence[int]) -> list[int]:
    """The element strides of a C-contiguous tensor of ``shape``."""
    steps = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        steps[d] = steps[d + 1] * int(shape[d + 1])
    return steps


def copy_loops(sizes: Sequence[int], in_steps: Sequence[int], out_steps: Sequence[int]
               ) -> list[tuple[int, int, int]]:
    """The loops of a strided copy as ``(extent, input step, output step)``, outermost first: dimensions of
    one element dropped, and a dimension merged into the one outside it where both walks continue across
    it (so a contiguous innermost run is one loop over its bytes)."""
    loops: list[tuple[int, int, int]] = []
    for n, i, o in zip(sizes, in_steps, out_steps, strict=True):
        if n == 1:
            continue
        if loops and loops[-1][1] == i * n and loops[-1][2] == o * n:
            loops[-1] = (loops[-1][0] * n, i, o)
        else:
            loops.append((int(n), int(i), int(o)))
    return loops


def _emit_copy(out, x, sizes: Sequence[int], in_base: int, in_steps: Sequence[int], out_base: int,
               out_steps: Sequence[int]) -> None:
    """``out[out_base + j . out_steps] = x[in_base + j . in_steps]`` for every ``j < sizes`` (IRBuilder)."""
    loops = copy_loops(sizes, in_steps, out_steps)
    if not loops:
        T.buffer_store(out, x[in_base], [out_base])
        return
    with T.grid(*(n for n, _, _ in loops)) as index:
        index = [index] if isinstance(index, tirx.Var) else list(index)
        src = in_base + sum(j * i for j, (_, i, _) in zip(index, loops, strict=True))
        dst = out_base + sum(j * o for j, (_, _, o) in zip(index, loops, strict=True))
        T.buffer_store(out, x[src], [dst])


def slice_copy(op: Slice) -> tirx.PrimFunc:
    """``out[j] = x[begin + j * strides]``: one loop nest over the output, contiguous runs merged."""
    steps = _row_major(op.in_shape)
    base = sum(b * s for b, s in zip(op.begin, steps, strict=True))
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(op.in_shape),), op.dtype))
            out = T.arg(OUT, T.buffer((math.prod(op.out_shape),), op.dtype))
            _emit_copy(out, x, op.out_shape, base, [t * s for t, s in zip(op.strides, steps, strict=True)], 0,
                       _row_major(op.out_shape))
    return builder.get()


def _mirror_segments(size: int, before: int, after: int, offset: int) -> list[tuple[int, int, int, int]]:
    """One dimension of a mirror padding as ``(output start, count, input start, input stride)`` segments:
    the mirrored ``before`` elements, the input, the mirrored ``after`` ones (TFLM's GetInputDimension)."""
    segments = [(0, before, before + offset - 1, -1), (before, size, 0, 1),
                (before + size, after, size - 1 - offset, -1)]
    return [s for s in segments if s[1] > 0]


def mirror_pad(op: MirrorPad) -> tirx.PrimFunc:
    """One strided copy per block of the output (each dimension: mirrored before, input, mirrored after)."""
    in_steps, out_steps = _row_major(op.in_shape), _row_major(op.out_shape)
    offset = MIRROR_MODES[op.mode]
    per_dim = [_mirror_segments(d, a, b, offset) for d, (a, b) in zip(op.in_shape, op.pads, strict=True)]
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(op.in_shape),), "int8"))
            out = T.arg(OUT, T.buffer((math.prod(op.out_shape),), "int8"))
            for block in itertools.product(*per_dim):
                _emit_copy(out, x, [s[1] for s in block],
                           sum(s[2] * t for s, t in zip(block, in_steps, strict=True)),
                           [s[3] * t for s, t in zip(block, in_steps, strict=True)],
                           sum(s[0] * t for s, t in zip(block, out_steps, strict=True)), out_steps)
    return builder.get()
