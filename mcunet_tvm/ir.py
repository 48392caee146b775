"""The integer IR: after lowering, one Relax module carries the network.

``main`` is a straight line of ``R.call_tir(kernel, [activations..., constants...])``
bindings and ``R.reshape`` views. Each kernel is a TIR PrimFunc tagged with
its operator descriptor, its kernel choice and its signature
(:mod:`mcunet_tvm.kernels.choice`); a call whose choice is ``view`` (``ZeroCopyViews``) runs no kernel:
the view has it as a kernel-less call, like a reshape, whose tensors the planner places in one storage.
``main``'s attributes record the input's
quantisation (``mcunet.input_qparams``), a streamed input
(``mcunet.stream_input``) and the patch split applied (``mcunet.patch``).
Every pass of :mod:`mcunet_tvm.passes` rewrites this module and nothing else
holds the network.

This module writes it (:func:`emit_call`, :func:`new_main`) and reads it:
:func:`program_of` gives the read-only :class:`Program` view the planner, the
host reference and the C emitter consume. A *light* module has stub kernels
(descriptor and choice, no body): the NAS and the patch search run the
planning passes on it without generating code (:func:`lighten`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from .kernels import KernelChoice, build_kernel
from .kernels.choice import choice_of, is_stub, op_of, stub
from .ops import DTYPE_BYTES, Concat, Conv2D, Insert, OpDesc, Reshape
from .planner import Graph, Step
from .planner.graph import resolve_aliases

INPUT_QPARAMS = "mcunet.input_qparams"
#: ``main`` attribute: per model output, ``[scale, zero point]`` of an int8 output, ``[]`` for another type
OUTPUT_QPARAMS = "mcunet.output_qparams"
STREAM_INPUT = "mcunet.stream_input"
PATCH = "mcunet.patch"


@dataclass(frozen=True)
class PatchInfo:
    """What a patch split did to the program (``main``'s ``mcunet.patch`` attribute)."""

    split_step: int
    split_tensor: str
    grid: tuple[int, int]
    #: steps of the new program that belong to the patch stage (they come first)
    patch_stage_steps: int
    layer_macs: int
    macs: int
    #: the model input is fetched band by band (``InputRows``) instead of held whole
    stream_input: bool = False

    @property
    def mac_overhead(self) -> float:
        """Extra MACs over layer-based execution, as a fraction of the whole network."""
        return (self.macs - self.layer_macs) / max(self.layer_macs, 1)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @staticmethod
    def from_json(text: str) -> PatchInfo:
        data = json.loads(text)
        return PatchInfo(**{**data, "grid": tuple(data["grid"])})


@dataclass(frozen=True)
class KernelCall:
    """One step: ``output = kernel(inputs..., consts...)``."""

    kernel: str  # name of the PrimFunc in the module ("" for a reshape view)
    op: OpDesc
    inputs: tuple[str, ...]
    #: the constant arguments as given: arrays, or the module's ``Constant`` expressions (read by
    #: :attr:`consts` only when needed; passes re-emitting a call hand these on, copying nothing)
    const_args: tuple[np.ndarray | tvm.ir.expr.Constant, ...]
    output: str
    choice: KernelChoice = field(default_factory=KernelChoice)

    @functools.cached_property
    def consts(self) -> tuple[np.ndarray, ...]:
        """The constant arguments as arrays."""
        return tuple(a.value.numpy() if isinstance(a, tvm.ir.expr.Constant) else a for a in self.const_args)


@dataclass(frozen=True)
class Program:
    """A read-only view of an integer module: shapes, the calls in execution order, input and output."""

    shapes: Mapping[str, tuple[int, ...]]
    calls: tuple[KernelCall, ...]
    #: the model's inputs and outputs in order (the C entry point takes them so)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kernels: Mapping[str, tvm.tirx.PrimFunc] = field(default_factory=dict)
    #: (scale, zero point) of the first int8 input, when the frontend recorded it
    input_qparams: tuple[float, int] | None = None
    #: the input is not in the arena: ``InputRows`` steps fetch bands of it from the application
    stream_input: bool = False
    #: the patch split applied to the module, if any
    patch: PatchInfo | None = None
    #: element type of each tensor that is not int8 (model inputs and outputs at float32 edges, indices)
    dtypes: Mapping[str, str] = field(default_factory=dict)
    #: per output, (scale, zero point) when the frontend recorded it (None: not int8, or unknown)
    output_qparams: tuple[tuple[float, int] | None, ...] = ()

    @property
    def input(self) -> str:
        """The model input, for what takes exactly one (patches, a streamed input, the NAS)."""
        if len(self.inputs) != 1:
            raise ValueError(f"the model has {len(self.inputs)} inputs")
        return self.inputs[0]

    @property
    def output(self) -> str:
        """The model output, for what takes exactly one."""
        if len(self.outputs) != 1:
            raise ValueError(f"the model has {len(self.outputs)} outputs")
        return self.outputs[0]

    def dtype(self, name: str) -> str:
        """The element type of tensor ``name`` (``ops.DTYPE_BYTES``)."""
        return self.dtypes.get(name, "int8")

    def nbytes(self, name: str) -> int:
        return math.prod(self.shapes[name]) * DTYPE_BYTES[self.dtype(name)]

    def macs(self) -> int:
        return sum(c.op.macs() for c in self.calls)

    def params(self) -> int:
        """Number of weights and biases (requantisation constants not counted)."""
        return sum(int(a.size) for c in self.calls for a in c.consts[:2])

    def memory_graph(self) -> Graph:
        """The planner's view: tensor sizes and which step reads/writes what."""
        graph = Graph(inputs=self.inputs, outputs=self.outputs)
        for name in self.shapes:
            streamed = self.stream_input and name == self.input
            graph.add_tensor(name, 0 if streamed else self.nbytes(name))
        for c in self.calls:
            if c.choice.view:
                graph.steps.append(_view_step(c))
                continue
            alias = _alias_of(c)
            overlap = tuple((c.inputs[i], d) for i, d in c.choice.overlap(c.op)) if c.kernel else ()
            scratch = None
            scratch_bytes = c.choice.scratch_bytes(c.op) if c.kernel else 0
            if scratch_bytes:
                scratch = scratch_name(c.output)
                graph.add_tensor(scratch, scratch_bytes)
            graph.steps.append(
                Step(c.kernel or "reshape", c.inputs, c.output, alias_of=alias, overlap=overlap, scratch=scratch)
            )
        return graph

    def storage_map(self) -> dict[str, str]:
        """Every tensor -> the tensor whose storage it uses: ``memory_graph().storage_map()``
        without computing sizes."""
        aliases = {c.output: a for c in self.calls if (a := _alias_of(c))}
        for c in self.calls:  # concatenation views: each input lives in the output
            if c.choice.view and isinstance(c.op, Concat):
                aliases.update(dict.fromkeys(c.inputs, c.output))
        return resolve_aliases(self.shapes, aliases)


def _view_step(c: KernelCall) -> Step:
    """The planner's step of a view call (``KernelChoice.view``): a slice is its input's bytes from its
    offset on, a concatenation's inputs are its blocks."""
    if isinstance(c.op, Concat):
        return Step("view", c.inputs, c.output, parts=tuple(zip(c.inputs, c.op.block_offsets(), strict=True)))
    return Step("view", c.inputs, c.output, alias_of=c.inputs[0], alias_offset=c.op.block_offset())


def _alias_of(c: KernelCall) -> str | None:
    """The tensor whose storage the output of ``c`` takes over: a reshape's or a slice's view, an in-place
    depthwise convolution's input, the tensor a patch is written into; None: its own storage."""
    if isinstance(c.op, Reshape) or (isinstance(c.op, Conv2D) and c.choice.inplace):
        return c.inputs[0]
    if c.choice.view and not isinstance(c.op, Concat):
        return c.inputs[0]
    if isinstance(c.op, Insert) and not c.op.first:
        return c.inputs[1]  # patches are written into the tensor being assembled
    return None


def scratch_name(output: str) -> str:
    """Name of the scratch tensor of the step that writes ``output``."""
    return f"{output}_scratch"


# ---- reading -----------------------------------------------------------------------------------
def bindings(mod: tvm.IRModule) -> list[relax.Binding]:
    """The bindings of ``main`` in order."""
    return [b for block in mod["main"].body.blocks for b in block.bindings]


def main_attrs(mod: tvm.IRModule) -> dict:
    """The attributes of ``main`` as a plain dict."""
    func = mod["main"]
    return {k: func.attrs[k] for k in func.attrs.keys()} if func.attrs is not None else {}


def patch_of(mod: tvm.IRModule) -> PatchInfo | None:
    """The patch split recorded on ``main``, if any."""
    attrs = main_attrs(mod)
    return PatchInfo.from_json(str(attrs[PATCH])) if PATCH in attrs else None


def is_call(value, name: str) -> bool:
    """Whether ``value`` is a call of the Relax operator ``name``."""
    return isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name == name


@functools.lru_cache(maxsize=16)
def program_of(mod: tvm.IRModule) -> Program:
    """The :class:`Program` view of the integer module ``mod`` (modules are immutable: a pass that
    leaves a module unchanged hands the next one the same view)."""
    func = mod["main"]
    # keyed by object identity (an FFI object's hash is its handle): Relax's == builds expressions
    inputs = ("input",) if len(func.params) == 1 else tuple(f"input{k}" for k in range(len(func.params)))
    names: dict[int, str] = {hash(p): name for p, name in zip(func.params, inputs, strict=True)}

    def name_of(expr: relax.Expr) -> str:
        if hash(expr) not in names:
            raise ValueError(f"unexpected non-activation argument {expr}")
        return names[hash(expr)]

    shapes = {name: tuple(int(d) for d in p.ty.shape) for p, name in zip(func.params, inputs, strict=True)}
    dtypes = {name: str(p.ty.dtype) for p, name in zip(func.params, inputs, strict=True)}
    calls: list[KernelCall] = []
    kernels: dict[str, tvm.tirx.PrimFunc] = {}
    for binding in bindings(mod):
        var, value = binding.var, binding.value
        if isinstance(value, relax.Var):
            names[hash(var)] = name_of(value)
            continue
        out = f"t{len(calls)}"
        names[hash(var)] = out
        if is_call(value, "relax.call_tir"):
            gvar = value.args[0]
            kernel = mod[gvar]
            op = op_of(kernel)
            shapes[out] = tuple(op.out_shape)
            dtypes[out] = op.out_dtype
            args = list(value.args[1].fields)
            acts = tuple(name_of(a) for a in args[: op.num_inputs])
            consts = tuple(args[op.num_inputs :])  # Constant expressions: arrays only when read
            choice = choice_of(kernel)
            if choice.view:  # no kernel runs: the planner places the tensors (``ZeroCopyViews``)
                calls.append(KernelCall("", op, acts, consts, out, choice))
                continue
            kernels[gvar.name_hint] = kernel
            calls.append(KernelCall(gvar.name_hint, op, acts, consts, out, choice))
        elif is_call(value, "relax.reshape"):
            shapes[out] = tuple(int(d) for d in var.ty.shape)
            src = name_of(value.args[0])
            dtypes[out] = dtypes[src]
            calls.append(KernelCall("", Reshape(shapes[src], shapes[out]), (src,), (), out))
        else:
            raise ValueError(f"unexpected binding in lowered main: {value}")
    attrs = main_attrs(mod)
    qparams = None
    if INPUT_QPARAMS in attrs:
        scale, zp = (float(v) for v in attrs[INPUT_QPARAMS])
        qparams = (scale, int(zp))
    outputs = tuple(name_of(o) for o in main_outputs(mod))
    out_qparams = tuple((float(q[0]), int(q[1])) if len(q) == 2 else None
                        for q in attrs.get(OUTPUT_QPARAMS, ()))
    return Program(shapes, tuple(calls), inputs, outputs, kernels, qparams,
                   bool(attrs.get(STREAM_INPUT, False)), patch_of(mod),
                   {name: dtype for name, dtype in dtypes.items() if dtype != "int8"}, out_qparams)


def is_integer(mod: tvm.IRModule) -> bool:
    """True if ``main`` is already lowered: only kernel calls, reshapes and aliases."""
    for binding in bindings(mod):
        value = binding.value
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            if value.op.name not in ("relax.call_tir", "relax.reshape"):
                return False
    return True


def is_light(mod: tvm.IRModule) -> bool:
    """Whether the module's kernels are stubs (planning only, see :func:`lighten`)."""
    return any(is_stub(f) for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc))


