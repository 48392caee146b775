"""The whole compiler from a Relax IRModule to a folder of bare-metal C.

    QDQ Relax --LowerQDQToInteger--> integer Relax (call_tir of tagged TIR kernels, mcunet_tvm.ir)
              --PatchInference-----> optional: first stage run patch by patch (MCUNetV2)
              --optimisation_passes:
                  ZeroCopyViews       contiguous CONCATENATION / SPLIT / SLICE: views at byte offsets, no copy
                  InplaceDepthwise    depthwise convs write over their dying inputs
                  UseSimdKernels      DSP cores: conv2d/dense become SIMD (or Helium) micro-kernels
                  UseSharedKernels    optimize="size": kernels take layer sizes at run time, shared
                  ReorderForPeak      execution order with the lowest peak (not after patching)
                  ShrinkPeakScratch   smaller-scratch kernels where their scratch would set the peak
              --program_of--------> the read-only Program view
              --plan_memory-------> one static arena
              --kernels_to_c------> kernels C (TVM's TIR lowering, rendered as plain C)
              --emit_model--------> model C (constants in flash, AOT entry point)

:func:`compile_relax` generates each distinct (descriptor, choice) kernel once per build
(:func:`~mcunet_tvm.kernels.kernel_cache`: patches of equal geometry, repeated blocks, passes that
regenerate a kernel) and reports the long phases through ``progress`` (:mod:`mcunet_tvm.progress`).
:func:`compile_relax` is the one function to call from your own TVM code;
:func:`optimisation_passes` is the pass sequence, which the NAS also runs on
light modules (stub kernels) to plan exactly what the compiler will build.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import tvm

from .aot.emit_c import (
    DEFAULT_NAMES,
    CallingOrder,
    CNames,
    ModelSource,
    emit_cmake,
    emit_header,
    emit_kernels_header,
    emit_model,
    emit_readme,
)
from .codegen.tir_to_c import kernels_to_c
from .errors import UnsupportedModelError
from .ir import PatchInfo, Program, is_integer, lighten, program_of
from .kernels import kernel_cache
from .kernels.choice import signature_of
from .ops import InputRows
from .passes import (
    InplaceDepthwise,
    ReorderForPeak,
    ShrinkPeakScratch,
    UseSharedKernels,
    UseSimdKernels,
    ZeroCopyViews,
)
from .passes.lower_qdq import lower_qdq_to_integer
from .passes.patch_inference import patch_inference
from .passes.simd_kernels import ScheduleFn
from .patching.search import choose_patch
from .planner import MemoryPlan, plan_memory
from .progress import Progress, counter, note
from .resources import SIMD_HEADER

#: generated files, in the order a firmware build should list them


@dataclass
class CompiledModel:
    """The integer program, its memory plan and the generated C files."""

    integer_module: tvm.IRModule
    program: Program
    plan: MemoryPlan
    files: dict[str, str]
    #: the program before patch-based rewriting (the layer-based reference); same as ``program`` otherwise
    layer_program: Program | None = None
    #: the patch split applied (None: layer-based execution)
    patch: PatchInfo | None = None
    #: kernel name -> the kernel whose C definition it shares (identical code)
    kernel_aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the graph as imported, before any of our passes: the independent host reference runs it
    imported: Program | None = None
    #: the C names (``--name``) of the files and symbols
    names: CNames = DEFAULT_NAMES

    def write(self, out_dir: Path) -> list[Path]:
        """Write the C sources and headers into ``out_dir``; returns the .c paths."""
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (out_dir / name).write_text(text)
        return [out_dir / name for name in self.files if name.endswith(".c")]


def tvm_target(mcpu: str | None) -> tvm.target.Target:
    """TVM's C target for a Cortex-M CPU (``None``: the host)."""
    return tvm.target.Target({"kind": "c", "mcpu": mcpu} if mcpu else {"kind": "c"})


