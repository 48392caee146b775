"""Shared helpers for kernel generators: placeholders, PrimFunc assembly."""

from __future__ import annotations

from tvm import s_tir, te, tirx
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import OpDesc

#: name of the output buffer. Parameter names keep their ``pN_`` prefixes (the C they print as is
#: unchanged), but carry no meaning: each parameter's role is the kernel's ``Signature``
OUT = "p9_out"
#: name of a kernel's scratch buffer (``OpDesc.scratch_bytes``), placed in the arena
SCRATCH = "p8_scratch"
#: PrimFunc attribute: the values of a shape-generic kernel's scalar parameters, in order
SCALAR_ARGS = "mcunet.scalar_args"
#: index of the first scalar parameter (C parameters ``p10_...``, after every pointer)
FIRST_SCALAR = 10
#: PrimFunc attribute: compile the kernel without GCC's scheduling pass before register
#: allocation (``MCUNET_NO_PRESCHEDULE``, see ``codegen.tir_to_c``). For straight-line
#: multiply-accumulate code that already holds as many values as the core has registers:
#: hoisting loads ahead of their use there only adds spills.
NO_PRESCHEDULE = "mcunet.no_preschedule"


class ScalarArgs:
    """Layer values a shape-generic kernel takes at run time instead of compiling them in.

    Called inside an IRBuilder ``prim_func``: ``args(name, value)`` declares
    the int32 parameter ``p1N_name`` and records ``value`` (what the entry
    point passes for this layer), or, when the kernel is specialised
    (``generic`` False), returns ``value`` itself. Layers that differ only in
    such values then share one kernel's code (``codegen.tir_to_c.deduplicate``),
    which keeps flash small; loop bounds in a register cost nothing per MAC.
    """

    def __init__(self, generic: bool) -> None:
        self.generic = generic
        self.values: list[int] = []

    def __call__(self, name: str, value: int):
        if not self.generic:
            return value
        return self.runtime(name, value)

    def runtime(self, name: str, value: int):
        """The int32 parameter ``p1N_name`` passed ``value``, specialised kernel or not."""
        index = FIRST_SCALAR + len(self.values)
        assert index < 20, "at most ten scalar parameters (names p10_ to p19_)"
        self.values.append(int(value))
        return T.arg(f"p{index}_{name}", T.int32())

    def attach(self, func: tirx.PrimFunc) -> tirx.PrimFunc:
        return func.with_attr(SCALAR_ARGS, self.values) if self.values else func


def arg(index: int, shape, dtype: str, name: str) -> te.Tensor:
    """A kernel argument. The index prefix keeps the C parameter order stable."""
    return te.placeholder(tuple(int(d) for d in shape), dtype, name=f"p{index}_{name}")


def window_arg(index: int, op: OpDesc, shape, name: str):
    """Activation input ``index`` of ``op`` (of the op's input element type) and a loader in the op's
    logical NHWC coordinates.

    With a window (patch-based inference) the buffer is larger than the op's
    input and the loader adds the window's row/column origin.
    """
    win = op.window(index)
    tensor = arg(index, op.input_buffer_shape(index, tuple(shape)), op.in_dtype, name)
    if not win:
        return tensor, lambda b, h, w, c: tensor[b, h, w, c]
    r0, c0 = win[0], win[1]
    return tensor, lambda b, h, w, c: tensor[b, h + r0, w + c0, c]


def pack_halves(lo, hi=None):
    """Two int32 values as the bottom and top halfwords of one register (``hi`` None: top 0).

    The operand layout of SMLAD / SMLABB / SMLABT, whose halves are signed 16-bit lanes.
    """
    bottom = lo & tirx.const(0xFFFF, "int32")
    return bottom if hi is None else bottom | (hi << tirx.const(16, "int32"))


def in_bounds(h, w, height: int, width: int):
    """True where (h, w) lies inside a height x width image."""
    return tirx.all(h >= 0, h < height, w >= 0, w < width)


def finish(args: list[te.Tensor], local_blocks: tuple[str, ...] = ()) -> tirx.PrimFunc:
    """Build the PrimFunc of a TE kernel.

    Each block named in ``local_blocks`` (a reduction accumulator) is computed
    at the innermost loop of its consumer, so it shrinks to one element and
    never becomes a full-size temporary.
    """
    func = te.create_prim_func(args)
    if local_blocks:
        sch = s_tir.Schedule(func)
        for name in local_blocks:
            block = sch.get_sblock(name)
            consumer = sch.get_consumers(block)[0]
            outer = sch.get_loops(consumer)
            sch.compute_at(block, outer[-1])
            # initialise the accumulator before its reduction loops, not inside them
            loops = sch.get_loops(block)
            if len(loops) > len(outer):  # unit reduction loops are folded away
                sch.decompose_reduction(block, loops[len(outer)])
        func = sch.mod["main"]
    return func


def inside(v, size: int, lo: int, hi: int):
    """The run-time check ``0 <= v < size`` where ``v`` ranges over [lo, hi] (None: always true)."""
    checks = ([v >= 0] if lo < 0 else []) + ([v < size] if hi >= size else [])
    return tirx.all(*checks) if checks else None


def guarded(cond, body) -> None:
    """``body()``, under ``cond`` unless it is None."""
    if cond is None:
        body()
        return
    with T.If(cond):
        with T.Then():
            body()
