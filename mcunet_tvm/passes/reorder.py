"""ReorderForPeak: run the steps in the topological order with the lowest peak of live bytes.

A chain has one order. Where the graph branches (parallel paths that later
join), running one path to its narrow end before starting the next keeps
fewer wide tensors alive. The order comes from :func:`mcunet_tvm.planner.schedule.best_order`
on the module's memory graph (so it sees each kernel's scratch and overlaps:
run it after the passes that choose kernels); ``main``'s bindings are then
re-emitted in that order, nothing else changes. Patched modules keep their
order: patches already run one after another, the order that keeps the peak low.
"""

from __future__ import annotations

import tvm
from tvm import relax

from ..ir import bindings, main_attrs, main_outputs, new_main, patch_of, program_of
from ..planner.schedule import best_order
from .rewrite_util import Substitute, module_pass


def reorder_for_peak(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with ``main``'s steps in the lowest-peak topological order."""
    if patch_of(mod) is not None:
        return mod
    order = best_order(program_of(mod).memory_graph())
    if order == sorted(order):
        return mod
    prefix: list[relax.Binding] = []  # aliases of the input
    steps: list[list[relax.Binding]] = []  # each step's binding, then the aliases of its result
    for binding in bindings(mod):
        if not isinstance(binding.value, relax.Var):
            steps.append([binding])
        else:
            (steps[-1] if steps else prefix).append(binding)
    func = mod["main"]
    bb = relax.BlockBuilder()
    gmap = {gvar: bb.add_func(f, gvar.name_hint) for gvar, f in mod.functions.items() if gvar.name_hint != "main"}
    env: dict[relax.Var, relax.Expr] = {}
    with new_main(bb, list(func.params), main_attrs(mod)) as result:
        for i in [None, *order]:
            for binding in prefix if i is None else steps[i]:
                value = Substitute(env).visit_expr(binding.value)
                if isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.call_tir"):
                    value = relax.call_tir(gmap[value.args[0]], list(value.args[1].fields), binding.var.ty)
                env[binding.var] = value if isinstance(binding.value, relax.Var) else bb.emit(value)
        result(*(env.get(o, o) for o in main_outputs(mod)))
    return bb.get()


def ReorderForPeak() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`reorder_for_peak`."""
    return module_pass(reorder_for_peak, "mcunet.ReorderForPeak")
