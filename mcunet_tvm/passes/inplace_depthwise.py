"""InplaceDepthwise: let a depthwise convolution write its output over its input (MCUNet).

In an integer module (after ``LowerQDQToInteger``), a depthwise conv whose
input storage is not read by anything after it takes the in-place kernel
variant (``KernelChoice.inplace``, a new kernel ``<name>_inplace``): it
computes one output channel into an OH x OW temporary and copies it over that
channel of the input, or writes straight over the input where the access
order allows. The memory planner then gives the output the input's storage,
so the layer needs ``max(in, out) + OH*OW`` bytes instead of ``in + out``.
Results are bit-exact with the out-of-place kernel (same arithmetic,
different loop order). Light modules stay light (stub kernels).
"""

from __future__ import annotations

from collections import Counter

import tvm
from tvm import relax

from ..ir import Program, emit_call, program_of
from ..kernels import inplace_allowed
from ..kernels.choice import is_stub
from .rewrite_util import module_pass, switch_calls


def inplace_steps(prog: Program) -> frozenset[int]:
    """The steps of ``prog`` that take the in-place kernel: depthwise convs whose input storage
    nothing else reads (through any of its views) and whose output is no concatenation's block
    (``ZeroCopyViews``: it lives in another storage); the decision, on the view; the patch
    search applies it to candidates' views without emitting them."""
    storage = prog.storage_map()
    reads = Counter(storage[n] for c in prog.calls if c.kernel for n in c.inputs)
    reads.update(storage[o] for o in prog.outputs)
    return frozenset(i for i, c in enumerate(prog.calls)
                     if c.kernel and storage[c.output] == c.output
                     and inplace_allowed(c.op, c.choice, reads[storage[c.inputs[0]]] == 1))


def inplace_depthwise(mod: tvm.IRModule) -> tvm.IRModule:
    """Switch every depthwise conv whose input dies at it to the in-place kernel."""
    prog = program_of(mod)
    switch = inplace_steps(prog)
    if not switch:
        return mod
    return switch_calls(mod, switch, lambda bb, step, call, _var: _emit_inplace(mod, prog, bb, step, call))


def _emit_inplace(mod: tvm.IRModule, prog: Program, bb: relax.BlockBuilder, step: int, call: relax.Call) -> relax.Expr:
    """Emit step ``step``'s depthwise conv as its in-place kernel ``<name>_inplace``."""
    desc, old, args = prog.calls[step], call.args[0], list(call.args[1].fields)
    n = desc.op.num_inputs
    return emit_call(bb, f"{old.name_hint}_inplace", desc.op, args[:n], args[n:], desc.choice.with_(inplace=True),
                     light=is_stub(mod[old]))


def InplaceDepthwise() -> tvm.transform.Pass:  # noqa: N802 (TVM pass naming)
    """Pass form of :func:`inplace_depthwise`."""
    return module_pass(inplace_depthwise, "mcunet.InplaceDepthwise")
