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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tvm
from tvm import relax

from ..ir import Program, emit_call, new_main, program_of
from ..kernels import KernelChoice
from ..kernels.depthwise.plan import unrolls_small_image
from ..ops import Add, Conv2D, Dense, Mean, OpDesc
from ..pipeline import optimise
from ..planner import plan_memory

#: flash of the runtime around the model (startup, semihosting, harness) on Cortex-M, bytes
RUNTIME_FLASH = 3_200
#: code allowance per generated kernel, bytes (measured SIMD conv kernels stay below it)
KERNEL_CODE = {"conv2d": 2_000, "depthwise": 1_500, "add": 500, "mean": 400, "dense": 800}
#: code allowance per tap of a depthwise image run fully unrolled (``kernels.depthwise.plan.unrolls_small_image``)
UNROLLED_TAP_CODE = 10
#: ADD's rescaling table (256 int32, ``kernels.elementwise.add_rescale_table``)
ADD_TABLE_BYTES = 1_024
#: entry point code per step, bytes
STEP_CODE = 48


@dataclass(frozen=True)
class Prediction:
    """What the compiler will need for a network."""

    arena_bytes: int
    flash_bytes: int
    macs: int
    params: int
    #: the planned light program (its layers and kernel choices: what the latency model costs)
    program: Program | None = field(default=None, compare=False, repr=False)


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
    return 0


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


def predict_program(mod: tvm.IRModule, dsp: bool = True, fast: bool = False, mve: bool = False) -> Prediction:
    """Plan the light module ``mod`` as ``compile_relax`` would: its optimisation passes, then the layout.

    ``dsp`` / ``mve``: the core has the DSP extension / Helium (which kernels, hence which
    scratch and overlaps, the compiler picks). ``fast``: the planner's quick mode, an upper
    bound of the compiled arena (for scoring many candidates).
    """
    prog = program_of(optimise(mod, isa="mve" if mve else "dsp" if dsp else "plain")[0])
    plan = plan_memory(prog.memory_graph(), fast=fast)
    calls = [c for c in prog.calls if c.kernel]
    code = sum(_code_bytes(c.op, c.choice) for c in calls) + STEP_CODE * len(calls)
    flash = RUNTIME_FLASH + code + sum(_const_bytes(c.op) for c in calls)
    return Prediction(plan.arena_bytes, flash, prog.macs(), sum(_params(c.op) for c in calls), prog)


def predict(
    config: dict, resolution: int | None = None, dsp: bool = True, fast: bool = False, mve: bool = False
) -> Prediction:
    """Arena, flash, MACs and parameters of the network ``config`` describes, as compiled."""
    return predict_program(netconfig_module(config, resolution), dsp, fast, mve)


def macs(config: dict, resolution: int | None = None) -> int:
    """Multiply-accumulates of one inference (no planning: cheap)."""
    return program_of(netconfig_module(config, resolution)).macs()


__all__ = ["Prediction", "macs", "netconfig_module", "predict", "predict_program"]
