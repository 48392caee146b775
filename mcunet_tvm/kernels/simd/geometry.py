"""The convolution as the SIMD micro-kernel sees it: sizes, strides, padding and the input buffer.

Dense layers and pointwise convolutions over a whole image become one-row
images (every pixel independent: the flattened image is tiled), so every
emitter indexes one NHWC geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tvm import tirx

from ...ops import Conv2D, Dense, OpDesc

#: a TIR value the emitters build expressions from
Expr = tirx.Expr
#: an index or size: a compile-time int or a TIR expression (a loop variable, a run-time size)
Index = tirx.Expr | int


@dataclass(frozen=True)
class Geometry:
    """A convolution as the micro-kernel sees it (dense and pointwise conv are 1-row images).

    In the shape-generic form (:func:`~.schedule.shape_generic`) ``w``, ``ow``,
    ``buf_w``, ``oc``, ``c`` and ``in_bytes`` may be run-time values (TIR variables).
    """

    h: int
    w: int
    c: int
    oh: int
    ow: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    buf_w: int  # row length of the input buffer (a patch window may be wider than the op's input)
    r0: int  # window origin in the buffer
    c0: int
    in_bytes: int

    @staticmethod
    def of(op: OpDesc) -> Geometry:
        if isinstance(op, Dense):
            n, k = op.in_shape
            return Geometry(1, n, k, 1, n, op.out_shape[-1], 1, 1, 1, 1, 0, 0, n, 0, 0, n * k)
        assert isinstance(op, Conv2D)
        _, h, w, c = op.in_shape
        _, oh, ow, oc = op.out_shape
        win = op.window(0)
        buf = op.input_buffer_shape(0, op.in_shape)
        pointwise = op.kernel == (1, 1) and op.strides == (1, 1) and not any(op.padding)
        if pointwise and not win:  # every pixel is independent: tile the flattened image
            return Geometry(1, h * w, c, 1, oh * ow, oc, 1, 1, 1, 1, 0, 0, h * w, 0, 0, h * w * c)
        r0, c0 = (win[0], win[1]) if win else (0, 0)
        return Geometry(h, w, c, oh, ow, oc, *op.kernel, *op.strides, op.padding[0], op.padding[1],
                        buf[2], r0, c0, math.prod(buf))
