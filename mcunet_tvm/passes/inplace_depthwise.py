"""InplaceDepthwise: let a depthwise convolution write its output over its input (MCUNet).

In an integer module (after ``LowerQDQToInteger``), a depthwise conv whose
input tensor is not read by anything after it is switched to the in-place
kernel variant (``Conv2D.inplace``): it computes one output channel into an
OH x OW temporary and copies it over that channel of the input. The memory
planner then gives the output the input's storage, so the layer needs
``max(in, out) + OH*OW`` bytes instead of ``in + out``. Results are bit-exact
with the out-of-place kernel (same arithmetic, different loop order).
"""

from __future__ import annotations

import dataclasses

import tvm
from tvm import relax

from ..kernels import can_run_inplace, make_kernel
from ..ops import op_from_prim_func
from .rewrite_util import Substitute, function_attrs, module_pass


def _is_call(value, name: str) -> bool:
    return isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name == name


def inplace_depthwise(mod: tvm.IRModule) -> tvm.IRModule:
    """Switch every depthwise conv whose input dies at it to the in-place kernel."""
    func = mod["main"]
    bindings = [(b.var, b.value) for block in func.body.blocks for b in block.bindings]
    # storage groups: a reshape view or a plain alias shares its source's storage
    base: dict[relax.Var, relax.Var] = {}
    for var, value in bindings:
        if isinstance(value, relax.Var):
            base[var] = base.get(value, value)
        elif _is_call(value, "relax.reshape"):
            base[var] = base.get(value.args[0], value.args[0])
    reads: dict[relax.Var, int] = {}  # storage group -> number of reading bindings (+1 if returned)
    for _, value in bindings:
        if isinstance(value, relax.Var) or _is_call(value, "relax.reshape"):
            continue
        for v in relax.analysis.free_vars(value):
            group = base.get(v, v)
            reads[group] = reads.get(group, 0) + 1
    out = func.body.body
    reads[base.get(out, out)] = reads.get(base.get(out, out), 0) + 1

    updated = {}
    for var, value in bindings:
        if not _is_call(value, "relax.call_tir"):
            continue
        op = op_from_prim_func(mod[value.args[0]])
        src = value.args[1].fields[0]
        if can_run_inplace(op, input_dies=reads.get(base.get(src, src), 0) == 1):
            updated[var] = dataclasses.replace(op, inplace=True)
    if not updated:
        return mod

    bb = relax.BlockBuilder()
    attrs = function_attrs(func)
    env: dict[relax.Var, relax.Expr] = {}
    gmap = {gvar: bb.add_func(f, gvar.name_hint) for gvar, f in mod.functions.items() if gvar.name_hint != "main"}
    with bb.function("main", list(func.params), attrs=attrs):
        with bb.dataflow():
            for var, value in bindings:
                new_value = Substitute(env).visit_expr(value)
                if _is_call(value, "relax.call_tir"):
                    old = value.args[0]
                    if var in updated:
                        gvar = bb.add_func(make_kernel(updated[var]), f"{old.name_hint}_inplace")
                    else:
                        gvar = gmap[old]
                    new_value = relax.call_tir(gvar, list(new_value.args[1].fields), var.ty)
                env[var] = bb.emit(new_value)
            result = bb.emit_output(env.get(out, out))
        bb.emit_func_output(result)
    return relax.transform.DeadCodeElimination(["main"])(bb.get())


def InplaceDepthwise() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`inplace_depthwise`."""
    return module_pass(inplace_depthwise, "mcunet.InplaceDepthwise")
