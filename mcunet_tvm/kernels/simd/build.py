"""Assembling a SIMD PrimFunc: parameters (:mod:`.context`), the tile loops (:mod:`.tiles`), attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ...ops import OpDesc
from ..common import NO_PRESCHEDULE, ScalarArgs
from ..helium import helium_kernel
from .config import SimdConfig, default_config
from .context import declare
from .geometry import Geometry
from .schedule import shape_generic, straight_line_tile
from .tiles import emit_tiles

if TYPE_CHECKING:
    from ..choice import KernelChoice


def simd_kernel(op: OpDesc, choice: KernelChoice) -> tirx.PrimFunc:
    """The SIMD PrimFunc for ``op`` (see :func:`~.config.simd_supported`) with ``choice``'s schedule
    (``choice.simd``; None: the default) and requantisation form."""
    cfg = choice.simd or default_config(op)
    if cfg.helium:
        return helium_kernel(op, cfg.pixels, cfg.channels, choice.fast_requant)
    return build(op, Geometry.of(op), cfg, choice.fast_requant, generic=shape_generic(op, cfg))


def build(op: OpDesc, g: Geometry, cfg: SimdConfig, fast: bool, generic: bool = False) -> tirx.PrimFunc:
    """The DSP kernel of ``op`` over geometry ``g``; ``fast``: the fast requantisation; ``generic``:
    the layer's sizes as run-time scalars."""
    scalars = ScalarArgs(generic)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            emit_tiles(declare(op, g, cfg, fast, generic, scalars))
    func = scalars.attach(builder.get())
    return func.with_attr(NO_PRESCHEDULE, True) if straight_line_tile(op, cfg) else func
