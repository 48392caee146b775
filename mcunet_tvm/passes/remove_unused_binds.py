"""RemoveUnusedBinds: delete the scalar bindings of a lowered PrimFunc that nothing reads.

Kernels bind names to values with ``Bind`` statements (``v_7 = p1_w[v] * 2``)
and ``CommonSubexprElim`` adds more (``cse_v1 = v + 4``). ``StmtSimplify``,
run after ``UnrollLoop``, substitutes the bindings whose value became a
constant or a plain variable (``v_70 = 6``, ``v_38 = cse_v13``) into their
uses but leaves the ``Bind`` statements behind, and CSE does not remove them
either: each would be a C local nothing reads (dead code, and an error under
``-Wunused-variable``). In the models of the zoo about one binding in
fourteen is such a leftover.

This pass removes every ``tirx.Bind`` whose variable no later statement of
its scope reads and whose value has no side effect. Values with calls to
external functions (``call_extern``, ``call_pure_extern``, packed calls, calls
of other functions) are kept: what an external function does is not in
the IR (TVM's "pure" mark on ``call_pure_extern`` is the caller's claim), and
the C compiler drops a call it can prove useless anyway. Arithmetic,
comparisons, casts, loads, selects and the intrinsics TVM marks pure or
read-only are side-effect free.

TVM 0.27 TIR binds with flat statements: a ``Bind`` has no body, its
variable is visible in the statements after it in the enclosing scope
(``SeqStmt``, the body of a ``For``, ...). Statements are visited in reverse
program order with the set of variables read further on, so a binding read
only by a deleted binding is deleted too (chains vanish in one pass). The
rewriter is explicit over the statement and expression types of lowered TIR
and raises ``TypeError`` on any other node.
"""

from __future__ import annotations

import tvm
from tvm import ir, tirx
from tvm.ir import prim

__all__ = ["RemoveUnusedBinds", "remove_unused_binds"]

#: call ops that reach code outside the function: never pure, whatever TVM's effect attribute says
_EXTERN_CALLS = frozenset({
    "tirx.call_extern",
    "tirx.call_pure_extern",
    "tirx.call_llvm_intrin",
    "tirx.call_llvm_pure_intrin",
    "tirx.call_spirv_pure_glsl450",
    "tirx.tvm_call_packed",
    "tirx.tvm_call_cpacked",
    "tirx.tvm_call_trace_packed",
    "tirx.tvm_call_packed_lowered",
    "tirx.tvm_call_cpacked_lowered",
    "tirx.tvm_call_trace_packed_lowered",
})

#: TVM's ``CallEffectKind``: up to ``ReadState`` a call changes nothing
_READ_STATE = 2

_BINARY = (
    prim.Add, prim.Sub, prim.Mul, prim.Div, prim.Mod, prim.FloorDiv, prim.FloorMod, prim.Min, prim.Max,
    prim.EQ, prim.NE, prim.LT, prim.LE, prim.GT, prim.GE, prim.And, prim.Or,
    prim.LShift, prim.RShift, prim.BitwiseAnd, prim.BitwiseOr, prim.BitwiseXor,
)
_LEAVES = (ir.Var, prim.IntImm, prim.FloatImm, ir.StringImm)


