"""Patch-based inference (MCUNetV2) on the integer program: receptive fields and per-patch ops.

The first ``split_step + 1`` steps (the *patch stage*) are replaced by a P x Q
grid of patches. Patch (p, q) owns a rectangle of the split tensor S; going
backwards through the stage, each tensor gets the bounding box of the rows
and columns its consumers need (the receptive field with its halo, clipped
to the image). Going forwards, every op is re-instantiated on its patch:

- its output is the needed rectangle of its output tensor;
- its padding is what lies outside the *true* image on each side, so
  padded taps are exactly those of layer-based execution (zero point for
  convolutions, not counted for average pooling, ignored for max pooling);
- it reads a window of its producer's patch buffer (or of the full model
  input) when it needs less than the whole buffer (``OpDesc.windows``).

Each patch ends with an :class:`~mcunet_tvm.ops.Insert` that writes the patch
of S into S in place; the steps after the split are unchanged. Same
arithmetic per output element, so the result is bit-exact with layer-based
execution. This module computes the plan (:func:`plan_patches`, pure data on
the :class:`~mcunet_tvm.ir.Program` view); ``passes/patch_inference.py``
rewrites the module with it.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from ..errors import UnsupportedModelError
from ..ir import KernelCall, PatchInfo, Program
from ..kernels import KernelChoice
from ..ops import Add, Binary, Conv2D, InputRows, Insert, Lut, OpDesc, Pool2D, Prelu

#: (row0, row1, col0, col1), half-open, in the coordinates of a whole tensor
Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class PatchPlan:
    """The patch stage that replaces steps ``0..split_step``: its calls in order (tensor names
    local to the plan; ``input`` names the model input), their shapes, and what the split did."""

    calls: tuple[KernelCall, ...]
    shapes: dict[str, tuple[int, ...]]
    #: the plan's name of the assembled split tensor (the last ``Insert``'s output)
    split: str
    info: PatchInfo


def split_bounds(size: int, parts: int) -> list[tuple[int, int]]:
    """``size`` rows cut into ``parts`` near-equal consecutive ranges."""
    cuts = [round(i * size / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


#: element-wise ops: output element (h, w) reads input element (h, w)
ELEMENTWISE = (Add, Lut, Binary, Prelu)


def _constant_per_channel(shape) -> bool:
    """A constant operand of ``shape`` (numpy broadcasting against NHWC) varies along channels at most."""
    return all(d == 1 for d in tuple(shape)[-4:-1])


def patchable(op: OpDesc) -> bool:
    """Whether ``op`` can run on a patch: convolutions, pooling and element-wise ops on 4-D tensors whose
    activation operands have the output's shape and whose constant operand (BINARY, PRELU's alpha)
    does not vary over rows and columns; not already windowed."""
    if op.windows or len(op.out_shape) != 4:
        return False
    if isinstance(op, Binary):
        return op.dtype == "int8" and all(tuple(s) == tuple(op.out_shape) for s in op.input_shapes) and (
            op.const_operand < 0 or _constant_per_channel(op.operand_shapes[op.const_operand]))
    if isinstance(op, Prelu):
        return _constant_per_channel(op.alpha_shape)
    return isinstance(op, (Conv2D, Pool2D, Add, Lut))


def _window_rows(op: OpDesc, lo: int, hi: int, axis: int) -> tuple[int, int]:
    """Unclipped input range [a, e) that output range [lo, hi) of ``op`` reads along ``axis`` (0 rows, 1 cols)."""
    if isinstance(op, ELEMENTWISE):
        return lo, hi
    if isinstance(op, Conv2D):
        k, s, d = op.kernel[axis], op.strides[axis], op.dilation[axis]
    else:
        assert isinstance(op, Pool2D)
        k, s, d = op.pool[axis], op.strides[axis], 1
    pad = op.padding[axis]
    return lo * s - pad, (hi - 1) * s - pad + (k - 1) * d + 1


def input_region(op: OpDesc, out: Region, in_shape) -> tuple[Region, tuple[int, int, int, int]]:
    """The clipped input region that output region ``out`` needs, and the padding outside the image.

    Padding is (top, left, bottom, right): the part of the receptive field beyond the true image border.
    """
    a, e = _window_rows(op, out[0], out[1], 0)
    b, f = _window_rows(op, out[2], out[3], 1)
    h, w = in_shape[1], in_shape[2]
    region = (max(a, 0), min(e, h), max(b, 0), min(f, w))
    return region, (max(0, -a), max(0, -b), max(0, e - h), max(0, f - w))


def _union(x: Region | None, y: Region) -> Region:
    if x is None:
        return y
    return (min(x[0], y[0]), max(x[1], y[1]), min(x[2], y[2]), max(x[3], y[3]))


def check_split(prog: Program, split_step: int) -> None:
    """Raise :class:`UnsupportedModelError` unless the first ``split_step + 1`` steps can run per patch."""
    n = len(prog.calls)
    if not 0 <= split_step < n - 1:
        raise UnsupportedModelError(
            f"the patch stage must end at a step between 0 and {n - 2}, not {split_step}",
            where=f"--patch ...@{split_step}",
            hint="pick a step from the memory table of a layer-based build (report.json memory.steps)",
        )
    stage = prog.calls[: split_step + 1]
    for i, call in enumerate(stage):
        op = call.op
        if not patchable(op) or call.choice.inplace:
            raise UnsupportedModelError(
                f"step {i} ({op.kind} -> {call.output}) cannot run patch by patch",
                where=f"patch stage ending at step {split_step}",
                hint="the patch stage may hold only conv2d, depthwise conv2d, pooling and element-wise ops "
                "(add, sub, mul, maximum, minimum of equal shapes or by a per-channel constant, prelu, table "
                "lookups); end it before this step",
            )
    produced = {c.output for c in stage[:-1]}
    for j, call in enumerate(prog.calls[split_step + 1 :], start=split_step + 1):
        used = produced.intersection(call.inputs)
        if used:
            raise UnsupportedModelError(
                f"step {j} reads {sorted(used)[0]}, a tensor inside the patch stage",
                where=f"patch stage ending at step {split_step}",
                hint="end the patch stage after the last step whose output is read later (e.g. after a residual add)",
            )


def plan_patches(prog: Program, split_step: int, grid: tuple[int, int], stream_input: bool = False) -> PatchPlan:
    """The plan that runs the first ``split_step + 1`` steps of ``prog`` on a ``grid`` of patches.

    ``stream_input``: the model input is not kept whole; before each row of
    patches an ``InputRows`` step fetches the band of input rows that row
    needs (halo included), and the patches read their windows from the band.
    """
    check_split(prog, split_step)
    stage = prog.calls[: split_step + 1]
    split = stage[-1].output
    s_shape = prog.shapes[split]
    rows, cols = grid
    if not (1 <= rows <= s_shape[1] and 1 <= cols <= s_shape[2]):
        raise UnsupportedModelError(
            f"a {rows}x{cols} grid does not fit the {s_shape[1]}x{s_shape[2]} split tensor",
            where=f"step {split_step} -> {split}",
            hint="use fewer patches or split at an earlier step",
        )
    if stream_input and any(prog.input in c.inputs for c in prog.calls[split_step + 1 :]):
        raise UnsupportedModelError("the model input is read after the patch stage, so it cannot be streamed",
                                    where=f"step {split_step}", hint="drop --stream-input or split later")
    in_shape = prog.shapes[prog.input]
    shapes = {prog.input: in_shape}
    calls: list[KernelCall] = []
    variants: dict[tuple, str] = {}  # op and choice -> kernel name (identical patch geometries share a kernel)
    instances: dict[tuple, tuple[OpDesc, str]] = {}  # a stage step's patch geometry -> its op and kernel
    assembled = None
    row_bounds = split_bounds(s_shape[1], rows)
    patches = [(r, c) for r in row_bounds for c in split_bounds(s_shape[2], cols)]
    needs = []
    for (r0, r1), (c0, c1) in patches:
        need: dict[str, Region] = {split: (r0, r1, c0, c1)}
        for call in reversed(stage):
            if call.output not in need:
                continue
            for name in call.inputs:
                region, _ = input_region(call.op, need[call.output], prog.shapes[name])
                need[name] = _union(need.get(name), region)
        needs.append(need)
    bands: dict[int, Region] = {}  # patch row -> input rows it reads (all columns)
    for k, need in enumerate(needs):
        if prog.input in need:
            r = k // cols
            band = (need[prog.input][0], need[prog.input][1], 0, in_shape[2])
            bands[r] = _union(bands.get(r), band)
    # kernels are chosen for the patch geometry afterwards
    choices = {call.output: call.choice.with_(simd=None) for call in stage}
    for k, ((r0, _), (c0, _)) in enumerate(patches):
        need = needs[k]
        band_name = prog.input
        if stream_input and k // cols in bands:
            b0, b1, _, _ = band = bands[k // cols]
            band_name = f"{prog.input}_rows{k // cols}"
            if k % cols == 0:  # first patch of its row: fetch the band
                op = InputRows(in_shape=in_shape, out_shape=(1, b1 - b0, in_shape[2], in_shape[3]), row0=b0)
                kernel = variants.setdefault(_key(op, KernelChoice()), f"input_rows_v{len(variants)}")
                calls.append(KernelCall(kernel, op, (prog.input,), (), band_name))
                shapes[band_name] = op.out_shape
            need[prog.input] = band
        else:
            need[prog.input] = (0, in_shape[1], 0, in_shape[2])  # read in place

        def local(name: str, k: int = k, band_name: str = band_name) -> str:
            return band_name if name == prog.input else f"{name}_p{k}"

        for call in stage:
            if call.output not in need:
                continue
            out = need[call.output]
            op, windows = call.op, []
            region, pads = input_region(op, out, prog.shapes[call.inputs[0]])
            for name in call.inputs:
                buf = need[name]
                if region == buf:
                    windows.append(())
                else:
                    windows.append((region[0] - buf[0], region[2] - buf[2], buf[1] - buf[0], buf[3] - buf[2]))
            c_in = prog.shapes[call.inputs[0]][3]
            fields = dict(
                in_shape=(1, region[1] - region[0], region[3] - region[2], c_in),
                out_shape=(1, out[1] - out[0], out[3] - out[2], op.out_shape[3]),
                windows=tuple(windows) if any(windows) else (),
            )
            if isinstance(op, (Conv2D, Pool2D)):
                fields["padding"] = pads
            if isinstance(op, Binary):  # the activation operands take the patch shape, a constant keeps its own
                patch = fields["in_shape"]
                fields["in_shape"], fields["in2_shape"] = (
                    patch if i != op.const_operand else shape for i, shape in enumerate(op.operand_shapes))
            choice = choices[call.output]
            geometry = (call.output, *fields.values())  # patches of equal geometry: the same op and kernel
            if geometry not in instances:
                new_op = dataclasses.replace(op, **fields)
                kernel = variants.setdefault(_key(new_op, choice), f"{call.kernel}_v{len(variants)}")
                instances[geometry] = new_op, kernel
            new_op, kernel = instances[geometry]
            name = local(call.output)
            shapes[name] = new_op.out_shape
            inputs = tuple(local(i) for i in call.inputs)
            calls.append(KernelCall(kernel, new_op, inputs, call.const_args, name, choice))
        last = k == len(patches) - 1
        target = split if last else f"{split}_asm{k}"
        insert = Insert(
            in_shape=shapes[local(split)], out_shape=s_shape, offset=(r0, c0), first=assembled is None,
            in_scales=(stage[-1].op.out_scale,), out_scale=stage[-1].op.out_scale,
        )
        kernel = variants.setdefault(_key(insert, KernelChoice()), f"insert_v{len(variants)}")
        inputs = (local(split),) if assembled is None else (local(split), assembled)
        calls.append(KernelCall(kernel, insert, inputs, (), target))
        shapes[target] = s_shape
        assembled = target
    layer_macs = prog.macs()
    macs = layer_macs - sum(c.op.macs() for c in stage) + sum(c.op.macs() for c in calls)
    info = PatchInfo(split_step, split, (rows, cols), len(calls), layer_macs, macs, stream_input)
    return PatchPlan(tuple(calls), shapes, assembled, info)


def patched_view(prog: Program, plan: PatchPlan) -> Program:
    """The view of ``prog`` with ``plan`` applied, as data: the calls, shapes and element types
    ``program_of(patch_inference(...))`` reads (no kernels: for planning; the stage's tensors are
    gone, the plan's local names kept). The patch search scores candidates on it without emitting
    a module; a test checks its memory graph against the emitted module's."""
    split_step = plan.info.split_step
    rest = prog.calls[split_step + 1 :]
    shapes = {**plan.shapes, **{c.output: prog.shapes[c.output] for c in rest}}
    return dataclasses.replace(
        prog, shapes=shapes, calls=plan.calls + rest, kernels={}, stream_input=plan.info.stream_input,
        patch=plan.info, dtypes={n: t for n, t in prog.dtypes.items() if n in shapes},
    )


def _key(op: OpDesc, choice: KernelChoice) -> tuple[OpDesc, KernelChoice]:
    """Patch ops equal in descriptor and choice share a kernel (both are frozen, hashable values)."""
    return op, choice
