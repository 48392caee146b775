"""Random single-operator integer modules for kernel tests."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tvm
from tvm import relax

from mcunet_tvm.ir import emit_call, new_main
from mcunet_tvm.kernels import KernelChoice
from mcunet_tvm.kernels.requant import fast_requant_applies
from mcunet_tvm.ops import Add, Binary, Conv2D, Dense, Mean, OpDesc, Pad, Pool2D, TransposeConv2D
from mcunet_tvm.quant import fixedpoint, int8_ops
from mcunet_tvm.quant.int8_ops import QParams


def conv_out(size: int, k: int, s: int, pad_lo: int, pad_hi: int, d: int = 1) -> int:
    return (size + pad_lo + pad_hi - d * (k - 1) - 1) // s + 1


def same_padding(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def requant_params(rng: np.random.Generator, n: int, acc_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers/shifts that map accumulators of magnitude ~acc_scale into int8 range."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, n, dtype=np.int64).astype(np.int32)
    base = int(np.ceil(np.log2(max(acc_scale, 1.0) / 64)))
    shift = (-(base + rng.integers(-1, 2, n))).clip(-31, 3).astype(np.int32)
    return mult, shift


def conv_case(rng, h, w, cin, cout, k, s, padding="same", depthwise=False) -> tuple[OpDesc, list]:
    if padding == "same":
        pt, pb = same_padding(h, k, s)
        pl, pr = same_padding(w, k, s)
    else:
        pt = pb = pl = pr = 0
    oh, ow = conv_out(h, k, s, pt, pb), conv_out(w, k, s, pl, pr)
    if depthwise:
        cout = cin
    op = Conv2D(
        in_shape=(1, h, w, cin),
        out_shape=(1, oh, ow, cout),
        kernel=(k, k),
        strides=(s, s),
        padding=(pt, pl, pb, pr),
        depthwise=depthwise,
        in_zp=int(rng.integers(-128, 128)),
        out_zp=int(rng.integers(-128, 128)),
        act_min=int(rng.choice([-128, -100])),
        act_max=int(rng.choice([127, 100])),
    )
    wshape = (k, k, cin) if depthwise else (cout, k, k, cin)
    weight = rng.integers(-127, 128, wshape, dtype=np.int8)
    bias = rng.integers(-5000, 5000, cout, dtype=np.int32)
    taps = k * k * (1 if depthwise else cin)
    mult, shift = requant_params(rng, cout, 128 * 64 * np.sqrt(taps))
    return op, [weight, bias, mult, shift]


def transpose_conv_case(rng, h, w, cin, cout, k, s, padding="SAME", bias=True, out_hw=None) -> tuple[OpDesc, list]:
    """A :class:`TransposeConv2D` of a ``k`` x ``k[1]`` (or square) kernel, stride ``s``: the output TensorFlow
    gives (``h * s`` with SAME, ``(h - 1) * s + k`` with VALID) unless ``out_hw``; TFLM's padding rule."""
    kh, kw = (k, k) if isinstance(k, int) else k
    if out_hw is None:
        out_hw = (h * s, w * s) if padding == "SAME" else ((h - 1) * s + kh, (w - 1) * s + kw)
    op = TransposeConv2D(
        in_shape=(1, h, w, cin), out_shape=(1, *out_hw, cout), kernel=(kh, kw), strides=(s, s),
        padding=int8_ops.transpose_conv_padding(out_hw, (kh, kw), (s, s), padding),
        in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
        act_min=int(rng.choice([-128, -100])), act_max=int(rng.choice([127, 100])),
    )
    weight = rng.integers(-127, 128, (cout, kh, kw, cin), dtype=np.int8)
    values = rng.integers(-5000, 5000, cout, dtype=np.int32) if bias else np.zeros(cout, np.int32)
    mult, shift = requant_params(rng, cout, 128 * 64 * np.sqrt(-(-kh // s) * -(-kw // s) * cin))
    return op, [weight, values, mult, shift]


def dense_case(rng, n_in, n_out) -> tuple[OpDesc, list]:
    op = Dense((1, n_in), (1, n_out), in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)))
    mult, shift = requant_params(rng, n_out, 128 * 64 * np.sqrt(n_in))
    weight = rng.integers(-127, 128, (n_out, n_in), dtype=np.int8)
    bias = rng.integers(-5000, 5000, n_out, dtype=np.int32)
    return op, [weight, bias, mult, shift]


def add_case(rng, shape) -> tuple[OpDesc, list]:
    m = rng.integers(1 << 30, (1 << 31) - 1, 3)
    op = Add(
        shape,
        shape,
        in1_zp=int(rng.integers(-128, 128)),
        in1_multiplier=int(m[0]),
        in1_shift=int(rng.integers(-3, 0)),
        in2_zp=int(rng.integers(-128, 128)),
        in2_multiplier=int(m[1]),
        in2_shift=int(rng.integers(-3, 0)),
        left_shift=20,
        out_zp=int(rng.integers(-128, 128)),
        out_multiplier=int(m[2]),
        out_shift=-19,
    )
    return op, []


def binary_case(rng, function: str, shape0, shape1, const_operand: int = -1, act=(-128, 127),
                mul_gain: float = 64.0, zps: tuple[int, int, int] | None = None) -> tuple[OpDesc, list]:
    """A :class:`Binary` with TFLM's parameters for random scales and zero points (or ``zps``; ``mul_gain``:
    a MUL's output scale is about ``s_a * s_b * mul_gain``; below 1 the multiplier shifts left)."""
    s0, s1 = (float(np.float32(v)) for v in rng.uniform(0.01, 0.1, 2))
    zps = zps or tuple(int(z) for z in (*rng.integers(-128, 128, 2), rng.integers(-64, 65)))
    params: dict[str, int] = {}
    if function in ("add", "sub"):
        prepare = fixedpoint.prepare_add if function == "add" else fixedpoint.prepare_sub
        p = prepare(s0, zps[0], s1, zps[1], (s0 + s1) * float(rng.uniform(0.6, 1.2)), zps[2])
        params = dict(left_shift=p.left_shift, in1_multiplier=p.input1_multiplier, in1_shift=p.input1_shift,
                      in2_multiplier=p.input2_multiplier, in2_shift=p.input2_shift,
                      out_multiplier=p.output_multiplier, out_shift=p.output_shift)
    elif function == "mul":
        m = fixedpoint.prepare_mul(s0, s1, s0 * s1 * mul_gain * float(rng.uniform(0.8, 1.25)))
        params = dict(out_multiplier=m.output_multiplier, out_shift=m.output_shift)
    out_shape = tuple(int(d) for d in np.broadcast_shapes(tuple(shape0), tuple(shape1)))
    op = Binary(tuple(shape0), out_shape, function=function, in2_shape=tuple(shape1), const_operand=const_operand,
                in1_zp=zps[0], in2_zp=zps[1], out_zp=zps[2], act_min=act[0], act_max=act[1], **params)
    consts = []
    if const_operand >= 0:
        consts = [rng.integers(-128, 128, op.operand_shapes[const_operand], dtype=np.int8)]
    return op, consts


def pool_case(rng, h, w, c, k, s, mode, pad=0) -> tuple[OpDesc, list]:
    oh, ow = conv_out(h, k, s, pad, pad), conv_out(w, k, s, pad, pad)
    op = Pool2D((1, h, w, c), (1, oh, ow, c), mode=mode, pool=(k, k), strides=(s, s), padding=(pad, pad, pad, pad))
    return op, []


def mean_case(rng, h, w, c, keepdims=False) -> tuple[OpDesc, list]:
    out = (1, 1, 1, c) if keepdims else (1, c)
    mult = int(rng.integers(1 << 30, (1 << 31) - 1))
    shift = -int(np.ceil(np.log2(h * w)))
    op = Mean((1, h, w, c), out, in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
              multiplier=mult, shift=shift)
    return op, []


def reduce_case(rng, function: str, shape, axes, keep_dims=False) -> tuple[OpDesc, list]:
    """A :class:`Reduce` with TFLM's parameters for random scales and zero points (a SUM's output scale
    about ``sqrt(count)`` times the input's, so sums rarely saturate)."""
    count = math.prod(shape[a] for a in axes)
    x = QParams(float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    gain = float(rng.uniform(0.5, 1.5)) * (math.sqrt(count) if function == "sum" else 1.0)
    out = QParams(x.scale * gain, int(rng.integers(-64, 65)))
    return int8_ops.reduce(function, shape, tuple(axes), keep_dims, x, out).op, []


def prelu_case(rng, shape, alpha_shape) -> tuple[OpDesc, list]:
    """A :class:`Prelu` with TFLM's parameters for random scales, zero points and alpha."""
    x = QParams(float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    a = QParams(float(rng.uniform(0.002, 0.01)), int(rng.integers(-20, 21)))
    out = QParams(x.scale * float(rng.uniform(0.5, 1.5)), int(rng.integers(-64, 65)))
    lowered = int8_ops.prelu(shape, x, rng.integers(-128, 128, alpha_shape, dtype=np.int8), a, out)
    return lowered.op, lowered.consts


def batch_matmul_case(rng, lhs_shape, rhs_shape, adj_x=False, adj_y=False, const_rhs=True
                      ) -> tuple[OpDesc, list]:
    """A :class:`BatchMatmul` with TFLM's parameters for random scales and zero points (constant ``rhs``
    random, or an activation)."""
    lhs, rhs = (QParams(float(rng.uniform(0.005, 0.01)), int(rng.integers(-20, 21))) for _ in range(2))
    depth = lhs_shape[-2] if adj_x else lhs_shape[-1]
    out = QParams(lhs.scale * rhs.scale * math.sqrt(depth) * float(rng.uniform(100, 200)),
                  int(rng.integers(-20, 21)))
    constant = rng.integers(-128, 128, rhs_shape, dtype=np.int8) if const_rhs else None
    lowered = int8_ops.batch_matmul(lhs_shape, rhs_shape, adj_x, adj_y, lhs, rhs, out, constant)
    return lowered.op, lowered.consts


def pad_case(rng, h, w, c, pads) -> tuple[OpDesc, list]:
    out = (1, h + pads[1][0] + pads[1][1], w + pads[2][0] + pads[2][1], c)
    return Pad((1, h, w, c), out, pads=pads, value=int(rng.integers(-128, 128))), []


def lowered_choice(op: OpDesc, consts) -> KernelChoice:
    """The kernel choice ``LowerQDQToInteger`` makes for ``op``: the fast requantisation where the
    constants allow it (``requant.fast_requant_applies``)."""
    if not isinstance(op, Conv2D | TransposeConv2D | Dense):
        return KernelChoice()
    weight, bias, _, shift = consts
    if isinstance(op, Conv2D) and op.depthwise:
        sums = np.abs(weight.astype(np.int64)).reshape(-1, op.out_shape[3]).sum(0)
    else:
        sums = np.abs(weight.astype(np.int64)).reshape(weight.shape[0], -1).sum(1)
    return KernelChoice(fast_requant=fast_requant_applies(sums, bias, shift, op.in_zp))


def emit_op(bb: relax.BlockBuilder, name: str, op: OpDesc, inputs: list, consts,
            choice: KernelChoice | None = None) -> relax.Expr:
    """Emit ``op`` as a kernel call, with ``choice`` (default: the one lowering makes)."""
    return emit_call(bb, name, op, inputs, consts, choice or lowered_choice(op, consts))


def _derived(bb: relax.BlockBuilder, x: relax.Expr, shape) -> relax.Expr:
    """A tensor of ``shape`` computed from ``x``: ``x`` flattened, a fully connected layer, a view."""
    n_in = math.prod(int(d) for d in x.ty.shape)
    flat = bb.emit(relax.op.reshape(x, (1, n_in)))
    fc, fc_consts = dense_case(np.random.default_rng(11), n_in, math.prod(shape))
    fc = dataclasses.replace(fc, out_zp=0)  # values around zero: few saturate
    return bb.emit(relax.op.reshape(emit_op(bb, "k_derived", fc, [flat], fc_consts), tuple(shape)))


def single_op_module(op: OpDesc, consts: list[np.ndarray], choice: KernelChoice | None = None) -> tvm.IRModule:
    """An integer Relax module running ``op`` (with ``choice``: see :func:`emit_op`); a two-input op adds
    ``x`` and a 1x1 conv of ``x`` (a :class:`Binary`: ``x`` and a fully connected layer of ``x``)."""
    bb = relax.BlockBuilder()
    shapes = op.input_shapes if isinstance(op, Binary) else (op.in_shape,) * op.num_inputs
    x = relax.Var("x", relax.TensorType(shapes[0], op.in_dtype))
    with new_main(bb, x, {}) as result:
        inputs = [x]
        if isinstance(op, Binary) and op.num_inputs == 2:
            inputs = [x, _derived(bb, x, shapes[1])]
        elif op.num_inputs == 2:
            c = op.in_shape[-1]
            mix, mix_consts = conv_case(np.random.default_rng(7), op.in_shape[1], op.in_shape[2], c, c, 1, 1)
            inputs = [x, emit_op(bb, "k_mix", mix, [x], mix_consts)]
        result(emit_op(bb, f"k_{op.kind}", op, inputs, consts, choice))
    return bb.get()


def run_compiled(compiled, target_name: str, folder, inputs: list) -> list[bytes]:
    """Build ``compiled`` (a ``CompiledModel``) for ``target_name`` in ``folder`` and run it once per input:
    the raw outputs (QEMU for Cortex-M targets, natively on the host). An input of a model with several
    is a list of arrays (one per model input); its output is every model output, back to back."""
    from mcunet_tvm import toolchain
    from mcunet_tvm.targets import get_target

    target = get_target(target_name)
    sources = compiled.write(folder)
    exe = toolchain.link(target, toolchain.compile_objects(target, sources, [folder], folder / "obj"), folder / "model")
    prog = compiled.program
    size = sum(prog.nbytes(name) for name in prog.outputs)

    def packed(x) -> bytes:
        arrays = x if isinstance(x, (list, tuple)) else [x]
        return b"".join(_raw(a) for a in arrays)

    return [toolchain.run(target, exe, packed(x), size).output for x in inputs]


def _raw(x) -> bytes:
    """An input's bytes: float and int16 arrays as they are, other integers as int8."""
    x = np.asarray(x)
    return (x if x.dtype.kind == "f" or x.dtype == np.int16 else x.astype(np.int8)).tobytes()
