"""UseSharedKernels: kernels take layer sizes at run time, so layers share their code.

Every kernel mcunet-tvm generates is specialised to its layer: shapes, zero
points and activation bounds are constants of the C, which is what makes the
kernels fast, and also why a network of 60 layers carries 60 kernels. This
pass regenerates the kernels that have a shape-generic form (today the SIMD
pointwise convolutions, the most numerous layers) with those values
as scalar arguments (``kernels.common.ScalarArgs``); layers whose remaining
code is equal then compile to one C function (``codegen.tir_to_c.deduplicate``)
and the entry point passes each layer's values. 3x3 depthwise row kernels,
which layers rarely share, take their compact form instead (one output pair
per loop iteration), and small depthwise images the ring instead of every
pixel unrolled. Results are unchanged, bit for bit; flash shrinks by
most of the kernel code, for a few percent more instructions
(``build --optimize size``). Run it after the passes that choose
kernels (``InplaceDepthwise``, ``UseSimdKernels``).
"""

from __future__ import annotations

import tvm

from ..kernels import shared_choice
from .rewrite_util import module_pass, rechoose_kernels


def use_shared_kernels(mod: tvm.IRModule) -> tvm.IRModule:
    """Every kernel that has a shape-generic (or compact) form takes it (``kernels.shared_choice``)."""
    return rechoose_kernels(mod, shared_choice)


def UseSharedKernels() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`use_shared_kernels`."""
    return module_pass(use_shared_kernels, "mcunet.UseSharedKernels")
