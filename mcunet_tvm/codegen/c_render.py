"""C for lowered kernel PrimFuncs, rendered from the TIR by rules.

The kernels reach this module lowered and outlined by ``SplitHostDevice``
(plain pointer parameters), with intrinsics lowered (``LowerIntrin``) and
unused bindings removed (``passes.RemoveUnusedBinds``). Each TIR node type has
one rule that prints it; the formats are those of TVM's C host code generator
(``src/target/source/codegen_c.cc``, ``codegen_c_host.cc`` and
``codegen_source_base.cc``), so the C reads as TVM's would:

- one C identifier per variable from a name supply like TVM's
  ``UniqueNameSupply``: a name hint used again gets ``_1``, ``_2``, ...;
- binary operators in parentheses, ``(a + b)``; casts ``((int32_t)x)``;
  integer constants bare when ``int32``, else cast, ``(int8_t)89``;
- ``min``/``max`` as conditional expressions over their operands, each
  operand that is not a name or a constant first bound to a fresh ``v_``
  local (TVM's SSA helper: an operand printed identically while its scope is
  open reuses that local);
- statements indented two spaces per scope;
- unlike TVM, a parameter the body never names is cast to ``void`` first
  (``(void)p1_w_ptr;``: a convolution whose taps all read padding), so
  ``-Wextra -Werror`` compiles it.

The names are those TVM gives the function as lowered: :func:`variable_names`
names every variable of the function before ``RemoveUnusedBinds`` (deleted
bindings included), and :func:`render_function` uses those names, so a deleted
binding leaves a gap in the numbering (``v_34``, ``v_36``) where TVM printed
an unused local. ``v_`` operand locals, ``let`` names and ``condval`` are
named as they are printed.

Only the node types that lowered scalar kernels contain have rules; any
other raises ``NotImplementedError`` naming it. The renderer reads the TIR
only: nothing here edits C text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import ir, tirx
from tvm.ir import prim

__all__ = ["NameSupply", "render_function", "render_prototype", "variable_names"]

#: names TVM's C code generator reserves in every function (``CodeGenC::ReserveKeywordsAsUnique``)
RESERVED = (
    "_", "extern", "void", "int", "float", "double", "char", "unsigned", "short", "long", "if", "else",
    "switch", "case", "default", "for", "do", "while", "goto", "register", "continue", "break", "typedef",
    "struct", "enum", "union", "return",
)

#: the GCC attribute macro of ``mcunet_simd.h`` a kernel with ``mcunet.no_preschedule`` is defined with
NO_PRESCHEDULE_MACRO = "MCUNET_NO_PRESCHEDULE"

#: the external functions kernels may call, by name prefix: declared (or macros) in ``mcunet_simd.h``,
#: or compiler builtins. The C has no forward declarations of its own (TVM printed one per call).
EXTERN_PREFIXES = ("mcunet_", "__builtin_")

# DLPack type codes
_INT, _UINT, _FLOAT, _BOOL = 0, 1, 2, 6

#: C operators of binary nodes: ``(a op b)``
_BINARY_OPS: dict[type, str] = {
    prim.Add: "+", prim.Sub: "-", prim.Mul: "*", prim.Div: "/",
    prim.EQ: "==", prim.NE: "!=", prim.LT: "<", prim.LE: "<=", prim.GT: ">", prim.GE: ">=",
    prim.And: "&&", prim.Or: "||",
    prim.LShift: "<<", prim.RShift: ">>", prim.BitwiseAnd: "&", prim.BitwiseOr: "|", prim.BitwiseXor: "^",
}
#: ``min``/``max``: the comparison of ``((a) < (b) ? (a) : (b))``
_CONDITIONAL_OPS: dict[type, str] = {prim.Min: "<", prim.Max: ">"}


class NameSupply:
    """Unique C identifiers from name hints, exactly as TVM's ``UniqueNameSupply::FreshName``.

    The first use of a hint is the hint itself (``.`` becomes ``_``); later ones
    get ``_1``, ``_2``, ... , skipping names already taken.
    """

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._counters: dict[str, int] = dict.fromkeys(reserved, 0)

    def __contains__(self, name: str) -> bool:
        return name in self._counters

    def fresh(self, hint: str) -> str:
        name = (hint or "v").replace(".", "_")
        if name not in self._counters:
            self._counters[name] = 0
            return name
        suffix = self._counters[name]
        candidate = name
        while candidate in self._counters:
            suffix += 1
            candidate = f"{name}_{suffix}"
        self._counters[name] = suffix
        self._counters[candidate] = 0
        return candidate

    def take(self, name: str) -> None:
        """Use ``name`` as it is; an error if it is taken (then the names given were not TVM's)."""
        if name in self._counters:
            raise ValueError(f"C name {name} is already taken")
        self._counters[name] = 0


@dataclass
class _Temp:
    """A ``v_`` local holding a printed operand, valid while the scope it was made in is open."""

    name: str
    scope: int


@dataclass
class Context:
    """The state of rendering one function: names, buffer types, open scopes and the text so far."""

    #: C identifiers chosen before rendering (``variable_names``); the rest come from ``names``
    given: Mapping[ir.Var, str] = field(default_factory=dict)
    names: NameSupply = field(default_factory=lambda: NameSupply(RESERVED))
    ids: dict[ir.Var, str] = field(default_factory=dict)
    #: pointer and buffer variables -> the element type their C pointer has
    pointee: dict[ir.Var, ir.PrimType] = field(default_factory=dict)
    #: scopes begun so far, True while open (TVM's ``scope_mark_``)
    scopes: list[bool] = field(default_factory=list)
    temps: dict[str, _Temp] = field(default_factory=dict)
    #: the C identifiers printed so far
    printed: set[str] = field(default_factory=set)
    indent: int = 0
    out: list[str] = field(default_factory=list)

    # -- text
    def write(self, text: str) -> None:
        self.out.append(text)

    def line(self, text: str) -> None:
        self.out.append(" " * self.indent + text + "\n")

    def begin_scope(self) -> int:
        self.scopes.append(True)
        self.indent += 2
        return len(self.scopes) - 1

    def end_scope(self, scope: int) -> None:
        self.scopes[scope] = False
        self.indent -= 2

    # -- names
    def define(self, var: ir.Var, hint: str | None = None) -> str:
        """The C identifier of a variable defined here (TVM's ``AllocVarID``)."""
        if var in self.ids:
            raise ValueError(f"variable {var.name} defined twice (the TIR is not in SSA form)")
        if var in self.given:
            name = self.given[var]
            self.names.take(name)
        else:
            name = self.names.fresh(var.name if hint is None else hint)
            name = name.replace(":", "_").replace("-", "_")
        self.ids[var] = name
        return name

    def var_id(self, var: ir.Var) -> str:
        if var not in self.ids:
            raise ValueError(f"variable {var.name} is used but not defined")
        self.printed.add(self.ids[var])
        return self.ids[var]

    def mark_const(self, text: str) -> None:
        """A printed ``int32`` constant: an operand that needs no local (TVM's ``MarkConst``)."""
        self.temps.setdefault(text, _Temp(text, 0))

    def temp(self, text: str, ty: ir.PrimType) -> str:
        """``text`` as an operand: itself if a name, else a ``v_`` local (TVM's ``SSAGetID``)."""
        if text in self.names:
            return text
        known = self.temps.get(text)
        if known is not None and self.scopes[known.scope]:
            return known.name
        name = self.names.fresh("v_")
        self.temps[text] = _Temp(name, len(self.scopes) - 1)
        self.line(f"{c_type(ty)} {name} = {_strip_outer_parens(text)};")
        return name


def _strip_outer_parens(text: str) -> str:
    """``(a + b)`` -> ``a + b``; ``(a) + (b)`` unchanged (TVM's ``CheckOutermostBracketMatch``)."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return text[1:-1] if i == len(text) - 1 else text
    return text


# ---- types -----------------------------------------------------------------------------------
def c_type(ty: ir.Type) -> str:
    """The C spelling of a TIR type (``int8_t``, ``int32_t*``, ``bool``, ...)."""
    if isinstance(ty, ir.PointerType):
        return c_type(ty.element_type) + "*"
    if isinstance(ty, ir.PrimType):
        return _prim_type(ty)
    raise NotImplementedError(f"C renderer: no C type for {type(ty).__name__} {ty}")


def _prim_type(ty: ir.PrimType) -> str:
    code, bits, lanes = ty.dtype.type_code, ty.dtype.bits, ty.dtype.lanes
    if lanes == 0 and bits == 0:
        return "void"
    if lanes != 1:
        raise NotImplementedError(f"C renderer: vector type {ty}")
    if code == _BOOL:
        return "bool"
    if code == _FLOAT and bits in (16, 32, 64):
        return {16: "half", 32: "float", 64: "double"}[bits]
    if code in (_INT, _UINT) and bits in (1, 8, 16, 32, 64):
        return ("u" if code == _UINT else "") + ("int32_t" if bits == 1 else f"int{bits}_t")
    raise NotImplementedError(f"C renderer: no C type for {ty}")


def _element_type(var: ir.Var) -> ir.PrimType:
    """The element type of a buffer variable."""
    return var.ty.dtype


def _scope(var: ir.Var) -> str:
    return var.ty.storage_scope or "global"


# ---- expressions -----------------------------------------------------------------------------
def render_expr(ctx: Context, expr: ir.Expr) -> str:
    """The C text of ``expr`` (TVM's ``PrintExpr``); operand locals it needs go to ``ctx`` first."""
    if isinstance(expr, ir.Var):
        return ctx.var_id(expr)
    kind = type(expr)
    if kind in _BINARY_OPS:
        _check_scalar(expr)
        return f"({render_expr(ctx, expr.a)} {_BINARY_OPS[kind]} {render_expr(ctx, expr.b)})"
    if kind in _CONDITIONAL_OPS:
        return _conditional(ctx, expr, _CONDITIONAL_OPS[kind])
    rule = _EXPR_RULES.get(kind)
    if rule is None:
        raise NotImplementedError(f"C renderer: no rule for expression node {kind.__name__}: {expr}")
    return rule(ctx, expr)


def _check_scalar(expr: ir.Expr) -> None:
    if expr.ty.dtype.lanes != 1:
        raise NotImplementedError(f"C renderer: vector expression {type(expr).__name__} of type {expr.ty}")


def _int(ctx: Context, imm: prim.IntImm) -> str:
    if imm.ty == ir.PrimType("int32"):
        text = str(imm.value)
        ctx.mark_const(text)
        return text
    return f"({c_type(imm.ty)}){imm.value}"


def _float(ctx: Context, imm: prim.FloatImm) -> str:
    bits = imm.ty.dtype.bits
    if bits in (32, 64):
        text = _exact_float(imm.value, bits) + ("f" if bits == 32 else "")
        ctx.mark_const(text)
        return text
    if bits == 16:
        return f"({c_type(imm.ty)}){imm.value:e}f"
    raise NotImplementedError(f"C renderer: float constant of {bits} bits")


def _exact_float(value: float, bits: int) -> str:
    """``value`` as a C literal that reads back as the same ``bits``-bit float: ``%e`` where that is
    exact, else with every digit needed (9 significant digits for float32, 17 for double)."""
    width = np.float32 if bits == 32 else np.float64
    text = f"{value:e}"
    if not np.isfinite(value) or width(float(text)) == width(value):
        return text
    return f"{value:.{8 if bits == 32 else 16}e}"


def _string(ctx: Context, imm: ir.StringImm) -> str:
    return f'"{imm.value}"'


def _cast(ctx: Context, cast: prim.Cast) -> str:
    value = render_expr(ctx, cast.value)
    return value if cast.value.ty == cast.ty else f"(({c_type(cast.ty)}){value})"


def _mod(ctx: Context, expr: prim.Mod) -> str:
    _check_scalar(expr)
    a, b = render_expr(ctx, expr.a), render_expr(ctx, expr.b)
    if expr.ty.dtype.type_code in (_INT, _UINT):
        return f"({a} % {b})"
    return f"{'fmodf' if expr.ty.dtype.bits == 32 else 'fmod'}({a}, {b})"


def _conditional(ctx: Context, expr, compare: str) -> str:
    """``min``/``max`` of TVM's C host: ``((a) < (b) ? (a) : (b))`` over operand locals."""
    _check_scalar(expr)
    a = ctx.temp(render_expr(ctx, expr.a), expr.a.ty)
    b = ctx.temp(render_expr(ctx, expr.b), expr.b.ty)
    return f"(({a}) {compare} ({b}) ? ({a}) : ({b}))"


def _not(ctx: Context, expr: prim.Not) -> str:
    return "!" + render_expr(ctx, expr.a)


def _bitwise_not(ctx: Context, expr: prim.BitwiseNot) -> str:
    return f"(~{render_expr(ctx, expr.a)})"


def _select(ctx: Context, expr: prim.Select) -> str:
    cond = render_expr(ctx, expr.condition)
    true, false = render_expr(ctx, expr.true_value), render_expr(ctx, expr.false_value)
    return f"({cond} ? {true} : {false})"


def _let(ctx: Context, let: prim.Let) -> str:
    """``T var = value;`` on a line of its own, then the body; the name is free again afterwards (as in TVM)."""
    if isinstance(let.var.ty, ir.PointerType):
        raise NotImplementedError(f"C renderer: let of the pointer {let.var.name}")
    value = render_expr(ctx, let.value)
    ctx.line(f"{c_type(let.var.ty)} {ctx.define(let.var)} = {value};")
    body = render_expr(ctx, let.body)
    del ctx.ids[let.var]
    return body


def _load(ctx: Context, load: ir.TensorLoad) -> str:
    _check_scalar(load)
    if len(load.indices) != 1:
        raise NotImplementedError("C renderer: load from a buffer that is not flat")
    return _buffer_ref(ctx, load.ty, load.source, load.indices[0])


def _buffer_ref(ctx: Context, ty: ir.PrimType, buffer: ir.Var, index: ir.Expr) -> str:
    """``buf[i]``, through a cast pointer when the element or pointer types differ (``GetBufferRef``)."""
    vid = ctx.var_id(buffer)
    element = _element_type(buffer)
    pointer = vid if ctx.pointee.get(buffer) == element else f"(({c_type(element)}*){vid})"
    index_text = render_expr(ctx, index)
    if ty.dtype.bits < 8:
        raise NotImplementedError(f"C renderer: sub-byte element type {ty}")
    if ty == element:
        return f"{pointer}[{index_text}]"
    return f"*({c_type(ty)}*)({pointer} + {index_text})"


def _call(ctx: Context, call: ir.Call) -> str:
    op = call.op
    if isinstance(op, ir.GlobalVar):
        return _call_function(ctx, call.ty, op.name_hint, list(call.args))
    if not isinstance(op, ir.Op):
        raise NotImplementedError(f"C renderer: call of {type(op).__name__}")
    rule = _CALL_RULES.get(op.name)
    if rule is not None:
        return rule(ctx, call)
    symbol = op.get_attr("TGlobalSymbol")
    if symbol is not None:
        return _call_function(ctx, call.ty, str(symbol), list(call.args))
    raise NotImplementedError(f"C renderer: no rule for call of {op.name}")


def _call_function(ctx: Context, ty: ir.Type, name: str, args: list[ir.Expr]) -> str:
    """``name(a, b)`` (TVM's ``PrintCallExtern``); a pointer result is cast to its type."""
    text = f"{name}({', '.join(render_expr(ctx, a) for a in args)})"
    return f"(({c_type(ty)}){text})" if isinstance(ty, ir.PointerType) else text


def _call_extern(ctx: Context, call: ir.Call) -> str:
    name = call.args[0].value
    if not name.startswith(EXTERN_PREFIXES):
        raise NotImplementedError(f"C renderer: call of {name}, which neither mcunet_simd.h nor the compiler declares")
    return _call_function(ctx, call.ty, name, list(call.args)[1:])


def _buffer_data(ctx: Context, call: ir.Call) -> str:
    return ctx.var_id(call.args[0])


def _address_of(ctx: Context, call: ir.Call) -> str:
    target = call.args[0]
    if isinstance(target, ir.TensorLoad):
        index = target.indices[0]
        if isinstance(index, prim.Ramp):
            index = index.base
        return f"(&({_buffer_ref(ctx, target.ty, target.source, index)}))"
    if isinstance(target, ir.Var):
        return f"(&({render_expr(ctx, target)}))"
    raise NotImplementedError(f"C renderer: address_of {type(target).__name__}")


def _if_head(cond: str) -> str:
    """``if (c) {``; a condition printed in parentheses is not wrapped again (even ``(a) && (b)``, as TVM)."""
    return f"if {cond} {{" if cond.startswith("(") and cond.endswith(")") else f"if ({cond}) {{"


def _if_then_else(ctx: Context, call: ir.Call) -> str:
    """A ``condval`` local set by an ``if``/``else`` (only the branch taken is evaluated)."""
    result = ctx.names.fresh("condval")
    cond = render_expr(ctx, call.args[0])
    ctx.line(f"{c_type(call.ty)} {result};")
    ctx.line(_if_head(cond))
    for branch, value in enumerate(call.args[1:]):
        scope = ctx.begin_scope()
        ctx.line(f"{result} = {render_expr(ctx, value)};")
        ctx.end_scope(scope)
        ctx.line("} else {" if branch == 0 else "}")
    return result


_CALL_RULES: dict[str, Callable[[Context, ir.Call], str]] = {
    "tirx.call_extern": _call_extern,
    "tirx.call_pure_extern": _call_extern,
    "tirx.buffer_data": _buffer_data,
    "tirx.address_of": _address_of,
    "prim.if_then_else": _if_then_else,
}

_EXPR_RULES: dict[type, Callable[[Context, ir.Expr], str]] = {
    prim.IntImm: _int,
    prim.FloatImm: _float,
    ir.StringImm: _string,
    prim.Cast: _cast,
    prim.Mod: _mod,
    prim.Not: _not,
    prim.BitwiseNot: _bitwise_not,
    prim.Select: _select,
    prim.Let: _let,
    ir.TensorLoad: _load,
    ir.Call: _call,
}


# ---- statements ------------------------------------------------------------------------------
def render_stmt(ctx: Context, stmt: tirx.Stmt) -> None:
    """Append the C of ``stmt`` to ``ctx`` (TVM's ``PrintStmt``)."""
    rule = _STMT_RULES.get(type(stmt))
    if rule is None:
        raise NotImplementedError(f"C renderer: no rule for statement node {type(stmt).__name__}")
    rule(ctx, stmt)


def _seq(ctx: Context, stmt: tirx.SeqStmt) -> None:
    for child in stmt.seq:
        render_stmt(ctx, child)


def _bind(ctx: Context, stmt: tirx.Bind) -> None:
    if isinstance(stmt.var.ty, ir.PointerType):
        raise NotImplementedError(f"C renderer: binding of the pointer {stmt.var.name}")
    value = render_expr(ctx, stmt.value)
    ctx.line(f"{c_type(stmt.var.ty)} {ctx.define(stmt.var)} = {value};")


def _alloc_buffer(ctx: Context, stmt: tirx.AllocBuffer) -> None:
    buffer = stmt.buffer
    name = ctx.define(buffer, buffer.name + "_ptr")
    size = 1
    for dim in buffer.ty.shape:
        if not isinstance(dim, prim.IntImm):
            raise NotImplementedError(f"C renderer: buffer {buffer.name} of symbolic size")
        size *= dim.value
    _check_global(buffer)
    if "tirx.volatile" in stmt.annotations:
        raise NotImplementedError(f"C renderer: volatile buffer {buffer.name}")
    ctx.line(f"{c_type(_element_type(buffer))} {name}[{size}];")
    ctx.pointee[buffer] = _element_type(buffer)


def _decl_buffer(ctx: Context, stmt: tirx.DeclBuffer) -> None:
    """A buffer view of a pointer already named: the buffer uses that name (TVM prints nothing)."""
    source = stmt.data
    if isinstance(source, ir.Call) and isinstance(source.op, ir.Op) and source.op.name == "tirx.buffer_data":
        source = source.args[0]
    if not (isinstance(source, ir.Var) and source in ctx.ids):
        raise NotImplementedError(f"C renderer: buffer {stmt.buffer.name} declared over {stmt.data}")
    _check_global(stmt.buffer)
    ctx.ids[stmt.buffer] = ctx.ids[source]
    ctx.pointee.setdefault(stmt.buffer, ctx.pointee.get(source, _element_type(stmt.buffer)))


def _check_global(buffer: ir.Var) -> None:
    if _scope(buffer) != "global":
        raise NotImplementedError(f"C renderer: buffer {buffer.name} in storage scope {_scope(buffer)}")


def _attr(ctx: Context, stmt: tirx.AttrStmt) -> None:
    if stmt.attr_key in ("thread_extent", "pragma_import_c"):
        raise NotImplementedError(f"C renderer: attribute {stmt.attr_key}")
    render_stmt(ctx, stmt.body)


def _for(ctx: Context, stmt: tirx.For) -> None:
    begin = render_expr(ctx, stmt.min)
    is_zero = isinstance(stmt.min, prim.IntImm) and stmt.min.value == 0
    end = render_expr(ctx, stmt.extent if is_zero else tvm.arith.Analyzer().simplify(stmt.min + stmt.extent))
    step = None if stmt.step is None else render_expr(ctx, stmt.step)
    var = ctx.define(stmt.loop_var)
    advance = f"++{var}" if step is None else f"{var} += {step}"
    ctx.line(f"for ({c_type(stmt.loop_var.ty)} {var} = {begin}; {var} < {end}; {advance}) {{")
    _block(ctx, stmt.body)
    ctx.line("}")


def _block(ctx: Context, body: tirx.Stmt) -> None:
    scope = ctx.begin_scope()
    render_stmt(ctx, body)
    ctx.end_scope(scope)


def _if(ctx: Context, stmt: tirx.IfThenElse) -> None:
    ctx.line(_if_head(render_expr(ctx, stmt.condition)))
    _block(ctx, stmt.then_case)
    if stmt.else_case is not None:
        ctx.line("} else {")
        _block(ctx, stmt.else_case)
    ctx.line("}")


def _while(ctx: Context, stmt: tirx.While) -> None:
    ctx.line("#pragma unroll 1")
    ctx.line("while (1) {")
    scope = ctx.begin_scope()
    ctx.line(f"if (!({render_expr(ctx, stmt.condition)})) {{ break; }}")
    render_stmt(ctx, stmt.body)
    ctx.end_scope(scope)
    ctx.line("}")


def _store(ctx: Context, stmt: tirx.BufferStore) -> None:
    if len(stmt.indices) != 1:
        raise NotImplementedError("C renderer: store to a buffer that is not flat")
    if stmt.value.ty.dtype.lanes != _element_type(stmt.buffer).dtype.lanes:
        raise NotImplementedError(f"C renderer: vector store to {stmt.buffer.name}")
    value = render_expr(ctx, stmt.value)
    ref = _buffer_ref(ctx, stmt.value.ty, stmt.buffer, stmt.indices[0])
    ctx.line(f"{ref} = {value};")


def _evaluate(ctx: Context, stmt: tirx.Evaluate) -> None:
    if isinstance(stmt.value, prim.IntImm):
        return  # a no-op
    text = render_expr(ctx, stmt.value)
    if text:
        ctx.line(text + ";")


def _return(ctx: Context, stmt: tirx.Return) -> None:
    ctx.write(" " * ctx.indent + "return ")
    ctx.write(render_expr(ctx, stmt.value) + ";\n")


def _break(ctx: Context, stmt: tirx.Break) -> None:
    ctx.line("break;")


def _continue(ctx: Context, stmt: tirx.Continue) -> None:
    ctx.line("continue;")


_STMT_RULES: dict[type, Callable[[Context, tirx.Stmt], None]] = {
    tirx.SeqStmt: _seq,
    tirx.Bind: _bind,
    tirx.AllocBuffer: _alloc_buffer,
    tirx.DeclBuffer: _decl_buffer,
    tirx.AttrStmt: _attr,
    tirx.For: _for,
    tirx.IfThenElse: _if,
    tirx.While: _while,
    tirx.BufferStore: _store,
    tirx.Evaluate: _evaluate,
    tirx.Return: _return,
    tirx.Break: _break,
    tirx.Continue: _continue,
}


# ---- functions -------------------------------------------------------------------------------
def _signature(ctx: Context, name: str, func: tirx.PrimFunc) -> str:
    params = []
    for param in func.params:
        params.append(f"{c_type(param.ty)} {ctx.define(param)}")
        if isinstance(param.ty, ir.PointerType) and isinstance(param.ty.element_type, ir.PrimType):
            ctx.pointee[param] = param.ty.element_type
    return f"{c_type(func.ret_type)} {name}({', '.join(params)})"


def render_prototype(name: str, func: tirx.PrimFunc) -> str:
    """``int32_t name(int8_t* p0_x_ptr, ...)``: the C declarator of kernel ``func`` (no ``;``)."""
    return _signature(Context(), name, func)


def render_function(
    name: str, func: tirx.PrimFunc, names: Mapping[ir.Var, str] | None = None, no_preschedule: bool = False
) -> str:
    """The C definition of kernel ``func`` as ``name``, ending in ``}\\n``.

    ``names``: C identifiers chosen beforehand (see :func:`variable_names`);
    other variables are named as they are defined. ``no_preschedule``: the
    definition starts with the line ``MCUNET_NO_PRESCHEDULE`` (a GCC attribute
    of ``mcunet_simd.h``; the PrimFunc's ``mcunet.no_preschedule`` attribute
    does not survive lowering, so the caller says so).
    """
    ctx = Context(given=names or {})
    head = _signature(ctx, name, func)
    if no_preschedule:
        ctx.line(NO_PRESCHEDULE_MACRO)
    ctx.write(head + " {\n")
    start = len(ctx.out)
    _block(ctx, func.body)
    # a parameter the body never names (a buffer no tap reads: all in the padding) is cast to void, else
    # -Wunused-parameter; the line goes first in the body
    unused = [ctx.ids[p] for p in func.params if ctx.ids[p] not in ctx.printed]
    ctx.out[start:start] = [f"  (void){name};\n" for name in unused]
    ctx.line("}")
    return "".join(ctx.out)


def variable_names(func: tirx.PrimFunc) -> dict[ir.Var, str]:
    """The C identifier of each variable ``func`` defines, as the renderer names them in order of definition.

    Run on a function before bindings are removed, then pass the result to
    :func:`render_function`: the survivors keep TVM's names. ``let`` variables
    are not included (TVM names a ``let`` afresh wherever it is printed).
    """
    ctx = Context()
    _signature(ctx, "", func)
    _block(ctx, func.body)
    return ctx.ids
