"""The NAS's memory model: the compiler's own planner on a light description of a network.

A candidate network (an MCUNet/ProxylessNAS net config) becomes a
:class:`~mcunet_tvm.aot.program.Program` of operator descriptors only (shapes,
strides, no weights, no kernels), exactly the operators ``LowerQDQToInteger``
produces for that network. It then goes through the very steps
``compile_relax`` applies — in-place depthwise where the input dies, the SIMD
kernels' overlap rules on DSP cores, the lowest-peak execution order, the
arena layout — so the predicted arena is the compiler's, not a formula
(``tests/test_nas_light.py`` checks they are identical). Flash is predicted
as the exact constant bytes plus a per-kernel code allowance measured on
built models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..aot.program import KernelCall, Program
from ..aot.ring_width import narrow_peak_rings
from ..ops import Add, Conv2D, Dense, Mean, OpDesc
from ..patching.search import with_inplace_depthwise
from ..planner import plan_memory
from ..planner.schedule import best_order

#: flash of the runtime around the model (startup, semihosting, harness) on Cortex-M, bytes
RUNTIME_FLASH = 3_200
#: code allowance per generated kernel, bytes (measured SIMD conv kernels stay below it)
KERNEL_CODE = {"conv2d": 2_000, "depthwise": 1_500, "add": 500, "mean": 400, "dense": 800}
#: code allowance per tap of a depthwise image run fully unrolled (``Conv2D.unrolls_small_image``)
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


def netconfig_program(config: dict, resolution: int | None = None) -> Program:
    """The integer program's operators for a net config (shapes only; no weights)."""
    res = int(resolution or config.get("resolution", 224))
    cin = int(config["first_conv"]["in_channels"])
    prog = Program(shapes={"input": (1, res, res, cin)}, input="input")
    state = {"n": 0}

    def emit(op: OpDesc, inputs: tuple[str, ...], kind: str) -> str:
        state["n"] += 1
        name = f"t{state['n']}"
        prog.shapes[name] = tuple(op.out_shape)
        prog.calls.append(KernelCall(f"k{state['n']}_{kind}", op, inputs, (), name))
        return name

    def conv(x: str, cout: int, k: int, stride: int, depthwise: bool = False) -> str:
        _, h, w, c = prog.shapes[x]
        pad = k // 2
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        op = Conv2D((1, h, w, c), (1, oh, ow, c if depthwise else cout), kernel=(k, k), strides=(stride, stride),
                    padding=(pad, pad, pad, pad), depthwise=depthwise)
        return emit(op, (x,), "conv2d")

    fc = config["first_conv"]
    x = conv("input", int(fc["out_channels"]), int(fc["kernel_size"]), int(fc["stride"]))
    for block in config["blocks"]:
        layer, shortcut = block.get("mobile_inverted_conv"), block.get("shortcut")
        if layer is None or layer.get("name") == "ZeroLayer":
            continue
        c_in = prog.shapes[x][3]
        mid = int(layer.get("mid_channels") or round(c_in * float(layer["expand_ratio"])))
        y = conv(x, mid, 1, 1) if float(layer["expand_ratio"]) != 1 else x
        y = conv(y, mid, int(layer["kernel_size"]), int(layer["stride"]), depthwise=True)
        y = conv(y, int(layer["out_channels"]), 1, 1)
        if shortcut is not None:
            y = emit(Add(prog.shapes[y], prog.shapes[y]), (x, y), "add")
        x = y
    mix = config.get("feature_mix_layer")
    if mix:
        x = conv(x, int(mix["out_channels"]), int(mix.get("kernel_size", 1)), 1)
    _, h, w, c = prog.shapes[x]
    x = emit(Mean((1, h, w, c), (1, c)), (x,), "mean")
    classes = int(config["classifier"]["out_features"])
    prog.output = emit(Dense((1, c), (1, classes)), (x,), "dense")
    return prog


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


def _code_bytes(op: OpDesc) -> int:
    """The code allowance of ``op``'s kernel."""
    code = KERNEL_CODE[_code_kind(op)]
    if isinstance(op, Conv2D) and op.unrolls_small_image():
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


def predict_program(prog: Program, dsp: bool = True, fast: bool = False, mve: bool = False) -> Prediction:
    """Plan ``prog`` as ``compile_relax`` would (in-place depthwise, SIMD overlap rules, order, layout).

    ``dsp`` / ``mve``: the core has the DSP extension / Helium (which kernels, hence which
    scratch and overlaps, the compiler picks). ``fast``: the planner's quick mode, an upper
    bound of the compiled arena (for scoring many candidates).
    """
    prog = dataclasses.replace(with_inplace_depthwise(prog), assume_simd=dsp, assume_mve=mve)
    prog = prog.reordered(best_order(prog.memory_graph()))
    prog = narrow_peak_rings(prog)  # as compile_relax does
    plan = plan_memory(prog.memory_graph(), fast=fast)
    calls = [c for c in prog.calls if c.kernel]
    code = sum(_code_bytes(c.op) for c in calls) + STEP_CODE * len(calls)
    flash = RUNTIME_FLASH + code + sum(_const_bytes(c.op) for c in calls)
    return Prediction(plan.arena_bytes, flash, prog.macs(), sum(_params(c.op) for c in calls))


def predict(
    config: dict, resolution: int | None = None, dsp: bool = True, fast: bool = False, mve: bool = False
) -> Prediction:
    """Arena, flash, MACs and parameters of the network ``config`` describes, as compiled."""
    return predict_program(netconfig_program(config, resolution), dsp, fast, mve)


def macs(config: dict, resolution: int | None = None) -> int:
    """Multiply-accumulates of one inference (no planning: cheap)."""
    return netconfig_program(config, resolution).macs()


__all__ = ["Prediction", "macs", "netconfig_program", "predict", "predict_program"]
