"""TIR kernel generators: an operator descriptor and a kernel choice in, one PrimFunc out.

:func:`build_kernel` is the one entry: it dispatches to the generator the
:class:`~mcunet_tvm.kernels.choice.KernelChoice` names and tags the result
with the descriptor, the choice and the kernel's :class:`Signature`. Every
kernel is destination-passing: activation inputs, then its packed constant
arrays (:meth:`KernelChoice.consts`), then its scratch buffer if it takes one,
then the output buffer, then (shape-generic kernels) int32 layer values.
The policies that make choices live here too: :func:`simd_choice`
(``UseSimdKernels``), :func:`shared_choice` (``UseSharedKernels``),
:func:`inplace_allowed` (``InplaceDepthwise``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from tvm import tirx

from ..ops import (
    Add,
    AddInt16,
    ArgMax,
    BatchMatmul,
    Binary,
    Concat,
    Conv2D,
    Conv2DInt16,
    Dense,
    DenseInt16,
    Dequantize,
    InputRows,
    Insert,
    Lut,
    Mean,
    MirrorPad,
    OpDesc,
    Pad,
    Pool2D,
    Prelu,
    Quantize,
    Reduce,
    Requantize,
    ResizeBilinear,
    ResizeNearest,
    Slice,
    Softmax,
    SoftmaxInt16,
    Transpose,
    TransposeConv2D,
)
from .choice import KernelChoice, Signature, stub, tag
from .common import SCALAR_ARGS
from .conv2d import conv2d
from .convert import arg_max, dequantize, quantize, requantize_int
from .dense import batch_matmul, dense
from .depthwise import compact_choice, depthwise_conv2d
from .elementwise import add, add_rescale_table, binary, input_rows, insert, lut, pad, prelu
from .helium import fold_input_zero_point
from .int16 import add_int16, conv2d_int16, dense_int16, softmax_int16
from .movement import concat, mirror_pad, resize_bilinear, resize_nearest, slice_copy, transpose
from .pool import pool2d
from .reduce import mean, reduce
from .requant import pack_fast_requant
from .simd import (
    SimdConfig,
    channel_records,
    default_config,
    doubled_input,
    flat_window,
    helium_config,
    pack_records,
    pair_weights,
    paired_weights,
    record_pairs,
    shape_generic,
    simd_kernel,
    simd_supported,
    staged_input_bytes,
)
from .softmax import softmax
from .transpose_conv import transpose_conv

__all__ = [
    "KernelCache",
    "KernelChoice",
    "Signature",
    "SimdConfig",
    "build_kernel",
    "inplace_allowed",
    "kernel_cache",
    "kernel_consts",
    "make_kernel",
    "output_overlap",
    "pointwise_conv",
    "shared_choice",
    "simd_choice",
    "simd_kernel",
    "simd_supported",
]

#: the plain generators of ops whose kernel no choice changes
_GENERATORS: dict[type[OpDesc], Callable[[OpDesc], tirx.PrimFunc]] = {
    Add: add,
    Binary: binary,
    BatchMatmul: batch_matmul,
    Prelu: prelu,
    Lut: lut,
    Transpose: transpose,
    Concat: concat,
    ResizeNearest: resize_nearest,
    ResizeBilinear: resize_bilinear,
    Slice: slice_copy,
    MirrorPad: mirror_pad,
    Pad: pad,
    Insert: insert,
    InputRows: input_rows,
    Pool2D: pool2d,
    Mean: mean,
    Reduce: reduce,
    Softmax: softmax,
    Quantize: quantize,
    Dequantize: dequantize,
    Requantize: requantize_int,
    ArgMax: arg_max,
    Conv2DInt16: conv2d_int16,
    DenseInt16: dense_int16,
    AddInt16: add_int16,
    SoftmaxInt16: softmax_int16,
}


def output_overlap(op: OpDesc, schedule: SimdConfig | None = None) -> tuple[tuple[int, int], ...]:
    """(input index, max offset delta) pairs where the output may overwrite a dying input.

    The deltas follow from each kernel's loop order (see ``Step.overlap`` in the
    planner): an element-wise kernel reads element i before writing element i,
    so its output may start exactly at its input (delta 0); a pointwise
    convolution reads a whole input pixel for every output channel of that
    pixel, so output pixel p must end before input pixel p begins. A SIMD
    kernel (``schedule``) works on tiles of pixels: every output pixel of a
    tile must end before the tile's first input pixel begins.
    """
    if isinstance(op, Add):
        return ((0, 0), (1, 0))
    if isinstance(op, Lut | Prelu):
        return ((0, 0),)
    if isinstance(op, Binary):  # only an input of the output's shape: a broadcast one is read again
        n = math.prod(op.out_shape)
        return tuple((i, 0) for i, shape in enumerate(op.input_shapes) if math.prod(shape) == n)
    if isinstance(op, Conv2D) and pointwise_conv(op):
        if schedule and schedule.order == "channels":
            return ()  # every pixel is read again for every channel tile: no overlap
        tile = schedule.pixels if schedule else 1
        if tile > 1 and op.windows:
            return ()  # a windowed SIMD kernel tiles rows of the window: claim no overlap
        pixels = op.in_shape[0] * op.in_shape[1] * op.in_shape[2]
        return ((0, _pointwise_delta(pixels, op.in_shape[3], op.out_shape[3], tile)),)
    return ()


@functools.lru_cache(maxsize=4096)
def _pointwise_delta(pixels: int, cin: int, cout: int, tile: int) -> int:
    """Largest output-minus-input offset such that no tile overwrites input it has yet to read."""
    full = pixels - pixels % tile
    tiles = [(p, tile) for p in range(0, full, tile)] + [(p, 1) for p in range(full, pixels)]
    # output of tile [p, p + n) ends at delta + (p + n) * cout; its input starts at p * cin
    return min(p * (cin - cout) - n * cout for p, n in tiles)


def inplace_allowed(op: OpDesc, choice: KernelChoice, input_dies: bool) -> bool:
    """Whether ``op`` may take the in-place kernel variant (output over its dying input)."""
    return (
        isinstance(op, Conv2D)
        and op.depthwise
        and not choice.inplace
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


def kernel_consts(op: OpDesc, consts: Sequence[np.ndarray], choice: KernelChoice) -> list[tuple[str, np.ndarray]]:
    """The constant arrays a kernel takes, as (name, values), from the op's semantic constants.

    Programs keep TFLite's constants (``OpDesc.const_args``: what the reference
    and the exporter read); this is the compile-time packing the kernels are
    written for. A conv/dense layer whose ``choice.fast_requant`` takes its shifts as
    (exponent, rounding + zero point) pairs (``requant.pack_fast_requant``);
    a staged SIMD kernel (``choice.simd``) takes its weights in channel-pair order
    (``simd.pair_weights``), and all of them in one array of channel-pair
    records where it can (``simd.channel_records``); a Helium kernel its bias
    with the input zero point folded in; an ADD its rescaling table
    (``elementwise.add_rescale_table``).
    """
    named = list(zip(op.const_args, consts, strict=True))
    if isinstance(op, Add) and (table := add_rescale_table(op)) is not None:
        return [("table", table)]
    schedule, fast = choice.simd, choice.fast_requant
    if isinstance(op, (Conv2D, TransposeConv2D, Dense)) and fast:
        named[3] = ("rq", pack_fast_requant(consts[3], op.out_zp))
    weights = consts[0] if consts else None
    if flat_window(op) and staged_input_bytes(op, schedule):  # the window is one segment (OHWI: contiguous)
        weights = weights.reshape(weights.shape[0], 1, 1, -1)
    if channel_records(op, schedule, fast):
        return [(named[0][0], pack_records(weights, consts[1], consts[2], named[3][1],
                                           doubled_input(op, schedule, fast), record_pairs(schedule)))]
    if paired_weights(op, schedule):
        named[0] = (named[0][0], pair_weights(weights))
    if schedule is not None and schedule.helium:  # the MVE kernel multiplies raw inputs
        named[1] = (named[1][0], fold_input_zero_point(consts[1], consts[0], op.in_zp))
    return named


def simd_choice(op: OpDesc, choice: KernelChoice, schedule: SimdConfig | None, mve: bool) -> KernelChoice:
    """The choice of ``UseSimdKernels`` for ``op``: the SIMD micro-kernel with ``schedule`` (a tuning
    database's, or the untuned default), or on a core with Helium (``mve``) the MVE kernel where one
    exists; a TRANSPOSE_CONV of four or more input channels its dual-MAC form; ``choice`` unchanged
    for ops without a SIMD kernel."""
    if isinstance(op, TransposeConv2D):
        return choice.with_(dual_mac=op.in_shape[3] >= 4)
    if not simd_supported(op):
        return choice
    if mve:
        schedule = helium_config(op, schedule) or schedule
    return choice.with_(simd=schedule or default_config(op))


def shared_choice(op: OpDesc, choice: KernelChoice) -> KernelChoice | None:
    """The choice of ``UseSharedKernels`` for ``op``, or None where it keeps its kernel.

    SIMD pointwise convolutions take their shape-generic form (layer sizes as run-time
    arguments, ``SimdConfig.shared``); depthwise kernels their compact form: small images
    the ring (or their pixels in loops) instead of every pixel unrolled, and 3x3 row kernels
    one output pair per iteration (about half the code). Every other kernel stays as it is.
    (Depthwise kernels stay specialised: with the channel count, the NHWC stride of every
    gathered byte, at run time they measured 13-58 % slower.)
    """
    if choice.simd is not None:
        shared = dataclasses.replace(choice.simd, shared=True)
        return choice.with_(simd=shared) if not choice.simd.shared and shape_generic(op, shared) else None
    return compact_choice(op, choice) if isinstance(op, Conv2D) else None


def make_kernel(op: OpDesc, choice: KernelChoice | None = None) -> tirx.PrimFunc:
    """The untagged PrimFunc of ``op`` as ``choice`` (default: the plain kernel) says: the SIMD or
    Helium kernel of ``choice.simd``, a depthwise row or tap kernel, or the plain TIR kernel."""
    choice = choice or KernelChoice()
    if choice.simd is not None:
        return simd_kernel(op, choice)
    if isinstance(op, Conv2D):
        return depthwise_conv2d(op, choice) if op.depthwise else conv2d(op, choice.fast_requant)
    if isinstance(op, Dense):
        return dense(op, choice.fast_requant)
    if isinstance(op, TransposeConv2D):
        return transpose_conv(op, choice.fast_requant, choice.dual_mac)
    return _GENERATORS[type(op)](op)


@dataclasses.dataclass
class KernelCache:
    """The kernels generated within one build, by (descriptor, choice) serialised: each distinct
    kernel is generated once (patches of equal geometry, repeated blocks, a pass that returns to a
    choice made before). PrimFuncs are immutable, so sharing one between layers is safe."""

    kernels: dict[tuple[str, str], tirx.PrimFunc] = dataclasses.field(default_factory=dict)
    #: how many kernels were asked for (generated or reused)
    requests: int = 0
    #: called with (generated, requested) after each request (progress reports)
    on_request: Callable[[int, int], None] | None = None

    def get(self, op: OpDesc, choice: KernelChoice) -> tirx.PrimFunc:
        """The kernel of ``op`` and ``choice``, generated on first request."""
        self.requests += 1
        key = (op.to_json(), choice.to_json())
        if key not in self.kernels:
            self.kernels[key] = _generate(op, choice)
        if self.on_request is not None:
            self.on_request(len(self.kernels), self.requests)
        return self.kernels[key]


_CACHE: contextvars.ContextVar[KernelCache | None] = contextvars.ContextVar("mcunet_kernel_cache", default=None)


@contextlib.contextmanager
def kernel_cache(cache: KernelCache | None = None) -> Iterator[KernelCache]:
    """Within the context, :func:`build_kernel` generates each distinct kernel once (into ``cache``,
    a new one by default; an enclosing context's cache when one is active)."""
    active = _CACHE.get()
    if active is not None and cache is None:
        yield active
        return
    cache = cache if cache is not None else KernelCache()
    token = _CACHE.set(cache)
    try:
        yield cache
    finally:
        _CACHE.reset(token)


def build_kernel(op: OpDesc, choice: KernelChoice | None = None, light: str = "") -> tirx.PrimFunc:
    """The kernel PrimFunc of ``op`` generated as ``choice`` says, tagged (``choice.tag``).

    ``light``: the kernel's name, for a stub without a body instead (a light module:
    planning, no code). Inside :func:`kernel_cache`, a kernel generated before is reused.
    """
    choice = choice or KernelChoice()
    if light:
        return stub(op, choice, Signature(()), light)
    cache = _CACHE.get()
    return cache.get(op, choice) if cache is not None else _generate(op, choice)


def _generate(op: OpDesc, choice: KernelChoice) -> tirx.PrimFunc:
    """The tagged kernel of ``op`` and ``choice``, generated."""
    func = make_kernel(op, choice)
    scalars = []
    if func.attrs is not None and SCALAR_ARGS in func.attrs:  # a shape-generic kernel's layer values
        scalars = [int(v) for v in func.attrs[SCALAR_ARGS]]
        func = func.without_attr(SCALAR_ARGS)
    return tag(func, op, choice, _signature(op, choice, func, scalars))


def _signature(op: OpDesc, choice: KernelChoice, func: tirx.PrimFunc, scalars: list[int]) -> Signature:
    """The roles of ``func``'s parameters by the generators' calling convention: buffers in the order
    activation inputs, packed constants, scratch (when the choice takes any), output; int32 scalar
    parameters (shape-generic kernels) take the layer's values in order."""
    is_buffer = [isinstance(p.ty, tirx.BufferType) for p in func.params]
    scratch = [("scratch", 0)] if choice.scratch_bytes(op) else []
    n_consts = sum(is_buffer) - op.num_inputs - len(scratch) - 1
    if n_consts < 0 or len(is_buffer) - sum(is_buffer) != len(scalars):
        raise RuntimeError(f"{op.kind} kernel with {len(func.params)} parameters breaks the calling convention")
    buffers = iter([*(("input", i) for i in range(op.num_inputs)), *(("const", i) for i in range(n_consts)),
                    *scratch, ("output", 0)])
    values = iter(("scalar", v) for v in scalars)
    return Signature(tuple(next(buffers) if b else next(values) for b in is_buffer))
