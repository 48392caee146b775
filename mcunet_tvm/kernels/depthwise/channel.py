"""What both depthwise kernels share: the geometry, the constant parameters, and per-channel values.

Both work channel by channel with the input zero point folded into one
per-channel constant (``bias - zp * sum(w)``, :func:`folded_bias`) and, where
the requantisation takes ``2 acc`` (``requant.fast_requantize``), the
weights and bias doubled once per channel (:func:`scaled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tvm import tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ...ops import Conv2D
from ..requant import requant_args

#: a TIR value the emitters build expressions from
Expr = tirx.Expr
#: an index: a compile-time int or a TIR expression (a loop variable)
Index = tirx.Expr | int


def i32(v: int) -> Expr:
    """An int32 constant."""
    return tirx.const(v, "int32")


def folded_bias(bias_k: Expr, taps: list, zp: int) -> Expr:
    """``bias - zp * sum(w)``: the input zero point folded out of every tap of a channel
    (``bias_k`` and ``taps`` as the kernel uses them, see :func:`scaled`)."""
    total = taps[0]
    for v in taps[1:]:
        total = total + v
    return T.bind(bias_k - i32(zp) * total)


def scaled(value: Expr, doubled: bool) -> Expr:
    """A weight or bias as the kernel uses it: doubled (a weight still fits a 16-bit lane) where the
    requantisation takes ``2 acc`` (``requant.fast_requantize``): no doubling per output."""
    return T.bind(value * i32(2) if doubled else value)


@dataclass(frozen=True)
class Geometry:
    """A depthwise convolution's sizes, and where its input sits in the input buffer (a patch window)."""

    h: int
    w: int
    c: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    r0: int  # window origin in the buffer
    c0: int
    bw: int  # row length of the input buffer
    buf_elems: int

    @staticmethod
    def of(op: Conv2D) -> Geometry:
        _, h, w, c = op.in_shape
        _, oh, ow, _ = op.out_shape
        win = op.window(0)
        buf = op.input_buffer_shape(0, op.in_shape)
        r0, c0 = (win[0], win[1]) if win else (0, 0)
        return Geometry(h, w, c, oh, ow, *op.kernel, *op.strides, *op.dilation, op.padding[0], op.padding[1],
                        r0, c0, buf[2], math.prod(buf))

    def x_index(self, r: Index, q: Index, k: Index) -> Index:
        """Element (row r, column q, channel k) of the op's input in the input buffer."""
        return ((r + self.r0) * self.bw + q + self.c0) * self.c + k


@dataclass(frozen=True)
class ConstArgs:
    """The input and constant parameters both kernels declare first, in this order."""

    x: Any
    weight: Any
    bias: Any
    mult: Any
    rq: Any

    @staticmethod
    def declare(g: Geometry, fast: bool) -> ConstArgs:
        x = T.arg("p0_x", T.buffer((g.buf_elems,), "int8"))
        weight = T.arg("p1_w", T.buffer((g.kh * g.kw * g.c,), "int8"))
        bias = T.arg("p2_bias", T.buffer((g.c,), "int32"))
        mult = T.arg("p3_mult", T.buffer((g.c,), "int32"))
        rq_shape, rq_name = requant_args(g.c, fast)
        rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
        return ConstArgs(x, weight, bias, mult, rq)


@dataclass
class KernelBase:
    """What both depthwise kernels' emitters share: the op, its requantisation form, the geometry,
    the input and constant parameters, the output and the accumulators."""

    op: Conv2D
    fast: bool  # the fast requantisation (``KernelChoice.fast_requant``): weights doubled
    g: Geometry
    args: ConstArgs
    out: Any
    acc: Any