def lighten(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with every kernel replaced by its stub: the same network and choices, no code."""
    functions = {
        gvar: stub(op_of(f), choice_of(f), _signature(f), gvar.name_hint) if isinstance(f, tvm.tirx.PrimFunc) else f
        for gvar, f in mod.functions.items()
    }
    return tvm.IRModule(functions, attrs=mod.attrs)


def _signature(func):
    from .kernels.choice import SIGNATURE_ATTR, Signature, signature_of

    return signature_of(func) if func.attrs is not None and SIGNATURE_ATTR in func.attrs else Signature(())


# ---- writing -----------------------------------------------------------------------------------
@contextlib.contextmanager
def new_main(bb: relax.BlockBuilder, params: relax.Var | Sequence[relax.Var],
             attrs: dict) -> Iterator[Callable[..., None]]:
    """Build ``main(*params)`` with ``attrs`` in ``bb``, its bindings in one dataflow block; the
    context yields the function that sets its results (one: a tensor; several: a tuple)::

        with new_main(bb, x, attrs) as result:
            result(emit_call(bb, ...))
    """
    outputs: list[relax.Expr] = []
    params = [params] if isinstance(params, relax.Var) else list(params)
    with bb.function("main", params, attrs=attrs):
        with bb.dataflow():
            yield lambda *values: outputs.extend(values)
            if not outputs:
                raise ValueError("main needs a result")
            out = [bb.emit_output(o) for o in outputs]
        bb.emit_func_output(out[0] if len(out) == 1 else relax.Tuple(out))


def main_outputs(mod: tvm.IRModule) -> list[relax.Expr]:
    """The results of ``main`` in order (the fields of its tuple, or its one tensor)."""
    body = mod["main"].body.body
    return list(body.fields) if isinstance(body, relax.Tuple) else [body]


def emit_call(
    bb: relax.BlockBuilder,
    name: str,
    op: OpDesc,
    inputs: list[relax.Expr],
    consts: Sequence[np.ndarray | relax.Expr],
    choice: KernelChoice | None = None,
    light: bool = False,
    kernel: tvm.tirx.PrimFunc | None = None,
) -> relax.Expr:
    """Emit ``op`` as a kernel call: ``kernel`` (or one generated from ``op`` and ``choice``; a stub
    when ``light``) added to the module as ``name``; ``consts`` as arrays or the module's constants."""
    func = kernel if kernel is not None else build_kernel(op, choice, light=name if light else "")
    gvar = bb.add_func(func, name)
    # the array's own element type (relax.const narrows int64 to int32 by default)
    args = list(inputs) + [c if isinstance(c, relax.Expr) else relax.const(c, str(np.asarray(c).dtype))
                           for c in consts]
    return bb.emit(relax.call_tir(gvar, args, relax.TensorType(op.out_shape, op.out_dtype)))
