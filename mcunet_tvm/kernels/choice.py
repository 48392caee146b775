"""Which kernel a layer runs: one typed choice per layer, made by the passes, serialised here only.

An operator descriptor (:mod:`mcunet_tvm.ops`) says what the model computes. A
:class:`KernelChoice` says how this compiler computes it: the SIMD or Helium
tile (``simd``), the fast requantisation where the constants allow it, the
in-place depthwise variant, the width of a depthwise ring, and the compact
forms of ``--optimize size``. Passes decide it (``LowerQDQToInteger`` the
requantisation form, ``InplaceDepthwise``, ``UseSimdKernels``,
``UseSharedKernels``, ``ShrinkPeakScratch`` the rest); the kernel generators,
the memory planner and the entry-point emitter only read it. The choice owns
what follows from it: the scratch a kernel takes in the arena
(:meth:`KernelChoice.scratch_bytes`), how its output may overlap its input
(:meth:`KernelChoice.overlap`), and how its constants are packed
(:meth:`KernelChoice.consts`).

Every fact a kernel PrimFunc carries is written and read by this module:

- ``mcunet.op``: the op descriptor (JSON),
- ``mcunet.kernel``: the kernel choice (JSON),
- ``mcunet.signature``: the role of each parameter, in order (:class:`Signature`),
- ``mcunet.stub``: a kernel without a body (a *light* module: planning without generating
  code); its value is the kernel's name, so stubs of distinct kernels stay distinct functions.

``mcunet.no_preschedule`` (``common.NO_PRESCHEDULE``) is a code generation flag of the
generated body, set by the generators and read by the C renderer.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Conv2D, OpDesc, op_from_json
from .simd import SimdConfig

OP_ATTR = "mcunet.op"
CHOICE_ATTR = "mcunet.kernel"
#: a SIMD kernel gives up staged input windows only to save this fraction of the arena's peak (measured
#: on the M7: unstaged tiles cost 4 % more instructions on demo-cnn, 42 % on DS-CNN, for 1-6 % of the arena)
UNSTAGED_MIN_GAIN = 0.2
SIGNATURE_ATTR = "mcunet.signature"
STUB_ATTR = "mcunet.stub"


@dataclass(frozen=True)
class KernelChoice:
    """How one layer's kernel is generated (defaults: the plain TIR kernel)."""

    #: SIMD (DSP) or, with ``helium``, MVE tile of a conv2d/dense kernel; None: plain TIR
    simd: SimdConfig | None = None
    #: conv2d/dense: every shift is a right shift and no int8 input drives |acc| to 2^30, so the
    #: shorter, equal rounding of ``kernels.requant`` applies (decided from the constants at lowering)
    fast_requant: bool = False
    #: depthwise: the output overwrites the dying input channel by channel (``InplaceDepthwise``)
    inplace: bool = False
    #: depthwise row kernel: its ring may hold int16 (False where that would set the arena's peak)
    wide_ring: bool = True
    #: depthwise: a small image runs tap by tap with every pixel unrolled (``--optimize size``: not)
    unroll_small_image: bool = True
    #: depthwise: the compact form (one output pair per iteration, ``--optimize size``)
    compact: bool = False
    #: TRANSPOSE_CONV: four input channels per step, widened by SXTAB16/SXTB16 and multiplied by two
    #: SMLADs (cores with the DSP extension: ``UseSimdKernels``)
    dual_mac: bool = False
    #: CONCATENATION / slice: no kernel runs; the planner places the tensors as views at byte offsets of one
    #: storage (``ZeroCopyViews``: producers write straight into their block, consumers read at the offset)
    view: bool = False
    #: ``ShrinkPeakScratch`` took this form for its smaller scratch at the arena's peak (it costs
    #: instructions: an int8 depthwise ring, a narrower or unstaged SIMD tile)
    memory_first: bool = False

    def to_json(self) -> str:
        return _choice_json(self)

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def from_json(text: str) -> KernelChoice:
        data = json.loads(text)
        simd = data.pop("simd")
        return KernelChoice(simd=SimdConfig(**simd) if simd is not None else None, **data)

    def with_(self, **changes) -> KernelChoice:
        """This choice with some fields changed."""
        return dataclasses.replace(self, **changes)

    def scratch_bytes(self, op: OpDesc) -> int:
        """Arena scratch the kernel takes (parameter role ``scratch``), live during its step only:
        the depthwise row ring or in-place channel buffer, or a SIMD kernel's widened input windows."""
        return _scratch_bytes(self, op)

    def smaller_scratch(self, op: OpDesc) -> tuple[tuple[KernelChoice, float], ...]:
        """The forms of this layer's kernel with less scratch (and more instructions), the one that
        changes the kernel least first, each with the least fraction of the arena's peak it must save
        to be worth its instructions (``ShrinkPeakScratch``): a depthwise ring of int8 (0: 5-7 % of the
        layer); a SIMD tile of fewer pixels, or in channel order (no staged input windows; its output
        no longer overlaps its input): ``UNSTAGED_MIN_GAIN``."""
        return _smaller_scratch(self, op)

    def overlap(self, op: OpDesc) -> tuple[tuple[int, int], ...]:
        """(input index, max offset delta) pairs where the output may overwrite a dying input."""
        return _overlap(self, op)

    def consts(self, op: OpDesc, consts) -> list[tuple[str, object]]:
        """The constant arrays the kernel takes, as (name, values), from the op's semantic constants."""
        from . import kernel_consts

        return kernel_consts(op, consts, self)

    def describe(self) -> str:
        """How the kernel was generated: plain TIR, a SIMD (DSP) or Helium tile, shared or not."""
        if self.view:
            return "view"
        if self.simd is None:
            return "dual-MAC" if self.dual_mac else "plain"
        kind = "helium" if self.simd.helium else "simd"
        return f"{kind} {self.simd.pixels}x{self.simd.channels}" + (" shared" if self.simd.shared else "")