def kernel_isa(mcpu: str | None) -> str:
    """Which kernels ``compile_relax`` picks for ``mcpu``: "mve" (Helium), "dsp" (SIMD) or "plain"."""
    return "mve" if has_mve(mcpu) else "dsp" if has_dsp(mcpu) else "plain"


def has_mve(mcpu: str | None) -> bool:
    """Whether TVM's target for ``mcpu`` has Helium (the M-profile Vector Extension)."""
    return bool(mcpu) and bool(tvm_target(mcpu).attrs.get("feature.has_mve", False))


def has_dsp(mcpu: str | None) -> bool:
    """Whether TVM's target for ``mcpu`` has the DSP extension (SMLAD and friends)."""
    return bool(mcpu) and bool(tvm_target(mcpu).attrs.get("feature.has_dsp", False))


def lower_to_integer(mod: tvm.IRModule) -> tvm.IRModule:
    """QDQ Relax to integer Relax (``R.call_tir`` of generated TIR kernels); an integer module as it is."""
    return mod if is_integer(mod) else lower_qdq_to_integer(mod)


#: what the kernels are optimised for (``compile_relax(optimize=...)``, ``build --optimize``)
OPTIMIZE = ("speed", "size")


def optimisation_passes(
    isa: str = "dsp",
    inplace: bool = True,
    reorder: bool = True,
    optimize: str = "speed",
    schedule: ScheduleFn | None = None,
    views: bool = True,
) -> tvm.transform.Sequential:
    """The passes after lowering (and patching) that choose kernels and order, in order.

    ``isa``: which kernels the core runs (:func:`kernel_isa`: "plain", "dsp" or "mve").
    ``views``: run ``ZeroCopyViews`` first (before ``InplaceDepthwise``, which must see the views).
    The compiler runs them on the integer module, the NAS and the patch search on
    light copies (stub kernels), so what they plan is what the compiler builds.
    """
    if optimize not in OPTIMIZE:
        raise UnsupportedModelError(f"unknown optimisation goal '{optimize}'", where="optimize",
                                    hint="use one of: " + ", ".join(OPTIMIZE))
    passes = [ZeroCopyViews()] if views else []
    if inplace:
        passes.append(InplaceDepthwise())
    if isa != "plain":
        passes.append(UseSimdKernels(schedule, mve=isa == "mve"))
    if optimize == "size":
        passes.append(UseSharedKernels())
    if reorder:
        passes.append(ReorderForPeak())
    passes.append(ShrinkPeakScratch())  # memory first: no kernel scratch sets the peak without need
    return tvm.transform.Sequential(passes, name="mcunet.OptimisationPasses")


@dataclass(frozen=True)
class PipelineOptions:
    """How :func:`optimise` (and so :func:`compile_relax`) compiles; each field is documented there."""

    mcpu: str | None = "cortex-m7"
    inplace: bool = True
    reorder: bool = True
    patch: str | tuple[int, tuple[int, int]] | None = None
    max_mac_overhead: float = 0.3
    sram_budget: int | None = None
    simd: bool | None = None
    schedule: ScheduleFn | None = None
    stream_input: bool = False
    optimize: str = "speed"
    views: bool = True

    def isa(self) -> str:
        """Which kernels to generate: the core's (:func:`kernel_isa`) unless ``simd`` forces them."""
        isa = kernel_isa(self.mcpu)
        if self.simd is None:
            return isa
        return ("mve" if isa == "mve" else "dsp") if self.simd else "plain"


@dataclass(frozen=True)
class _ArenaAfter:
    """The arena the compiler plans for a light module after ``passes`` (what the patch search checks
    a budget with); ``fast``: the planner's quick mode, an upper bound."""

    passes: tvm.transform.Pass
    fast: bool = False

    def __call__(self, light_mod: tvm.IRModule) -> int:
        return plan_memory(program_of(self.passes(light_mod)).memory_graph(), fast=self.fast).arena_bytes


