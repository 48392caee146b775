"""Element-wise kernels: residual add (two scales), broadcasting binary operators, PRELU, table lookups, constant
padding, patch insertion, input rows."""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T  # noqa: N812 (TVMScript convention)

from ..ops import Add, Binary, InputRows, Insert, Lut, Pad, Prelu
from ..quant.fixedpoint import multiply_by_quantized_multiplier
from .common import OUT, arg, finish, window_arg
from .int16 import clamp_to_int16
from .requant import clamp_to_int8, const_requant_is_fast, requantize_const


def _i32(v: int):
    return tirx.const(v, "int32")


def add(op: Add) -> tirx.PrimFunc:
    """TFLite int8 ADD: rescale both inputs to a common Q(left_shift) scale, sum, requantise.

    Whole tensors run as one flat loop, four elements per iteration; patch
    windows index in NHWC. Where :func:`add_rescale_table` gives one, the
    rescaling of the input of the smaller scale is a lookup of its 256
    possible values (computed at compile time), and the sum is doubled for
    the output's fast requantisation at no cost.
    """
    if op.windows:
        a, load_a = window_arg(0, op, op.in_shape, "a")
        b, load_b = window_arg(1, op, op.in_shape, "b")
        out = te.compute(op.out_shape, lambda *idx: _add_value(op, load_a(*idx), load_b(*idx)), name=OUT)
        return finish([a, b, out])
    n = math.prod(op.out_shape)
    table = add_rescale_table(op)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            a = T.arg("p0_a", T.buffer((n,), "int8"))
            b = T.arg("p1_b", T.buffer((n,), "int8"))
            lut = T.arg("p2_table", T.buffer((256,), "int32")) if table is not None else None
            out = T.arg(OUT, T.buffer((n,), "int8"))
            big, small = (a, b) if _larger_scale_input(op) == 0 else (b, a)

            def element(i):
                if lut is None:
                    T.buffer_store(out, _add_value(op, a[i], b[i]), [i])
                    return
                total2 = lut[small[i].astype("uint8").astype("int32")] + (
                    big[i].astype("int32") << tirx.const(op.left_shift, "int32"))
                value = requantize_const(total2, op.out_multiplier, op.out_shift, _total_bound(op), op.out_zp,
                                         doubled=True)
                T.buffer_store(out, clamp_to_int8(value, op.act_min, op.act_max), [i])

            _four_per_iteration(n, element)
    return builder.get()


def _four_per_iteration(n: int, element) -> None:
    """Emit ``element(i)`` for i in 0..n-1: a loop of four per iteration, then the tail unrolled."""
    with T.serial(0, n // 4) as q:
        for u in range(4):
            element(q * 4 + u)
    for i in range(n - n % 4, n):
        element(i)


def lut(op: Lut) -> tirx.PrimFunc:
    """``out[i] = table[uint8(x[i])]``: one load per element, four elements per iteration (whole
    tensors) or NHWC over a patch window."""
    if op.windows:
        x, load = window_arg(0, op, op.in_shape, "x")
        table = arg(1, (256,), "int8", "table")
        out = te.compute(op.out_shape, lambda *idx: table[load(*idx).astype("uint8").astype("int32")], name=OUT)
        return finish([x, table, out])
    n = math.prod(op.out_shape)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((n,), "int8"))
            table = T.arg("p1_table", T.buffer((256,), "int8"))
            out = T.arg(OUT, T.buffer((n,), "int8"))

            def element(i):
                T.buffer_store(out, table[x[i].astype("uint8").astype("int32")], [i])

            _four_per_iteration(n, element)
    return builder.get()


def _larger_scale_input(op: Add) -> int | None:
    """0 or 1: the input whose rescaling is a halving (multiplier 2^30, shift 0: TFLite gives it to
    the input of the larger scale); None if neither."""
    for index, (mult, shift) in enumerate(((op.in1_multiplier, op.in1_shift), (op.in2_multiplier, op.in2_shift))):
        if _halving(op, mult, shift):
            return index
    return None


def _halving(op: Add | Binary, mult: int, shift: int) -> bool:
    """An input rescaling that is an exact halving: SRDHM(v, 2^30) = floor((v + 1) / 2), and
    v = x * 2^L is even, so x * 2^(L-1)."""
    return mult == 1 << 30 and shift == 0 and op.left_shift >= 1


def _span(op: Add | Binary) -> int:
    """A bound on |x - zp| for the operands' element type (int8: 255, int16: 65535, as TFLM bounds it)."""
    return 65535 if op.in_dtype == "int16" else 255


def _total_bound(op: Add | Binary) -> int:
    """A bound on |rescaled a + rescaled b| (the multipliers are below 1, a left shift scales up)."""
    shifted_bound = _span(op) << op.left_shift
    return sum((shifted_bound << max(s, 0)) + 1 for s in (op.in1_shift, op.in2_shift))


