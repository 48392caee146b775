"""PatchInference: run the memory-heavy first stage of a CNN patch by patch (MCUNetV2).

Rewrites an integer module (after ``LowerQDQToInteger``) so that the steps up
to and including ``split_step`` run once per cell of a ``grid`` of spatial
patches of the split tensor, each patch computing its receptive field (halo
included, zero padding only at the true image border) into small buffers and
writing its slice of the split tensor in place; the rest of the network is
unchanged. Peak SRAM of the first stage drops to the patch buffers plus the
input and the split tensor, at the cost of recomputing the halos. Bit-exact
with layer-based execution. The geometry lives in
:mod:`mcunet_tvm.patching.regions`; choosing ``split_step`` and ``grid``
automatically is :func:`mcunet_tvm.patching.search.choose_patch`.
"""

from __future__ import annotations

import tvm

from ..aot.program import program_from_relax, program_to_relax
from ..patching.regions import patch_program
from .rewrite_util import module_pass


def patch_inference(
    mod: tvm.IRModule, split_step: int, grid: tuple[int, int], stream_input: bool = False
) -> tvm.IRModule:
    """``mod`` with steps ``0..split_step`` of ``main`` run on a ``grid`` of patches.

    ``stream_input``: the input is fetched band by band (``InputRows`` steps,
    ``mcunet.stream_input`` attribute on ``main``) instead of held whole.
    """
    patched, _ = patch_program(program_from_relax(mod), split_step, grid, stream_input)
    return program_to_relax(patched)


def PatchInference(  # noqa: N802 (TVM pass naming)
    split_step: int, grid: tuple[int, int], stream_input: bool = False
) -> tvm.transform.Pass:
    """Pass form of :func:`patch_inference`."""
    return module_pass(lambda mod: patch_inference(mod, split_step, grid, stream_input), "mcunet.PatchInference")