def optimise(
    mod: tvm.IRModule, options: PipelineOptions | None = None, isa: str | None = None, light: bool = False,
    progress: Progress = None, fast: bool = False,
) -> tuple[tvm.IRModule, Program | None]:
    """The pipeline up to the final integer module: lowering, patches, :func:`optimisation_passes`.

    ``isa`` overrides the kernels the options pick; ``light``: plan with stub kernels (no code
    generated: the NAS, benchmarks of the planner). Returns the module and the view of the
    layer-based module before patching (None when no patch split is applied). ``progress``
    receives progress lines (:mod:`mcunet_tvm.progress`) of the patch search. ``fast``: the patch
    search checks the budget with the planner's quick mode, an upper bound of the arena (the NAS
    scoring many candidates): a split it takes fits when built, though the build (exact) may keep
    layer by layer or take one of less overhead.
    """
    o = options or PipelineOptions()
    integer = lower_to_integer(mod)
    if light:
        integer = lighten(integer)
    layer = integer
    patch = o.patch
    if patch is not None and len(program_of(integer).inputs) > 1:
        if patch != "auto" or o.stream_input:
            raise UnsupportedModelError("patch-based inference takes a model with one input",
                                        where="--patch", hint="build it layer by layer (no --patch)")
        patch = None  # "auto": no patch split for several inputs
    passes = optimisation_passes(isa or o.isa(), o.inplace, o.reorder, o.optimize, o.schedule, o.views)
    if patch == "auto":
        choice = choose_patch(integer, o.max_mac_overhead, o.sram_budget, o.stream_input,
                              arena=_ArenaAfter(passes, fast), progress=progress)
        patch = (choice.split_step, choice.grid) if choice else None
    if o.stream_input and patch is None:
        raise UnsupportedModelError("a streamed input needs patch-based inference", where="stream_input",
                                    hint="add --patch auto (or RxC@STEP); no valid patch split exists otherwise")
    if patch is not None:
        split_step, grid = patch
        integer = patch_inference(integer, split_step, grid, o.stream_input)
    return passes(integer), program_of(layer) if patch is not None else None


def compile_relax(mod: tvm.IRModule, mcpu: str | None = "cortex-m7", guard_bytes: int = 0,
                  name: str = "mcunet", source: ModelSource | None = None, progress: Progress = None,
                  **options) -> CompiledModel:
    """Compile a QDQ (or already integer) Relax module into bare-metal C.

    Args:
        mod: a Relax module whose ``main`` takes one int8 NHWC tensor, as the
            TFLite and PyTorch frontends of mcunet-tvm produce.
        mcpu: the Cortex-M CPU (e.g. ``"cortex-m7"``), or ``None`` for the host.
        guard_bytes: test builds: guard zones around the arena and every tensor, checked after
            every step (``mcunet_invoke`` returns -1000 - step when one was overwritten).
        name: the C library's name (``--name``): files ``NAME_model.c`` ..., symbols ``NAME_...``,
            macros ``NAME_...`` upper case (:class:`~mcunet_tvm.aot.emit_c.CNames`).
        source: the model's name and SHA-256, recorded in the header.
        progress: receives progress lines of the long phases (:mod:`mcunet_tvm.progress`); None: silent.
        options: the fields of :class:`PipelineOptions`:

            - ``inplace``: run ``InplaceDepthwise`` (depthwise outputs overwrite dying inputs);
            - ``reorder``: run the steps in the topological order with the lowest peak of live bytes;
            - ``patch``: patch-based inference: ``None`` (layer by layer), ``"auto"`` (search the
              split and grid, see :func:`~mcunet_tvm.patching.search.choose_patch`), or
              ``(split_step, (rows, cols))``;
            - ``max_mac_overhead``: ``"auto"`` only: cap on the extra MACs, as a fraction;
            - ``sram_budget``: ``"auto"`` only: pick the least overhead whose peak fits this many bytes;
            - ``simd``: use the SIMD micro-kernels (``UseSimdKernels``); default: when ``mcpu`` has DSP;
            - ``schedule``: per-layer SIMD schedule choice (e.g. a tuning database's ``lookup``);
            - ``stream_input``: with ``patch``: the input is not kept in the arena; before each row of
              patches the entry point calls ``mcunet_read_input_rows`` for the rows it needs;
            - ``optimize``: ``"speed"`` (kernels specialised to each layer) or ``"size"`` (kernels take
              layer sizes at run time and layers share them: less flash, more instructions).
            - ``views``: run ``ZeroCopyViews`` (contiguous concatenations and slices become views at
              byte offsets of one storage: no copy kernel).

    Returns:
        The integer program, its memory plan and the C files (call
        :meth:`CompiledModel.write` to put them in a folder).
    """
    generated = counter(progress, "kernels generated")
    with kernel_cache() as cache:  # each distinct (descriptor, choice) generated once
        cache.on_request = lambda built, requested: generated.step(built - generated.done)
        imported = lower_to_integer(mod)
        integer, layer_program = optimise(imported, PipelineOptions(mcpu=mcpu, **options), progress=progress)
        cache.on_request = None
    generated.close(summary=False)  # interleaved with the patch search: no duration of its own
    if cache.requests:  # (a .tflite's kernels were generated at import)
        note(progress, f"kernels: {len(cache.kernels)} distinct generated for {cache.requests} layers and passes")
    return generate(integer, mcpu, guard_bytes, name, source, progress, layer_program, program_of(imported))