def add_rescale_table(op: Add) -> np.ndarray | None:
    """The ADD kernel's lookup table (int32[256], by the unsigned byte of the smaller-scale input).

    Entry ``u`` is twice that input's TFLite rescaling of ``int8(u)`` minus
    twice the other input's zero-point term, so the kernel's doubled sum is
    ``table[u] + (x << left_shift)``; None where the kernel does not use one
    (patch windows, no input with the halving multiplier, an output
    requantisation without the fast form).
    """
    big = _larger_scale_input(op)
    if op.windows or big is None or not const_requant_is_fast(op.out_shift, _total_bound(op), op.out_zp):
        return None
    zp_big, zp_small = (op.in1_zp, op.in2_zp) if big == 0 else (op.in2_zp, op.in1_zp)
    mult, shift = (op.in2_multiplier, op.in2_shift) if big == 0 else (op.in1_multiplier, op.in1_shift)
    x = np.arange(256, dtype=np.int64).astype(np.uint8).view(np.int8).astype(np.int64)
    rescaled = multiply_by_quantized_multiplier((x - zp_small) << op.left_shift, mult, shift)
    return (2 * rescaled - (np.int64(zp_big) << op.left_shift)).astype(np.int32)


def _rescaled(op: Add | Binary, value, operand: int):
    """TFLite ADD/SUB's rescaling of an int8 (int16) value of operand ``operand`` to Q(left_shift), exact."""
    zp, mult, shift = ((op.in1_zp, op.in1_multiplier, op.in1_shift) if operand == 0
                       else (op.in2_zp, op.in2_multiplier, op.in2_shift))
    x = value.astype("int32") - _i32(zp)
    if _halving(op, mult, shift):  # the input of the larger scale: one multiply
        return x * _i32(1 << (op.left_shift - 1))
    return requantize_const(x * _i32(1 << op.left_shift), mult, shift, _span(op) << op.left_shift)


def _clamp(op: Add | Binary, value):
    """``value`` (int32) clamped to the fused activation's range and narrowed to the output's type."""
    if op.out_dtype == "int16":
        return clamp_to_int16(value, op.act_min, op.act_max)
    return clamp_to_int8(value, op.act_min, op.act_max)


def _add_output(op: Add | Binary, total):
    """The int8 (int16) result of ADD/SUB from the sum (difference) of the rescaled operands."""
    value = requantize_const(total, op.out_multiplier, op.out_shift, _total_bound(op), op.out_zp)
    return _clamp(op, value)


def _add_value(op: Add, a_val, b_val):
    """The int8 sum of two int8 values of the ADD's inputs (TFLite's arithmetic, exact)."""
    return _add_output(op, _rescaled(op, a_val, 0) + _rescaled(op, b_val, 1))


# ---- broadcasting binary operators (ADD, SUB, MUL, MAXIMUM, MINIMUM) ------------------------------------------



def broadcast_loops(op: Binary | Prelu) -> list[tuple[int, int, int]]:
    """The output of ``op`` as nested loops, outermost first: (extent, stride in operand 0, stride in operand 1).

    Operand shapes align on their trailing dimensions; dimensions of size 1 in the output are dropped
    and adjacent dimensions along which each operand is either read or broadcast alike are merged, so a
    (1, H, W, C) x (1, 1, 1, C) product is two loops (H*W, then C). A stride of 0: the operand is
    broadcast along that loop. An output of one element has no loop.
    """
    rank = len(op.out_shape)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in op.operand_shapes]
    merged: list[list[int]] = []  # [extent, reads operand 0, reads operand 1]
    for d, size in enumerate(op.out_shape):
        if size == 1:
            continue
        reads = [int(p[d] == size) for p in padded]
        if merged and merged[-1][1:] == reads:
            merged[-1][0] *= size
        else:
            merged.append([size, *reads])
    loops = []
    for k, (extent, *reads) in enumerate(merged):
        strides = [math.prod(m[0] for m in merged[k + 1 :] if m[1 + i]) if reads[i] else 0 for i in (0, 1)]
        loops.append((extent, strides[0], strides[1]))
    return loops


def _doubled_operand(op: Binary) -> int | None:
    """The MUL operand whose term is doubled, so the product is the ``2 acc`` the fast requantisation takes
    (the operand with fewer elements: its term is computed least often); None without the fast form."""
    if op.function != "mul" or not const_requant_is_fast(op.out_shift, _span(op) ** 2, op.out_zp):
        return None
    return 0 if math.prod(op.in_shape) < math.prod(op.in2_shape) else 1


