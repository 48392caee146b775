"""Mean over H and W (global average pooling), TFLite int8 semantics.

``out = clamp(requant(sum(x) - zp_in * count, m, s) + zp_out)`` where the
multiplier ``m, s`` already folds in ``1 / count`` (TF Lite's
``QuantizedMeanOrSum``), so there is no division at run time.
"""

from __future__ import annotations

from tvm import te, tirx

from ..ops import Mean
from .common import OUT, arg, finish
from .requant import clamp_to_int8, requantize


def mean(op: Mean) -> tirx.PrimFunc:
    n, h, w, c = op.in_shape
    x = arg(0, op.in_shape, "int8", "x")
    rh = te.reduce_axis((0, h), name="rh")
    rw = te.reduce_axis((0, w), name="rw")
    acc = te.compute((n, c), lambda b, k: te.sum(x[b, rh, rw, k].astype("int32"), axis=[rh, rw]), name="acc")
    offset = tirx.const(op.in_zp * h * w, "int32")

    def body(*idx):
        b, k = idx[0], idx[-1]
        value = requantize(acc[b, k] - offset, tirx.const(op.multiplier, "int32"), tirx.const(op.shift, "int32"))
        return clamp_to_int8(value + tirx.const(op.out_zp, "int32"), -128, 127)

    out = te.compute(op.out_shape, body, name=OUT)
    return finish([x, out], op, local_blocks=("acc",))
