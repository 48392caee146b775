"""PatchInference: run the memory-heavy first stage of a CNN patch by patch (MCUNetV2).

Rewrites an integer module (after ``LowerQDQToInteger``) so that the steps up
to and including ``split_step`` run once per cell of a ``grid`` of spatial
patches of the split tensor, each patch computing its receptive field (halo
included, zero padding only at the true image border) into small buffers and
writing its slice of the split tensor in place; the rest of the network is
unchanged. Peak SRAM of the first stage drops to the patch buffers plus the
input and the split tensor, at the cost of recomputing the halos. Bit-exact
with layer-based execution. The geometry is
:func:`mcunet_tvm.patching.regions.plan_patches`; choosing ``split_step`` and
``grid`` automatically is :func:`mcunet_tvm.patching.search.choose_patch`.
``main`` records the split (``mcunet.patch``, read by :func:`mcunet_tvm.ir.patch_of`)
and, with ``stream_input``, ``mcunet.stream_input``. Run it before the passes
that choose kernels: the patch stage's kernels are generated for their
geometry with the layers' choices but no SIMD tile. Light modules stay light.
"""

from __future__ import annotations

import tvm
from tvm import relax

from ..ir import (
    PATCH,
    STREAM_INPUT,
    bindings,
    emit_call,
    is_call,
    is_light,
    main_attrs,
    main_outputs,
    new_main,
    program_of,
)
from ..patching.regions import plan_patches
from .rewrite_util import Substitute, module_pass


def patch_inference(
    mod: tvm.IRModule, split_step: int, grid: tuple[int, int], stream_input: bool = False
) -> tvm.IRModule:
    """``mod`` with steps ``0..split_step`` of ``main`` run on a ``grid`` of patches.

    ``stream_input``: the input is fetched band by band (``InputRows`` steps)
    instead of held whole.
    """
    prog = program_of(mod)
    plan = plan_patches(prog, split_step, grid, stream_input)
    light = is_light(mod)
    func = mod["main"]
    attrs = {**main_attrs(mod), PATCH: plan.info.to_json()}
    if stream_input:
        attrs[STREAM_INPUT] = True
    bb = relax.BlockBuilder()
    gmap: dict[tvm.ir.GlobalVar, tvm.ir.GlobalVar] = {}  # added in emission order, as kernels are first used
    with new_main(bb, func.params[0], attrs) as result:
        local: dict[str, relax.Expr] = {prog.input: func.params[0]}
        for call in plan.calls:
            local[call.output] = emit_call(bb, call.kernel, call.op, [local[n] for n in call.inputs], call.const_args,
                                           call.choice, light=light)
        env: dict[relax.Var, relax.Expr] = {}
        step = 0
        for binding in bindings(mod):
            var, value = binding.var, binding.value
            if isinstance(value, relax.Var):
                env[var] = env.get(value, value)
                continue
            step += 1
            if step - 1 < split_step:
                continue  # inside the patch stage
            if step - 1 == split_step:
                env[var] = local[plan.split]
                continue
            value = Substitute(env).visit_expr(value)
            if is_call(value, "relax.call_tir"):
                gvar = value.args[0]
                if gvar not in gmap:
                    gmap[gvar] = bb.add_func(mod[gvar], gvar.name_hint)
                value = relax.call_tir(gmap[gvar], list(value.args[1].fields), var.ty)
            env[var] = bb.emit(value)
        result(*(env.get(o, o) for o in main_outputs(mod)))
    return relax.transform.DeadCodeElimination(["main"])(bb.get())


def PatchInference(  # noqa: N802 (TVM pass naming)
    split_step: int, grid: tuple[int, int], stream_input: bool = False
) -> tvm.transform.Pass:
    """Pass form of :func:`patch_inference`."""
    return module_pass(lambda mod: patch_inference(mod, split_step, grid, stream_input), "mcunet.PatchInference")
