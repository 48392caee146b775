"""Helpers shared by the passes: rebuilding ``main`` binding by binding, regenerating kernels."""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import relax

from ..ir import bindings, is_call, main_attrs, main_outputs, new_main
from ..kernels import KernelChoice, build_kernel
from ..kernels.choice import choice_of, is_stub, op_of
from ..ops import OpDesc


@relax.expr_functor.mutator
class Substitute(relax.PyExprMutator):
    """Replace variables by the expressions they were rewritten to."""

    def __init__(self, env: dict) -> None:
        super().__init__()
        self.env = env

    def visit_var_(self, op: relax.Var) -> relax.Expr:
        return self.env.get(op, op)

    def visit_dataflow_var_(self, op) -> relax.Expr:
        return self.env.get(op, op)


def function_attrs(func: relax.Function) -> dict:
    """The attributes of ``func`` as a plain dict (for ``BlockBuilder.function``)."""
    return {k: func.attrs[k] for k in func.attrs.keys()} if func.attrs is not None else {}


def module_pass(fn: Callable[[tvm.IRModule], tvm.IRModule], name: str) -> tvm.transform.Pass:
    """Wrap a module-to-module function as a ``tvm.transform.Pass``."""
    return tvm.transform.module_pass(lambda mod, _ctx: fn(mod), opt_level=0, name=name)


def rechoose_kernels(
    mod: tvm.IRModule, choose: Callable[[OpDesc, KernelChoice], KernelChoice | None], names: set[str] | None = None
) -> tvm.IRModule:
    """``mod`` with every kernel (of ``names``, default all) whose choice ``choose`` changes
    regenerated: same name, same graph.

    ``choose(op, choice)`` returns the new choice, or None (or the same choice) to keep the
    kernel; stubs stay stubs.
    """
    updates = {}
    for gvar, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc) or (op := op_of(func)) is None:
            continue
        if names is not None and gvar.name_hint not in names:
            continue
        old = choice_of(func)
        new = choose(op, old)
        if new is not None and new != old:
            updates[gvar] = build_kernel(op, new, light=gvar.name_hint if is_stub(func) else "")
    if not updates:
        return mod
    return tvm.IRModule({gvar: updates.get(gvar, func) for gvar, func in mod.functions.items()}, attrs=mod.attrs)


SwitchCall = Callable[[relax.BlockBuilder, int, relax.Call, relax.Var], relax.Expr]


def switch_calls(mod: tvm.IRModule, steps: frozenset[int], emit: SwitchCall) -> tvm.IRModule:
    """``mod`` with ``main`` re-emitted binding by binding, the kernel calls at ``steps``
    replaced by what ``emit(bb, step, call, var)`` emits; ``step`` counts the bindings that are
    not aliases, as :attr:`mcunet_tvm.ir.Program.calls` does.

    ``call`` has its arguments already rewritten; every other kernel keeps its function (copied
    into the new module under its name). Dead kernels are dropped.
    """
    bb = relax.BlockBuilder()
    env: dict[relax.Var, relax.Expr] = {}
    gmap = {gvar: bb.add_func(f, gvar.name_hint) for gvar, f in mod.functions.items() if gvar.name_hint != "main"}
    step = 0
    with new_main(bb, list(mod["main"].params), main_attrs(mod)) as result:
        for binding in bindings(mod):
            var, value = binding.var, Substitute(env).visit_expr(binding.value)
            if isinstance(binding.value, relax.Var):
                env[var] = value
                continue
            if is_call(value, "relax.call_tir"):
                if step in steps:
                    env[var] = emit(bb, step, value, var)
                else:
                    env[var] = bb.emit(relax.call_tir(gmap[value.args[0]], list(value.args[1].fields), var.ty))
            else:
                env[var] = bb.emit(value)
            step += 1
        result(*(env.get(o, o) for o in main_outputs(mod)))
    return relax.transform.DeadCodeElimination(["main"])(bb.get())