def _operand_term(op: Binary, value, operand: int):
    """What the combination of ``op`` needs of one operand's value: its ADD/SUB rescaling, MUL's
    value minus the zero point (doubled: :func:`_doubled_operand`), or (MAXIMUM/MINIMUM) the value itself."""
    if op.function in ("add", "sub"):
        return _rescaled(op, value, operand)
    if op.function == "mul":
        zp = op.in1_zp if operand == 0 else op.in2_zp
        if operand == _doubled_operand(op):
            return value.astype("int32") * _i32(2) - _i32(2 * zp)
        return value.astype("int32") - _i32(zp)
    return value


def _combine(op: Binary, a, b):
    """The output of ``op`` from the terms of its two operands (TFLM's arithmetic, exact)."""
    if op.function in ("add", "sub"):
        return _add_output(op, a + b if op.function == "add" else a - b)
    if op.function == "mul":
        doubled = _doubled_operand(op) is not None
        value = requantize_const(a * b, op.out_multiplier, op.out_shift, _span(op) ** 2, op.out_zp, doubled=doubled)
        return _clamp(op, value)
    value = tirx.max(a, b) if op.function == "maximum" else tirx.min(a, b)
    info = np.iinfo(op.dtype)
    if op.act_min > info.min:
        value = tirx.max(value, tirx.const(op.act_min, op.dtype))
    if op.act_max < info.max:
        value = tirx.min(value, tirx.const(op.act_max, op.dtype))
    return value


