"""TIR kernel generators: one integer operator descriptor in, one PrimFunc out.

Every kernel is destination-passing: activation inputs, then the op's
constant arguments (``OpDesc.const_args``), then the output buffer. The
descriptor is attached as the ``mcunet.op`` attribute.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tvm import tirx

from ..ops import Add, Conv2D, Dense, Insert, Mean, OpDesc, Pad, Pool2D, Softmax
from .conv2d import conv2d
from .dense import dense
from .elementwise import add, insert, pad
from .pool import pool2d
from .reduce import mean
from .softmax import softmax

_GENERATORS: dict[type[OpDesc], Callable[..., tirx.PrimFunc]] = {
    Conv2D: conv2d,
    Dense: dense,
    Add: add,
    Pad: pad,
    Insert: insert,
    Pool2D: pool2d,
    Mean: mean,
    Softmax: softmax,
}


def output_overlap(op: OpDesc) -> tuple[tuple[int, int], ...]:
    """(input index, max offset delta) pairs where the output may overwrite a dying input.

    The deltas follow from each kernel's loop order (see ``Step.overlap`` in the
    planner): an element-wise kernel reads element i before writing element i,
    so its output may start exactly at its input (delta 0); a pointwise
    convolution reads a whole input pixel for every output channel of that
    pixel, so output pixel p must end before input pixel p begins.
    """
    if isinstance(op, Add):
        return ((0, 0), (1, 0))
    if isinstance(op, Conv2D) and pointwise_conv(op):
        pixels = op.in_shape[0] * op.in_shape[1] * op.in_shape[2]
        cin, cout = op.in_shape[3], op.out_shape[3]
        delta = -cout if cin >= cout else (pixels - 1) * (cin - cout) - cout
        return ((0, delta),)
    return ()


def can_run_inplace(op: OpDesc, input_dies: bool) -> bool:
    """Whether ``op`` may take the in-place kernel variant (output over its dying input)."""
    return (
        isinstance(op, Conv2D)
        and op.depthwise
        and not op.inplace
        and not op.windows
        and input_dies
        and op.out_bytes <= math.prod(op.in_shape)
    )


def pointwise_conv(op: Conv2D) -> bool:
    """A 1x1, stride-1, unpadded, non-depthwise convolution."""
    return (
        not op.depthwise
        and op.kernel == (1, 1)
        and op.strides == (1, 1)
        and not any(op.padding)
    )


def make_kernel(op: OpDesc) -> tirx.PrimFunc:
    """The TIR PrimFunc computing ``op``."""
    return _GENERATORS[type(op)](op)
