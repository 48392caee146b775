"""TIR kernel generators: one integer operator descriptor in, one PrimFunc out.

Every kernel is destination-passing: activation inputs, then the op's
constant arguments (``OpDesc.const_args``), then the output buffer. The
descriptor is attached as the ``mcunet.op`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import tirx

from ..ops import Add, Conv2D, Dense, Mean, OpDesc, Pad, Pool2D, Softmax
from .conv2d import conv2d
from .dense import dense
from .elementwise import add, pad
from .pool import pool2d
from .reduce import mean
from .softmax import softmax

_GENERATORS: dict[type[OpDesc], Callable[..., tirx.PrimFunc]] = {
    Conv2D: conv2d,
    Dense: dense,
    Add: add,
    Pad: pad,
    Pool2D: pool2d,
    Mean: mean,
    Softmax: softmax,
}


def make_kernel(op: OpDesc) -> tirx.PrimFunc:
    """The TIR PrimFunc computing ``op``."""
    return _GENERATORS[type(op)](op)
