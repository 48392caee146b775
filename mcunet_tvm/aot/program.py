"""The integer Relax module as a flat, ordered program of kernel calls.

After ``LowerQDQToInteger`` the ``main`` function is a straight line of
``R.call_tir(kernel, activations + constants)`` and ``R.reshape`` bindings.
This module reads that into plain Python objects: the AOT emitter, the
memory planner and the host reference all consume a :class:`Program`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from ..kernels import kernel_schedule, kernel_scratch_bytes, make_kernel, output_overlap
from ..kernels.simd import default_config, helium_config, simd_supported
from ..ops import Conv2D, Insert, OpDesc, Reshape, op_from_prim_func
from ..planner import Graph, Step


@dataclass(frozen=True)
class KernelCall:
    """One step: ``output = kernel(inputs..., consts...)``."""

    kernel: str  # name of the PrimFunc in the module ("" for a reshape view)
    op: OpDesc
    inputs: tuple[str, ...]
    consts: tuple[np.ndarray, ...]
    output: str


@dataclass
class Program:
    """Activation shapes, the calls in execution order, and the model's input/output."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    calls: list[KernelCall] = field(default_factory=list)
    input: str = ""
    output: str = ""
    kernels: dict[str, tvm.tirx.PrimFunc] = field(default_factory=dict)
    #: (scale, zero point) of the int8 input, when the frontend recorded it
    input_qparams: tuple[float, int] | None = None
    #: planning ahead of ``UseSimdKernels`` (e.g. a light program from the NAS): assume each op that has
    #: a SIMD kernel runs it with the default schedule, as ``compile_relax`` does on a DSP core
    assume_simd: bool = False
    #: ... and, on a core with Helium, that 1x1 convolutions and dense layers run the Helium kernel
    assume_mve: bool = False
    #: the input is not in the arena: ``InputRows`` steps fetch bands of it from the application
    stream_input: bool = False

    def nbytes(self, name: str) -> int:
        return int(np.prod(self.shapes[name], dtype=np.int64))

    def macs(self) -> int:
        return sum(c.op.macs() for c in self.calls)

    def params(self) -> int:
        """Number of weights and biases (requantisation constants not counted)."""
        return sum(int(a.size) for c in self.calls for a in c.consts[:2])

    def reordered(self, order: list[int]) -> Program:
        """The same program with its calls run in ``order`` (a topological order)."""
        return dataclasses.replace(self, calls=[self.calls[i] for i in order])

    def memory_graph(self) -> Graph:
        """The planner's view: tensor sizes and which step reads/writes what."""
        graph = Graph(inputs=(self.input,), outputs=(self.output,))
        for name in self.shapes:
            streamed = self.stream_input and name == self.input
            graph.add_tensor(name, 0 if streamed else self.nbytes(name))
        for c in self.calls:
            inplace = isinstance(c.op, Conv2D) and c.op.inplace
            alias = c.inputs[0] if isinstance(c.op, Reshape) or inplace else None
            if isinstance(c.op, Insert) and not c.op.first:
                alias = c.inputs[1]  # patches are written into the tensor being assembled
            schedule = kernel_schedule(self.kernels.get(c.kernel)) if c.kernel else None
            if c.kernel and schedule is None and self.assume_mve:
                schedule = helium_config(c.op)
            if self.assume_simd and c.kernel and schedule is None and simd_supported(c.op):
                schedule = default_config(c.op)
            overlap = tuple((c.inputs[i], d) for i, d in output_overlap(c.op, schedule))
            scratch = None
            scratch_bytes = kernel_scratch_bytes(c.op, schedule) if c.kernel else 0
            if scratch_bytes:
                scratch = scratch_name(c.output)
                graph.add_tensor(scratch, scratch_bytes)
            graph.steps.append(
                Step(c.kernel or "reshape", c.inputs, c.output, alias_of=alias, overlap=overlap, scratch=scratch)
            )
        return graph


