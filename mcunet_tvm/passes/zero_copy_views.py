"""ZeroCopyViews: CONCATENATION and slices (SPLIT, SPLIT_V, SLICE, STRIDED_SLICE, UNPACK) as views, no copy.

What it rewrites: in an integer module, every ``Concat`` whose inputs are each one contiguous
block of its output (NHWC row-major: every dimension before the axis is 1, e.g. along H of a
batch-1 tensor) and every ``Slice`` whose output is one contiguous block of its input (the
dimensions after some dimension whole, those before it one element) gets the choice
``KernelChoice.view`` (a kernel ``<name>_view``, same descriptor and body, never called). The
program view then has no kernel for it (``KernelCall.kernel == ""``, like a reshape) and the
planner places the tensors in one storage (``planner.graph``): a slice is its input's bytes
from its offset on, so consumers read at ``input + offset``; a concatenation's inputs are its
blocks, so each producer writes straight into its block of the output. The C entry point
passes ``arena + offset`` pointers and emits no copy.

Why: a copy costs instructions per byte and, at the copy step, holds its input and output at
once (a concatenation: twice its bytes).

Preconditions (a call failing one keeps its copy kernel):

- contiguity as above (``Concat.block_offsets``, ``Slice.block_offset``), and no patch windows;
- every byte offset a multiple of the arena alignment (``planner.ALIGN``): every tensor then
  starts as aligned as the planner places one, so no kernel's loads change;
- a concatenation's inputs are distinct tensors, each with its own storage (not a view, not an
  in-place output, not a patch ``Insert``'s output, not a block of an earlier concatenation),
  and none is the streamed model input (which is not in the arena); a slice of the streamed
  input stays a copy;
- nothing writes in place into a storage that becomes shared: no view is made of, or into, a
  storage an in-place kernel already overwrites (an in-place depthwise input, a tensor patches
  are ``Insert``ed into), since that kernel would overwrite bytes another view still reads.
  The pass runs before ``InplaceDepthwise``, which then sees the views: an input read through
  any other view of its storage does not die there, so it is not overwritten, and a depthwise
  output that is a concatenation's block is not made in place (``inplace_steps``);
- kernels whose output may overlap a dying input (``KernelChoice.overlap``) keep that only
  between storages, with their deltas shifted by the views' offsets, when the whole input
  storage dies at the step and the output storage is first written there
  (``Graph.storage_overlaps``, ``planner.lifetimes.overlap_rules``).

Memory: a storage lives from the first writer to the last reader of any of its views, so a
block may be held while a sibling is still being computed or read (the copy frees them one
by one). Memory first: a view whose copy gives a lower peak of live bytes (the planner's
lower bound, in the module's order) stays a copy; ``ReorderForPeak`` then orders the steps
with the views in place. Model inputs and
outputs may be views: the entry point copies them from and to their arena addresses.
Light modules stay light (stub kernels).
"""

from __future__ import annotations

import dataclasses

import tvm
from tvm import relax

from ..ir import Program, program_of
from ..kernels.choice import CHOICE_ATTR, choice_of
from ..ops import Concat, Conv2D, Insert, Slice
from ..planner import ALIGN, peak_live_bytes
from .rewrite_util import module_pass, switch_calls


def view_steps(prog: Program) -> frozenset[int]:
    """The steps of ``prog`` that become views (the decision, on the view; the patch search applies
    it to candidates' views without emitting them): those :func:`_allowed` in program order, less
    each whose copy gives a lower peak of live bytes (memory first)."""
    chosen = set(_allowed(prog))
    if not chosen:
        return frozenset()
    peak = peak_live_bytes(_marked(prog, chosen).memory_graph())
    for i in sorted(chosen):
        fewer = peak_live_bytes(_marked(prog, chosen - {i}).memory_graph())
        if fewer < peak:  # removing a view never invalidates another (see _allowed)
            chosen.discard(i)
            peak = fewer
    return frozenset(chosen)


def _marked(prog: Program, steps: set[int] | frozenset[int]) -> Program:
    calls = tuple(dataclasses.replace(c, kernel="", choice=c.choice.with_(view=True)) if i in steps else c
                  for i, c in enumerate(prog.calls))
    return dataclasses.replace(prog, calls=calls)


def _allowed(prog: Program) -> list[int]:
    """The steps that may become views, in program order: a tensor that became a view is no
    concatenation's block afterwards. Copying one of them again leaves the others valid: a
    block is never a slice's view, and a slice of a block is a view of it as of the whole."""
    if not any(isinstance(c.op, (Concat, Slice)) and c.kernel for c in prog.calls):
        return []  # (most networks: nothing to decide)
    root = dict(prog.storage_map())
    written = {root[c.inputs[0]] for c in prog.calls if isinstance(c.op, Conv2D) and c.choice.inplace}
    written |= {root[c.inputs[1]] for c in prog.calls if isinstance(c.op, Insert) and not c.op.first}
    streamed = {prog.input} if prog.stream_input else set()
    chosen = []

    def merge(old: str, new: str) -> None:
        for name, r in root.items():
            if r == old:
                root[name] = new

    for i, c in enumerate(prog.calls):
        if not c.kernel:
            continue
        if isinstance(c.op, Slice):
            offset = c.op.block_offset()
            src = root[c.inputs[0]]
            if offset is None or offset % ALIGN or src in written | streamed or root[c.output] in written:
                continue
            merge(root[c.output], src)
        elif isinstance(c.op, Concat):
            offsets = c.op.block_offsets()
            if offsets is None or any(o % ALIGN for o in offsets) or len(set(c.inputs)) != len(c.inputs):
                continue
            if root[c.output] in written or any(root[x] != x or x in written | streamed for x in c.inputs):
                continue
            for x in c.inputs:
                merge(x, root[c.output])
        else:
            continue
        chosen.append(i)
    return chosen


def with_views(prog: Program) -> Program:
    """``prog`` with :func:`view_steps` applied to its calls (what :func:`zero_copy_views` emits, as data)."""
    switch = view_steps(prog)
    return _marked(prog, switch) if switch else prog


def zero_copy_views(mod: tvm.IRModule) -> tvm.IRModule:
    """Mark every concatenation and slice of :func:`view_steps` as a view (no kernel runs)."""
    prog = program_of(mod)
    switch = view_steps(prog)
    if not switch:
        return mod
    views: dict[tvm.ir.GlobalVar, tvm.ir.GlobalVar] = {}

    def emit_view(bb: relax.BlockBuilder, _step: int, call: relax.Call, var: relax.Var) -> relax.Expr:
        gvar = call.args[0]
        if gvar not in views:
            choice = choice_of(mod[gvar]).with_(view=True)
            views[gvar] = bb.add_func(mod[gvar].with_attr(CHOICE_ATTR, choice.to_json()), f"{gvar.name_hint}_view")
        return bb.emit(relax.call_tir(views[gvar], list(call.args[1].fields), var.ty))

    return switch_calls(mod, switch, emit_view)


def ZeroCopyViews() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`zero_copy_views`."""
    return module_pass(zero_copy_views, "mcunet.ZeroCopyViews")
