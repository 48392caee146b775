"""The NAS's memory model: the compiler's own planner on a light description of a network.

A candidate network (an MCUNet/ProxylessNAS net config) becomes a *light*
integer module (:mod:`mcunet_tvm.ir`): exactly the operators
``LowerQDQToInteger`` produces for that network, as stub kernels (descriptor
and choice, no body, no weights). It then goes through the compiler's own
pipeline (:func:`mcunet_tvm.pipeline.optimise`: in-place depthwise
where the input dies, the SIMD kernels on DSP cores, the lowest-peak
execution order, the ring widths) and the arena layout, so the predicted
arena is the compiler's, not a formula (``tests/test_nas.py`` checks they
are identical). Flash is predicted as the exact constant bytes plus a
per-kernel code allowance measured on built models.

With a :class:`PatchPolicy` the prediction takes every memory form the compiler
has, as ``build --patch auto --max-mac-overhead X --sram-budget B`` does: the
layer-based plan first, and only when it does not fit the budget the compiler's
own patch search (:func:`~mcunet_tvm.pipeline.optimise` with ``patch="auto"``,
:func:`~mcunet_tvm.patching.search.choose_patch`) and the plan of the patched module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tvm
from tvm import relax

from ..errors import BudgetError
from ..ir import Program, emit_call, new_main, program_of
from ..kernels import KernelChoice
from ..kernels.depthwise.plan import unrolls_small_image
from ..ops import Add, Conv2D, Dense, Mean, OpDesc
from ..pipeline import PipelineOptions, optimise
from ..planner import plan_memory

#: flash of the runtime around the model (startup, semihosting, harness) on Cortex-M, bytes
RUNTIME_FLASH = 3_200
#: code allowance per generated kernel, bytes (measured SIMD conv kernels stay below it)
KERNEL_CODE = {"conv2d": 2_000, "depthwise": 1_500, "add": 500, "mean": 400, "dense": 800, "insert": 400}
#: code allowance per tap of a depthwise image run fully unrolled (``kernels.depthwise.plan.unrolls_small_image``)
UNROLLED_TAP_CODE = 10
#: ADD's rescaling table (256 int32, ``kernels.elementwise.add_rescale_table``)
ADD_TABLE_BYTES = 1_024
#: entry point code per step, bytes
STEP_CODE = 48


@dataclass(frozen=True)
class PatchPolicy:
    """Plan with patch-based inference where layer by layer does not fit: what ``python -m mcunet_tvm.build
    --patch auto --max-mac-overhead X --sram-budget B`` does (:meth:`build_options`). ``flash_budget``: no
    patch search for a network whose layer-based flash already exceeds it (patches only add code: it
    cannot fit either way, and the search is most of a prediction's time)."""

    sram_budget: int
    max_mac_overhead: float
    flash_budget: int | None = None

    def build_options(self) -> dict:
        """The fields of :class:`~mcunet_tvm.pipeline.PipelineOptions` (and ``api.BuildOptions``) it sets."""
        return {"patch": "auto", "max_mac_overhead": self.max_mac_overhead, "sram_budget": self.sram_budget}


@dataclass(frozen=True)
class Prediction:
    """What the compiler will need for a network."""

    arena_bytes: int
    flash_bytes: int
    #: the network's multiply-accumulates (layer by layer)
    macs: int
    params: int
    #: the patch split the compiler takes, ``(split_step, (rows, cols))``; None: layer by layer
    patch: tuple[int, tuple[int, int]] | None = None
    #: the MACs the patches recompute (their halos) on top of ``macs``
    overhead_macs: int = 0
    #: the planned light program, patched or not (its layers and kernel choices: what the latency model costs)
    program: Program | None = field(default=None, compare=False, repr=False)

    @property
    def mac_overhead(self) -> float:
        """Extra MACs of the patches as a fraction of the network's (``PatchInfo.mac_overhead``)."""
        return self.overhead_macs / max(self.macs, 1)

    def patch_json(self) -> dict | None:
        """The memory form for ``result.json``: the split, the grid and the MAC overhead; None: layer by layer."""
        if self.patch is None:
            return None
        return {"split_step": self.patch[0], "grid": list(self.patch[1]), "mac_overhead": round(self.mac_overhead, 4)}


def netconfig_module(config: dict, resolution: int | None = None) -> tvm.IRModule:
    """The light integer module of a net config: its operators as stub kernels (no weights)."""
    res = int(resolution or config.get("resolution", 224))
    cin = int(config["first_conv"]["in_channels"])
    bb = relax.BlockBuilder()
    param = relax.Var("input", relax.TensorType((1, res, res, cin), "int8"))
    with new_main(bb, param, {}) as result:
        emit = _Emitter(bb)
        fc = config["first_conv"]
        x = emit.conv(param, int(fc["out_channels"]), int(fc["kernel_size"]), int(fc["stride"]))
        for block in config["blocks"]:
            layer, shortcut = block.get("mobile_inverted_conv"), block.get("shortcut")
            if layer is None or layer.get("name") == "ZeroLayer":
                continue
            c_in = _shape(x)[3]
            mid = int(layer.get("mid_channels") or round(c_in * float(layer["expand_ratio"])))
            y = emit.conv(x, mid, 1, 1) if float(layer["expand_ratio"]) != 1 else x
            y = emit.conv(y, mid, int(layer["kernel_size"]), int(layer["stride"]), depthwise=True)
            y = emit.conv(y, int(layer["out_channels"]), 1, 1)
            if shortcut is not None:
                y = emit(Add(_shape(y), _shape(y)), [x, y], "add")
            x = y
        mix = config.get("feature_mix_layer")
        if mix:
            x = emit.conv(x, int(mix["out_channels"]), int(mix.get("kernel_size", 1)), 1)
        _, h, w, c = _shape(x)
        x = emit(Mean((1, h, w, c), (1, c)), [x], "mean")
        result(emit(Dense((1, c), (1, int(config["classifier"]["out_features"]))), [x], "dense"))
    return bb.get()


def _shape(x: relax.Expr) -> tuple[int, ...]:
    return tuple(int(d) for d in x.ty.shape)


class _Emitter:
    """Emits a net config's operators as stub kernel calls, named ``k<n>_<kind>`` in order."""

    def __init__(self, bb: relax.BlockBuilder) -> None:
        self.bb = bb
        self.n = 0

    def __call__(self, op: OpDesc, inputs: list[relax.Expr], kind: str) -> relax.Expr:
        self.n += 1
        return emit_call(self.bb, f"k{self.n}_{kind}", op, inputs, (), light=True)

    def conv(self, x: relax.Expr, cout: int, k: int, stride: int, depthwise: bool = False) -> relax.Expr:
        _, h, w, c = _shape(x)
        pad = k // 2
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        op = Conv2D((1, h, w, c), (1, oh, ow, c if depthwise else cout), kernel=(k, k), strides=(stride, stride),
                    padding=(pad, pad, pad, pad), depthwise=depthwise)
        return self(op, [x], "conv2d")


def _const_bytes(op: OpDesc) -> int:
    """A bound on the constants the kernels take: int8 weights (kernel rows padded to words,
    channels to whole records of up to four), int32 bias, multiplier and two requantisation words
    per channel; ADD's table."""
    if isinstance(op, Conv2D):
        cout = op.out_shape[3] + 3
        if op.depthwise:
            return cout * (op.kernel[0] * op.kernel[1] + 16)
        return cout * (op.kernel[0] * -(-(op.kernel[1] * op.in_shape[3]) // 4) * 4 + 16)
    if isinstance(op, Dense):
        return (op.out_shape[1] + 3) * (-(-op.in_shape[1] // 4) * 4 + 16)
    if isinstance(op, Add):
        return ADD_TABLE_BYTES
    return 0  # (an Insert of patch-based inference has none)


def _code_bytes(op: OpDesc, choice: KernelChoice) -> int:
    """The code allowance of ``op``'s kernel, generated as ``choice`` says."""
    code = KERNEL_CODE[_code_kind(op)]
    if isinstance(op, Conv2D) and unrolls_small_image(op, choice):
        code += UNROLLED_TAP_CODE * op.out_shape[1] * op.out_shape[2] * op.kernel[0] * op.kernel[1]
    return code


def _params(op: OpDesc) -> int:
    if isinstance(op, Conv2D):
        cout = op.out_shape[3]
        return cout * op.kernel[0] * op.kernel[1] * (1 if op.depthwise else op.in_shape[3]) + cout
    if isinstance(op, Dense):
        return (op.in_shape[1] + 1) * op.out_shape[1]
    return 0


def _code_kind(op: OpDesc) -> str:
    if isinstance(op, Conv2D):
        return "depthwise" if op.depthwise else "conv2d"
    return op.kind


def predict_program(
    mod: tvm.IRModule, dsp: bool = True, fast: bool = False, mve: bool = False, patch: PatchPolicy | None = None
) -> Prediction:
    """Plan the light module ``mod`` as ``compile_relax`` would: its optimisation passes, then the layout.

    ``dsp`` / ``mve``: the core has the DSP extension / Helium (which kernels, hence which
    scratch and overlaps, the compiler picks). ``fast``: the planner's quick mode, an upper
    bound of the compiled arena (for scoring many candidates). ``patch``: patch-based inference
    where the layer-based plan does not fit (:class:`PatchPolicy`): the compiler's patch search
    and the plan of the patched module, so without ``fast`` the predicted arena and split are
    the compiled ones; with ``fast`` the search checks the budget with the quick planner (a split
    it takes fits when built; the build may take one of less overhead). When no split fits
    either (or the flash does not, ``PatchPolicy.flash_budget``), the layer-based prediction
    (which does not fit) is returned: the build fails alike.
    """
    isa = "mve" if mve else "dsp" if dsp else "plain"
    layer = program_of(optimise(mod, isa=isa)[0])
    arena = plan_memory(layer.memory_graph(), fast=fast).arena_bytes
    flat = _prediction(layer, layer, arena)
    if patch is None or arena <= patch.sram_budget:  # (``fast``: a bound) fits: choose_patch keeps layer by layer
        return flat
    if patch.flash_budget is not None and flat.flash_bytes > patch.flash_budget:
        return flat
    try:
        patched = optimise(mod, PipelineOptions(**patch.build_options()), isa=isa, light=True, fast=fast)[0]
    except BudgetError:
        return flat
    prog = program_of(patched)
    return _prediction(prog, layer, plan_memory(prog.memory_graph(), fast=fast).arena_bytes)


def _prediction(prog: Program, layer: Program, arena_bytes: int) -> Prediction:
    """The prediction of the optimised light program ``prog`` (``layer``: its layer-based form, the same
    when not patched) with its planned arena. Patches of one layer share its constants (identical arrays
    are stored once), so constants count once per layer; code once per distinct kernel."""
    calls = [c for c in prog.calls if c.kernel]
    kernels = {c.kernel: c for c in calls}
    code = sum(_code_bytes(c.op, c.choice) for c in kernels.values()) + STEP_CODE * len(calls)
    layer_calls = [c for c in layer.calls if c.kernel]
    flash = RUNTIME_FLASH + code + sum(_const_bytes(c.op) for c in layer_calls)
    info = prog.patch
    return Prediction(arena_bytes, flash, layer.macs(), sum(_params(c.op) for c in layer_calls),
                      None if info is None else (info.split_step, info.grid),
                      0 if info is None else info.macs - info.layer_macs, prog)


def predict(
    config: dict, resolution: int | None = None, dsp: bool = True, fast: bool = False, mve: bool = False,
    patch: PatchPolicy | None = None,
) -> Prediction:
    """Arena, flash, MACs and parameters of the network ``config`` describes, as compiled (``patch``: see
    :func:`predict_program`)."""
    return predict_program(netconfig_module(config, resolution), dsp, fast, mve, patch)


def macs(config: dict, resolution: int | None = None) -> int:
    """Multiply-accumulates of one inference (no planning: cheap)."""
    return program_of(netconfig_module(config, resolution)).macs()


__all__ = ["PatchPolicy", "Prediction", "macs", "netconfig_module", "predict", "predict_program"]