def binary(op: Binary) -> tirx.PrimFunc:
    """TFLite ADD/SUB/MUL/MAXIMUM/MINIMUM (int8, or int16) with broadcasting, over the output in NHWC
    (row-major) order.

    The loops are :func:`broadcast_loops` (indices are compile-time strides, 0 along a broadcast
    dimension), the innermost one four elements per iteration. Each operand's term (its rescaling,
    or its value minus the zero point) is computed once in the innermost loop it varies in: a
    (1, H, W, C) x (1, H, 1, 1) ADD rescales the second operand once per row. Parameters: the
    activation operands in order, then the constant operand, if any, then the output.
    """
    if op.windows:
        return _binary_windowed(op)
    loops = broadcast_loops(op)
    out_strides = [math.prod(extent for extent, _, _ in loops[k + 1 :]) for k in range(len(loops))]
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            operands: list = [None, None]
            order = [i for i in (0, 1) if i != op.const_operand] + [op.const_operand] * (op.num_inputs == 1)
            for index, i in enumerate(order):  # activations, then the constant
                name = "operand" if i == op.const_operand else "ab"[i]
                operands[i] = T.arg(f"p{index}_{name}", T.buffer((math.prod(op.operand_shapes[i]),), op.dtype))
            out = T.arg(OUT, T.buffer((math.prod(op.out_shape),), op.dtype))

            def emit(level: int, out_index, indices, terms) -> None:
                """Loop ``level`` and below; ``terms``: the operands' terms bound above (None: varies here)."""
                terms = list(terms)
                for i in (0, 1):
                    if terms[i] is None and all(loop[1 + i] == 0 for loop in loops[level:]):
                        term = _operand_term(op, operands[i][indices[i]], i)
                        terms[i] = term if level == len(loops) else T.bind(term)
                if level == len(loops):
                    T.buffer_store(out, _combine(op, *terms), [out_index])
                    return
                extent, *strides = loops[level]

                def body(j) -> None:
                    emit(level + 1, out_index + j * out_strides[level],
                         [indices[i] + j * strides[i] for i in (0, 1)], terms)

                if level < len(loops) - 1:
                    with T.serial(0, extent) as j:
                        body(j)
                    return
                if extent >= 4:
                    with T.serial(0, extent // 4) as q:
                        for u in range(4):
                            body(q * 4 + u)
                for j in range(extent - extent % 4, extent):
                    body(j)

            emit(0, 0, [0, 0], [None, None])
    return builder.get()


def _channel_index(shape, c):
    """Index into a constant of ``shape`` broadcast over a patch (it varies along channels at most)."""
    return c if tuple(shape) and shape[-1] > 1 else _i32(0)


def _binary_windowed(op: Binary) -> tirx.PrimFunc:
    """``op`` on a patch (patch-based inference): activations read through their windows in NHWC, the
    constant operand, if any, broadcast over rows and columns (``patching.regions`` allows no other)."""
    params, loads = [], [None, None]
    activations = [i for i in (0, 1) if i != op.const_operand]
    for index, i in enumerate(activations):
        tensor, loads[i] = window_arg(index, op, op.operand_shapes[i], "ab"[i])
        params.append(tensor)
    if op.const_operand >= 0:
        shape = op.operand_shapes[op.const_operand]
        const = arg(len(activations), (math.prod(shape),), "int8", "operand")
        loads[op.const_operand] = lambda b, h, w, c: const[_channel_index(shape, c)]
        params.append(const)

    def value(*idx):
        return _combine(op, *(_operand_term(op, loads[i](*idx), i) for i in (0, 1)))

    return finish([*params, te.compute(op.out_shape, value, name=OUT)])


def _prelu_value(op: Prelu, v, alpha):
    """TFLM's PRELU of ``v = x - in_zp`` (int32) with the int8 ``alpha``."""
    slope = alpha.astype("int32") - _i32(op.alpha_zp)
    positive = requantize_const(v, op.pos_multiplier, op.pos_shift, 255, op.out_zp)
    negative = requantize_const(v * slope, op.neg_multiplier, op.neg_shift, 255 * 255, op.out_zp)
    return clamp_to_int8(tirx.Select(v >= _i32(0), positive, negative), -128, 127)


def _prelu_windowed(op: Prelu) -> tirx.PrimFunc:
    """PRELU on a patch: the input through its window, ``alpha`` broadcast over rows and columns."""
    x, load = window_arg(0, op, op.in_shape, "x")
    alpha = arg(1, (math.prod(op.alpha_shape),), "int8", "alpha")

    def value(b, h, w, c):
        v = load(b, h, w, c).astype("int32") - _i32(op.in_zp)
        return _prelu_value(op, v, alpha[_channel_index(op.alpha_shape, c)])

    return finish([x, alpha, te.compute(op.out_shape, value, name=OUT)])


def prelu(op: Prelu) -> tirx.PrimFunc:
    """TFLM's int8 PRELU over the output in row-major order, ``alpha`` broadcast by compile-time strides
    (:func:`broadcast_loops`): ``v = x - in_zp``; ``v >= 0``: ``v`` requantised by the positive
    multiplier, else ``v * (alpha - alpha_zp)`` by the negative one; ``+ out_zp``, clamped."""
    if op.windows:
        return _prelu_windowed(op)
    loops = broadcast_loops(op)
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            x = T.arg("p0_x", T.buffer((math.prod(op.in_shape),), "int8"))
            alpha = T.arg("p1_alpha", T.buffer((math.prod(op.alpha_shape),), "int8"))
            out = T.arg(OUT, T.buffer((math.prod(op.out_shape),), "int8"))

            def element(i, a) -> None:
                v = T.bind(x[i].astype("int32") - _i32(op.in_zp))
                T.buffer_store(out, _prelu_value(op, v, alpha[a]), [i])

            def emit(level: int, i, a) -> None:
                if level == len(loops):
                    element(i, a)
                    return
                extent, x_stride, a_stride = loops[level]
                with T.serial(0, extent) as j:
                    emit(level + 1, i + j * x_stride, a + j * a_stride)

            emit(0, _i32(0), _i32(0))
    return builder.get()


def pad(op: Pad) -> tirx.PrimFunc:
    """Copy into a larger tensor (of ``op.dtype`` elements), filling the border with ``op.value``."""
    x = arg(0, op.in_shape, op.dtype, "x")

    def body(*idx):
        src = [i - lo for i, (lo, _) in zip(idx, op.pads, strict=True)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, op.in_shape, strict=True)])
        return tirx.if_then_else(inside, x[tuple(src)], tirx.const(op.value, op.dtype))

    out = te.compute(op.out_shape, body, name=OUT)
    return finish([x, out])


def insert(op: Insert) -> tirx.PrimFunc:
    """Write a patch into its region of the tensor being assembled; nothing else is touched.

    The output takes over the storage of the assembled tensor (input 1), so
    the kernel never reads it: its buffer argument is unused. Written with
    the TIR IRBuilder because TE cannot express a partial write.
    """
    _, ph, pw, c = op.in_shape
    r0, c0 = op.offset
    with IRBuilder() as builder:
        with T.prim_func():
            T.func_name("main")
            patch = T.arg("p0_patch", T.buffer(op.in_shape, "int8"))
            if not op.first:
                T.arg("p1_full", T.buffer(op.out_shape, "int8"))
            out = T.arg(OUT, T.buffer(op.out_shape, "int8"))
            with T.grid(ph, pw, c) as (i, j, k):
                T.buffer_store(out, patch[0, i, j, k], [0, i + r0, j + c0, k])
    return builder.get()


def input_rows(op: InputRows) -> tirx.PrimFunc:
    """Copy rows ``row0 ..`` of the input (the reference semantics of a streamed-input band)."""
    x = arg(0, op.in_shape, "int8", "x")
    out = te.compute(op.out_shape, lambda b, i, j, c: x[b, i + op.row0, j, c], name=OUT)
    return finish([x, out])