def program_to_relax(prog: Program) -> tvm.IRModule:
    """The integer Relax module of ``prog`` (inverse of :func:`program_from_relax`).

    Kernels missing from ``prog.kernels`` are generated from their op descriptors.
    """
    bb = relax.BlockBuilder()
    param = relax.Var(prog.input, relax.TensorType(prog.shapes[prog.input], "int8"))
    attrs = {}
    if prog.input_qparams is not None:
        attrs["mcunet.input_qparams"] = [float(prog.input_qparams[0]), float(prog.input_qparams[1])]
    if prog.stream_input:
        attrs["mcunet.stream_input"] = True
    gvars: dict[str, tvm.ir.GlobalVar] = {}
    with bb.function("main", [param], attrs=attrs):
        with bb.dataflow():
            env: dict[str, relax.Expr] = {prog.input: param}
            for call in prog.calls:
                shape = prog.shapes[call.output]
                if not call.kernel:
                    env[call.output] = bb.emit(relax.op.reshape(env[call.inputs[0]], shape))
                    continue
                if call.kernel not in gvars:
                    kernel = prog.kernels.get(call.kernel) or make_kernel(call.op)
                    gvars[call.kernel] = bb.add_func(kernel, call.kernel)
                args = [env[n] for n in call.inputs] + [relax.const(c) for c in call.consts]
                env[call.output] = bb.emit(relax.call_tir(gvars[call.kernel], args, relax.TensorType(shape, "int8")))
            result = bb.emit_output(env[prog.output])
        bb.emit_func_output(result)
    return bb.get()


def scratch_name(output: str) -> str:
    """Name of the scratch tensor of the step that writes ``output``."""
    return f"{output}_scratch"


def program_from_relax(mod: tvm.IRModule) -> Program:
    """Read the lowered ``main`` of ``mod`` into a :class:`Program`."""
    func = mod["main"]
    if len(func.params) != 1:
        raise ValueError("exactly one model input is supported")
    prog = Program()
    names: dict[relax.Var, str] = {}

    def name_of(expr: relax.Expr) -> str:
        if expr not in names:
            raise ValueError(f"unexpected non-activation argument {expr}")
        return names[expr]

    param = func.params[0]
    names[param] = "input"
    prog.input = "input"
    if func.attrs is not None and "mcunet.input_qparams" in func.attrs:
        scale, zp = (float(v) for v in func.attrs["mcunet.input_qparams"])
        prog.input_qparams = (scale, int(zp))
    prog.stream_input = bool(func.attrs is not None and "mcunet.stream_input" in func.attrs
                             and bool(func.attrs["mcunet.stream_input"]))
    prog.shapes["input"] = tuple(int(d) for d in param.ty.shape)
    for block in func.body.blocks:
        for binding in block.bindings:
            var, value = binding.var, binding.value
            if isinstance(value, relax.Var):
                names[var] = name_of(value)
                continue
            out = f"t{len(prog.calls)}"
            names[var] = out
            prog.shapes[out] = tuple(int(d) for d in var.ty.shape)
            if isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.call_tir"):
                gvar = value.args[0]
                kernel = mod[gvar]
                op = op_from_prim_func(kernel)
                args = list(value.args[1].fields)
                acts = tuple(name_of(a) for a in args[: op.num_inputs])
                consts = tuple(a.value.numpy() for a in args[op.num_inputs :])
                prog.kernels[gvar.name_hint] = kernel
                prog.calls.append(KernelCall(gvar.name_hint, op, acts, consts, out))
            elif isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.reshape"):
                src = name_of(value.args[0])
                op = Reshape(prog.shapes[src], prog.shapes[out])
                prog.calls.append(KernelCall("", op, (src,), (), out))
            else:
                raise ValueError(f"unexpected binding in lowered main: {value}")
    prog.output = name_of(func.body.body)
    return prog
