"""Helium (M-profile Vector Extension) micro-kernels for 1x1 convolutions and dense layers.

On a core with MVE (Cortex-M55) one ``VMLADAVA.S8`` multiplies sixteen int8
pairs and adds all sixteen products to a 32-bit accumulator. A pointwise
convolution's output is the dot product of a pixel's ``C`` input bytes with
an output channel's ``C`` weights, both contiguous in NHWC/OHWI, so the kernel
is, per tile of ``pixels x channels`` outputs, a loop over 16-byte vectors:
one ``VLDRB`` per pixel and per channel, one ``VMLADAVA`` per output. The
last ``C mod 16`` bytes take one predicated step (``VCTP8`` tail predication).
The input zero point is folded into the bias at compile time
(``bias - zp * sum(w)``, :func:`fold_input_zero_point`), so the MAC loop
multiplies raw int8 values. Requantisation is the same fused form as the
SIMD kernels. The vector primitives are ``call_extern``\\ s to
``mcunet_simd.h`` (``arm_mve.h`` intrinsics on MVE cores, portable C elsewhere).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D, Dense, OpDesc
from .common import OUT
from .requant import channel_requantizer, clamp_to_int8, requant_args

#: bytes per MVE vector
LANES = 16


def helium_supported(op: OpDesc) -> bool:
    """Batch-1 dense layers and unwindowed 1x1, stride-1, unpadded convolutions."""
    if isinstance(op, Dense):
        return op.in_shape[0] == 1
    return (
        isinstance(op, Conv2D)
        and not op.depthwise
        and not op.windows
        and op.kernel == (1, 1)
        and op.strides == (1, 1)
        and op.dilation == (1, 1)
        and not any(op.padding)
    )


def helium_tile(op: OpDesc, pixels: int = 2, channels: int = 2) -> tuple[int, int]:
    """The output tile: ``VMLADAVA`` accumulates into even registers only, so at most 6 outputs."""
    if isinstance(op, Dense):
        return 1, 4
    while pixels * channels > 6:
        pixels, channels = (pixels // 2, channels) if pixels >= channels else (pixels, channels // 2)
    return max(pixels, 1), max(channels, 1)


def fold_input_zero_point(bias: np.ndarray, weight: np.ndarray, in_zp: int) -> np.ndarray:
    """``bias - zp * sum(w)`` per output channel: the kernel then multiplies raw int8 inputs."""
    sums = weight.reshape(weight.shape[0], -1).astype(np.int64).sum(axis=1)
    folded = bias.astype(np.int64) - np.int64(in_zp) * sums
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) >= 2**31:
        raise ValueError("folded bias overflows int32")
    return folded.astype(np.int32)


def helium_kernel(op: OpDesc, pixels: int, channels: int, fast: bool) -> tirx.PrimFunc:
    """The MVE PrimFunc for ``op`` (see :func:`helium_supported`) with a ``pixels x channels`` tile
    (``fast``: the fast requantisation)."""
    assert helium_supported(op)
    if isinstance(op, Dense):
        n, c = op.in_shape
    else:
        n, c = op.in_shape[1] * op.in_shape[2], op.in_shape[3]
    oc = op.out_shape[-1]
    tp_max, tc_max = helium_tile(op, pixels, channels)
    full, rest = c // LANES, c % LANES

    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((n * c,), "int8"))
            wt = T.arg("p1_w", T.buffer((oc * c,), "int8"))
            bias = T.arg("p2_bias", T.buffer((oc,), "int32"))  # input zero point folded in
            mult = T.arg("p3_mult", T.buffer((oc,), "int32"))
            rq_shape, rq_name = requant_args(oc, fast)
            rq = T.arg(f"p4_{rq_name}", T.buffer(rq_shape, "int32"))
            out = T.arg(OUT, T.buffer((n * oc,), "int8"))
            acc = T.alloc_buffer((tp_max * tc_max,), "int32")

            def tile(p0, o0, tp: int, tc: int):
                for p in range(tp):
                    for t in range(tc):
                        T.buffer_store(acc, bias[o0 + t], [p * tc_max + t])

                def step(k, tail: bool):
                    for t in range(tc):
                        for p in range(tp):
                            idx = p * tc_max + t
                            xa = T.address_of(x[(p0 + p) * c + k])
                            wa = T.address_of(wt[(o0 + t) * c + k])
                            if tail:
                                v = T.call_extern("int32", "mcunet_mve_dot_tail", acc[idx], xa, wa, rest)
                            else:
                                v = T.call_extern("int32", "mcunet_mve_dot16", acc[idx], xa, wa)
                            T.buffer_store(acc, v, [idx])

                if full:
                    with T.serial(0, full) as kk:
                        step(kk * LANES, tail=False)
                if rest:
                    step(full * LANES, tail=True)
                for t in range(tc):
                    requant = channel_requantizer(op, fast, mult, rq, o0 + t, T.bind)
                    for p in range(tp):
                        value = clamp_to_int8(requant(acc[p * tc_max + t]), op.act_min, op.act_max)
                        T.buffer_store(out, value, [(p0 + p) * oc + o0 + t])

            def channel_tiles(p0, tp: int):
                if oc // tc_max:
                    with T.serial(0, oc // tc_max) as ot:
                        tile(p0, ot * tc_max, tp, tc_max)
                if oc % tc_max:
                    with T.serial(oc - oc % tc_max, oc) as o:
                        tile(p0, o, tp, 1)

            if n // tp_max:
                with T.serial(0, n // tp_max) as pt:
                    channel_tiles(pt * tp_max, tp_max)
            if n % tp_max:
                with T.serial(n - n % tp_max, n) as p:
                    channel_tiles(p, 1)
    return builder.get()
