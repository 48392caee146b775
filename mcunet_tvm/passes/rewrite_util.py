"""Helpers shared by the passes that rebuild ``main`` binding by binding."""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import relax


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