# Choices and descriptors are frozen values: what follows from them is computed once per value
# (the NAS plans thousands of candidates that share most layers).
@functools.lru_cache(maxsize=4096)
def _choice_json(choice: KernelChoice) -> str:
    data = dataclasses.asdict(choice)
    for flag in ("view", "memory_first"):
        if not data[flag]:
            del data[flag]  # the JSON of every kernel that runs as before
    return json.dumps(data, sort_keys=True)


@functools.lru_cache(maxsize=16384)
def _scratch_bytes(choice: KernelChoice, op: OpDesc) -> int:
    from .depthwise.plan import scratch_bytes
    from .simd import staged_input_bytes

    if isinstance(op, Conv2D) and op.depthwise:
        return scratch_bytes(op, choice)
    return staged_input_bytes(op, choice.simd)


@functools.lru_cache(maxsize=16384)
def _smaller_scratch(choice: KernelChoice, op: OpDesc) -> tuple[tuple[KernelChoice, float], ...]:
    scratch = choice.scratch_bytes(op)
    if not scratch:
        return ()
    forms: list[tuple[KernelChoice, float]] = []
    if isinstance(op, Conv2D) and op.depthwise:
        forms.append((choice.with_(wide_ring=False), 0.0))
    elif choice.simd is not None:
        cfg = choice.simd
        forms += [(choice.with_(simd=dataclasses.replace(cfg, pixels=p)), UNSTAGED_MIN_GAIN)
                  for p in (2, 1) if p < cfg.pixels]
        forms.append((choice.with_(simd=dataclasses.replace(cfg, order="channels")), UNSTAGED_MIN_GAIN))
    return tuple((f.with_(memory_first=True), gain) for f, gain in forms if f.scratch_bytes(op) < scratch)


@functools.lru_cache(maxsize=16384)
def _overlap(choice: KernelChoice, op: OpDesc) -> tuple[tuple[int, int], ...]:
    from . import output_overlap

    return output_overlap(op, choice.simd)


@dataclass(frozen=True)
class Signature:
    """The role of each parameter of a kernel, in PrimFunc order (the calling convention).

    Roles: ``input`` (an activation; ``index`` = which input of the op), ``const`` (``index`` =
    which packed constant array, :meth:`KernelChoice.consts`), ``scratch`` (arena working memory),
    ``output``, and ``scalar`` (an int32 layer value of a shape-generic kernel, ``value`` passed
    by the entry point).
    """

    roles: tuple[tuple[str, int], ...]

    def to_json(self) -> str:
        return json.dumps([list(r) for r in self.roles])

    @staticmethod
    def from_json(text: str) -> Signature:
        return Signature(tuple((str(role), int(v)) for role, v in json.loads(text)))


def tag(func: tirx.PrimFunc, op: OpDesc, choice: KernelChoice, signature: Signature) -> tirx.PrimFunc:
    """``func`` carrying its descriptor, choice and signature."""
    return func.with_attrs({OP_ATTR: op.to_json(), CHOICE_ATTR: choice.to_json(), SIGNATURE_ATTR: signature.to_json()})


def _attr(func, name: str):
    if func is None or func.attrs is None or name not in func.attrs:
        return None
    return func.attrs[name]


def op_of(func: tirx.PrimFunc | None) -> OpDesc | None:
    """The op descriptor a kernel computes (None: not one of ours)."""
    return _tags(func)[0] if func is not None else None


def choice_of(func: tirx.PrimFunc | None) -> KernelChoice:
    """The kernel choice of ``func`` (the plain kernel's if none is recorded)."""
    return _tags(func)[1] if func is not None else KernelChoice()


@functools.lru_cache(maxsize=8192)
def _tags(func: tirx.PrimFunc) -> tuple[OpDesc | None, KernelChoice]:
    """A kernel's descriptor and choice (PrimFuncs are immutable: read once per function)."""
    op, choice = _attr(func, OP_ATTR), _attr(func, CHOICE_ATTR)
    return (op_from_json(str(op)) if op is not None else None,
            KernelChoice.from_json(str(choice)) if choice is not None else KernelChoice())


def signature_of(func: tirx.PrimFunc) -> Signature:
    text = _attr(func, SIGNATURE_ATTR)
    if text is None:
        raise ValueError("kernel has no recorded signature")
    return Signature.from_json(str(text))


def is_stub(func: tirx.PrimFunc | None) -> bool:
    """Whether ``func`` is a kernel without a body (a light module's)."""
    return _attr(func, STUB_ATTR) is not None


def stub(op: OpDesc, choice: KernelChoice, signature: Signature, name: str) -> tirx.PrimFunc:
    """Kernel ``name`` without a body: the descriptor, choice and signature only (planning, no code)."""
    return _stub(op.to_json(), choice.to_json(), signature.to_json(), name)


@functools.lru_cache(maxsize=4096)
def _stub(op: str, choice: str, signature: str, name: str) -> tirx.PrimFunc:
    with IRBuilder() as builder, T.prim_func():
        T.func_name("stub")
        T.func_attr({STUB_ATTR: name})
        T.evaluate(0)
    return builder.get().with_attrs({OP_ATTR: op, CHOICE_ATTR: choice, SIGNATURE_ATTR: signature})