def remove_unused_binds(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """``func`` without the side-effect-free bindings nothing reads (see the module docstring)."""
    body, _ = _stmt(func.body, set())
    if body.same_as(func.body):
        return func
    return tirx.PrimFunc(func.params, body, func.ret_type, func.attrs)


def RemoveUnusedBinds() -> tvm.transform.Pass:  # noqa: N802 - TVM's pass naming
    """The ``tvm.transform.Pass`` of :func:`remove_unused_binds`, for every PrimFunc of a module."""
    return tirx.transform.prim_func_pass(
        lambda func, _mod, _ctx: remove_unused_binds(func), opt_level=0, name="RemoveUnusedBinds"
    )


def has_side_effect(expr: ir.Expr) -> bool:
    """Whether evaluating ``expr`` may do more than compute a value (an external or opaque call)."""
    if isinstance(expr, _LEAVES):
        return False
    if isinstance(expr, _BINARY):
        return has_side_effect(expr.a) or has_side_effect(expr.b)
    if isinstance(expr, (prim.Cast, prim.Broadcast)):
        return has_side_effect(expr.value)
    if isinstance(expr, (prim.Not, prim.BitwiseNot)):
        return has_side_effect(expr.a)
    if isinstance(expr, prim.Select):
        return any(has_side_effect(e) for e in (expr.condition, expr.true_value, expr.false_value))
    if isinstance(expr, prim.Ramp):
        return has_side_effect(expr.base) or has_side_effect(expr.stride)
    if isinstance(expr, prim.Let):
        return has_side_effect(expr.value) or has_side_effect(expr.body)
    if isinstance(expr, ir.TensorLoad):
        return any(has_side_effect(i) for i in expr.indices)
    if isinstance(expr, ir.Call):
        return not _pure_call(expr.op) or any(has_side_effect(a) for a in expr.args)
    raise TypeError(f"RemoveUnusedBinds: unexpected expression {type(expr).__name__}: {expr}")


def _pure_call(op: ir.Expr) -> bool:
    if not isinstance(op, ir.Op) or op.name in _EXTERN_CALLS:
        return False  # a GlobalVar: another function of the module
    effect = op.get_attr("TCallEffectKind")
    return effect is not None and int(effect) <= _READ_STATE


def _reads(*exprs) -> set:
    """The variables ``exprs`` read (buffers included)."""
    out: set = set()
    for expr in exprs:
        if expr is None:
            continue
        if isinstance(expr, ir.Var):
            out.add(expr)
        elif isinstance(expr.ty, ir.PrimType):
            out.update(tirx.analysis.undefined_vars(expr))
        elif isinstance(expr, ir.Call):  # a pointer: buffer_data(buf), address_of(...)
            out |= _reads(*expr.args)
        else:
            raise TypeError(f"RemoveUnusedBinds: unexpected expression {type(expr).__name__}: {expr}")
    return out


def _stmt(stmt: tirx.Stmt, live: set) -> tuple[tirx.Stmt | None, set]:
    """``stmt`` rewritten, given the variables read after it; returns it (None: deleted) and ``live`` before it."""
    rule = _RULES.get(type(stmt))
    if rule is None:
        raise TypeError(f"RemoveUnusedBinds: unexpected statement {type(stmt).__name__}")
    return rule(stmt, live)


def _bind(stmt: tirx.Bind, live: set) -> tuple[tirx.Stmt | None, set]:
    if stmt.var not in live and not has_side_effect(stmt.value):
        return None, live
    return stmt, live | _reads(stmt.value)


def _seq(stmt: tirx.SeqStmt, live: set) -> tuple[tirx.Stmt, set]:
    kept: list[tirx.Stmt] = []
    changed = False
    for child in reversed(list(stmt.seq)):
        new, live = _stmt(child, live)
        changed |= new is None or not new.same_as(child)
        if new is not None:
            kept.append(new)
    if not changed:
        return stmt, live
    if not kept:
        return tirx.Evaluate(0), live
    return (kept[0] if len(kept) == 1 else tirx.SeqStmt(kept[::-1], stmt.span)), live  # TVM: no SeqStmt of one


def _body(body: tirx.Stmt, live: set) -> tuple[tirx.Stmt, set]:
    """A nested body: a scope of its own (a deleted single statement becomes a no-op)."""
    new, live = _stmt(body, live)
    return (tirx.Evaluate(0) if new is None else new), live


def _for(stmt: tirx.For, live: set) -> tuple[tirx.Stmt, set]:
    body, inner = _body(stmt.body, live)
    live = live | inner | _reads(stmt.min, stmt.extent, stmt.step)
    if body.same_as(stmt.body):
        return stmt, live
    new = tirx.For(stmt.loop_var, stmt.min, stmt.extent, stmt.kind, body, stmt.thread_binding,
                   stmt.annotations, stmt.step, stmt.span)
    return new, live


def _while(stmt: tirx.While, live: set) -> tuple[tirx.Stmt, set]:
    body, inner = _body(stmt.body, live)
    live = live | inner | _reads(stmt.condition)
    return (stmt if body.same_as(stmt.body) else tirx.While(stmt.condition, body, stmt.span)), live


def _if(stmt: tirx.IfThenElse, live: set) -> tuple[tirx.Stmt, set]:
    then, live_then = _body(stmt.then_case, live)
    other, live_else = (None, live) if stmt.else_case is None else _body(stmt.else_case, live)
    live = live | live_then | live_else | _reads(stmt.condition)
    if then.same_as(stmt.then_case) and (other is None or other.same_as(stmt.else_case)):
        return stmt, live
    return tirx.IfThenElse(stmt.condition, then, other, stmt.span), live


def _attr(stmt: tirx.AttrStmt, live: set) -> tuple[tirx.Stmt, set]:
    body, live = _body(stmt.body, live)
    live = live | _reads(stmt.value)
    if isinstance(stmt.node, ir.Var):
        live = live | {stmt.node}
    if body.same_as(stmt.body):
        return stmt, live
    return tirx.AttrStmt(stmt.node, stmt.attr_key, stmt.value, body, stmt.span), live


def _leaf(*fields: str):
    """A statement without nested statements: it reads the expressions in ``fields``."""

    def rule(stmt: tirx.Stmt, live: set) -> tuple[tirx.Stmt, set]:
        return stmt, live | _reads(*(getattr(stmt, f) for f in fields))

    return rule


def _store(stmt: tirx.BufferStore, live: set) -> tuple[tirx.Stmt, set]:
    return stmt, live | {stmt.buffer} | _reads(stmt.value, *stmt.indices)


def _buffer_shape(stmt: tirx.AllocBuffer, live: set) -> tuple[tirx.Stmt, set]:
    return stmt, live | _reads(*stmt.buffer.ty.shape)


def _decl(stmt: tirx.DeclBuffer, live: set) -> tuple[tirx.Stmt, set]:
    return stmt, live | _reads(stmt.data, *stmt.buffer.ty.shape)


def _assert(stmt: tirx.AssertStmt, live: set) -> tuple[tirx.Stmt, set]:
    return stmt, live | _reads(stmt.condition)


_RULES = {
    tirx.Bind: _bind,
    tirx.SeqStmt: _seq,
    tirx.For: _for,
    tirx.While: _while,
    tirx.IfThenElse: _if,
    tirx.AttrStmt: _attr,
    tirx.BufferStore: _store,
    tirx.Evaluate: _leaf("value"),
    tirx.Return: _leaf("value"),
    tirx.AllocBuffer: _buffer_shape,
    tirx.DeclBuffer: _decl,
    tirx.AssertStmt: _assert,
    tirx.Break: _leaf(),
    tirx.Continue: _leaf(),
}
