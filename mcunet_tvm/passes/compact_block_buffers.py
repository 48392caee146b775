"""CompactBlockBuffers: TVM's ``CompactBufferAllocation``, run only on kernels that have blocks.

``CompactBufferAllocation`` shrinks every buffer a function allocates to the
region its accesses touch. That matters for kernels scheduled from TE
(``te.create_prim_func`` + ``s_tir.Schedule``): their blocks allocate
intermediate buffers of the full compute shape, of which a loop nest touches
a tile. Kernels written with the TIR IRBuilder (the SIMD micro-kernels,
depthwise, TRANSPOSE_CONV, the element-wise kernels, ...) have no block: they
allocate exactly the buffers their code indexes, so the pass has nothing to
compact there — yet its region analysis is what costs the compile time:
it solves the conditions of every ``if_then_else`` guarding an access (the
padded windows of a SIMD convolution: 18 s for the first layer of demo-cnn,
0.07 s for the rest of its lowering; 65 % of a ``--patch auto`` build of
MobileNetV2-w0.35-r144).

This module pass applies ``CompactBufferAllocation`` to the functions of the
module that contain an ``SBlockRealize`` and leaves the others as they are.
A statement type the walk does not know counts as a block (the pass then
runs, as it did before), so a new kind of statement can cost time, never
correctness. IRBuilder kernels therefore declare exactly the words they index
(e.g. ``simd.context.accumulator_words``): nothing shrinks them afterwards.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx

__all__ = ["CompactBlockBuffers", "has_blocks"]

#: statements without a body (TVM 0.27 TIR: ``Bind``, ``AllocBuffer`` and ``DeclBuffer`` are flat)
_LEAVES = (tirx.Bind, tirx.BufferStore, tirx.Evaluate, tirx.AllocBuffer, tirx.DeclBuffer, tirx.AssertStmt,
           tirx.Break, tirx.Continue)
#: statements with a ``body``
_BODIES = (tirx.For, tirx.While, tirx.AttrStmt)


def has_blocks(stmt: tirx.Stmt) -> bool:
    """True if ``stmt`` contains an ``SBlockRealize`` (or a statement type this walk does not know)."""
    stack = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, _LEAVES):
            continue
        if isinstance(node, _BODIES):
            stack.append(node.body)
        elif isinstance(node, tirx.SeqStmt):
            stack.extend(node.seq)
        elif isinstance(node, tirx.IfThenElse):
            stack.append(node.then_case)
            if node.else_case is not None:
                stack.append(node.else_case)
        else:  # SBlockRealize, or unknown
            return True
    return False


def _compact_block_buffers(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    with_blocks = {gvar: func for gvar, func in mod.functions.items()
                   if isinstance(func, tirx.PrimFunc) and has_blocks(func.body)}
    if not with_blocks:
        return mod
    compacted = s_tir.transform.CompactBufferAllocation()(tvm.IRModule(with_blocks))
    out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gvar in with_blocks:
        out[gvar] = compacted[gvar.name_hint]
    return out


def CompactBlockBuffers() -> tvm.transform.Pass:  # noqa: N802 - TVM's pass naming
    """``CompactBufferAllocation`` on the PrimFuncs of a module that contain blocks."""
    return tvm.transform.module_pass(_compact_block_buffers, opt_level=0, name="CompactBlockBuffers")