def generate(integer: tvm.IRModule, mcpu: str | None = "cortex-m7", guard_bytes: int = 0, name: str = "mcunet",
             source: ModelSource | None = None, progress: Progress = None, layer_program: Program | None = None,
             imported: Program | None = None, plan: MemoryPlan | None = None) -> CompiledModel:
    """The C of an integer module whose kernels and order are final (:func:`optimise`'s result): the
    arena plan, the kernels, the entry point. :func:`compile_relax` ends here; so does the NAS's latency
    model, which builds layers with their planned choices and runs no pass.

    ``layer_program`` / ``imported``: the layer-based program before patching and the program as
    imported (the references), recorded in the result; default: the program itself. ``plan``: the arena
    plan to use (default: :func:`~mcunet_tvm.planner.plan_memory` with ``guard_bytes``).
    """
    program = program_of(integer)
    plan = plan or plan_memory(program.memory_graph(), guard=guard_bytes)
    # a streamed input's bands come from the application, not from a kernel
    streamed = {c.kernel for c in program.calls if program.stream_input and isinstance(c.op, InputRows)}
    cn = CNames(name)
    kernels = kernels_to_c({cn.fn + k: f for k, f in program.kernels.items() if k not in streamed},
                           tvm_target(mcpu), cn.file("kernels.h"), progress=progress)
    unprefixed = {k[len(cn.fn):]: v for k, v in kernels.param_order.items()}
    files = {
        cn.file("kernels.c"): kernels.source,
        cn.file("kernels.h"): emit_kernels_header(kernels.prototypes, kernels.aliases, cn),
        cn.file("model.c"): emit_model(program, plan, _calling_order(program, unprefixed), cn),
        cn.file("model.h"): emit_header(program, plan, cn, source),
        "mcunet_simd.h": SIMD_HEADER.read_text(),  # the SIMD primitives (static inline): one for every model
        "CMakeLists.txt": emit_cmake(cn),
        "README.md": emit_readme(program, cn),
    }
    aliases = {k[len(cn.fn):]: v[len(cn.fn):] for k, v in kernels.aliases.items()}
    return CompiledModel(integer, program, plan, files, layer_program or program,
                         program.patch, aliases, imported or program, cn)


def _calling_order(program: Program, param_order: dict[str, list[int]]) -> CallingOrder:
    """Each kernel's C parameters as the roles of its signature (recorded when the kernel was built)."""
    return {name: [signature_of(program.kernels[name]).roles[j] for j in order] for name, order in param_order.items()}
