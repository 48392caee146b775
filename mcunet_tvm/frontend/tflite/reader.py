"""Read a ``.tflite`` flatbuffer into plain, checked Python values.

The ``tflite`` package's accessors read raw offsets: on a damaged file they
raise anything (``struct.error``, ``TypeError``, ``IndexError``) or return
garbage. This module reads every field the importer uses once, inside
guards that name the part that failed (``operator 3 options``, ``tensor 12
buffer``), checks the cross references (tensor, buffer and opcode indices,
buffer sizes against shapes and types) and hands out frozen dataclasses, so
the importer never touches the flatbuffer and every failure of a damaged
file is a :class:`ModelFileError` saying where.

Limits: the first subgraph is read (others are reported by count); sparse
tensors and tensors over 2 GB (buffer offsets outside the file) are rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import tflite

from ...errors import ModelFileError

T = TypeVar("T")

TYPE_NAMES: dict[int, str] = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
OP_NAMES: dict[int, str] = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES: dict[int, str] = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_PADDING = {v: k for k, v in vars(tflite.Padding).items() if not k.startswith("_")}
_ACTIVATION = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
_MIRROR = {v: k for k, v in vars(tflite.MirrorPadMode).items() if not k.startswith("_")}
#: option fields whose integer value is an enum, decoded to its name
_ENUM_FIELDS: dict[str, dict[int, str]] = {
    "Padding": _PADDING, "FusedActivationFunction": _ACTIVATION, "Mode": _MIRROR,
    "OutputType": TYPE_NAMES, "InputType": TYPE_NAMES,
}
NUMPY_TYPES: dict[str, str] = {
    "INT8": "int8", "UINT8": "uint8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FLOAT32": "float32", "FLOAT16": "float16", "BOOL": "bool", "UINT16": "uint16", "UINT32": "uint32",
    "FLOAT64": "float64",
}


@dataclass(frozen=True)
class Quantization:
    """Scales and zero points of a tensor (one per channel along ``axis``, or one)."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_tensor(self) -> bool:
        return len(self.scales) == 1


@dataclass(frozen=True)
class Tensor:
    """A tensor of the subgraph; ``data`` is the constant buffer's values, if it has one."""

    index: int
    name: str
    dtype: str  # TFLite type name: "INT8", "INT32", "FLOAT32", ...
    shape: tuple[int, ...]
    quantization: Quantization | None = None
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: the tensor is a variable (state kept between invocations: LSTM, SVDF)
    variable: bool = False

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Operator:
    """One operator: its name, version, tensor indices (-1: an omitted optional input) and options."""

    index: int
    name: str  # builtin name ("CONV_2D") or "CUSTOM(<code>)"
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    #: the builtin options by field name (``StrideH``, ``Padding`` = "SAME", ``NewShape`` = (1, 10))
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Model:
    """The first subgraph of a .tflite file."""

    path: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraphs: int = 1
    description: str = ""

    def where(self, op: Operator) -> str:
        """``path: operator #i NAME (output tensor 'name')``: where an error about ``op`` points."""
        out = f" (output tensor '{self.tensors[op.outputs[0]].name}')" if op.outputs else ""
        return f"{self.path}: operator #{op.index} {op.name}{out}"


def _guard(part: str, path: str, fn: Callable[[], T]) -> T:
    """``fn()``, with any failure of the flatbuffer accessors reported as a corrupt ``part``."""
    try:
        return fn()
    except ModelFileError:
        raise
    except Exception as exc:  # the generated accessors raise anything on bad offsets
        raise ModelFileError(f"the .tflite file is corrupt: {part} cannot be read ({type(exc).__name__})",
                             where=path, hint="re-export the model; the file may be truncated") from None


def _decode(name: str, raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def _ints(getter, length: int) -> tuple[int, ...]:
    return tuple(int(getter(j)) for j in range(length))


def read_model(path: str | Path, data: bytes | None = None) -> Model:
    """Read and check ``path`` (or ``data``); raises :class:`ModelFileError` naming what failed."""
    where = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelFileError(f"cannot read the model file: {exc.strerror}", where=where) from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError("not a TensorFlow Lite flatbuffer (missing the 'TFL3' identifier)", where=where,
                             hint="pass a .tflite file written by the TF Lite converter")
    model = _guard("the model table", where, lambda: tflite.Model.GetRootAsModel(data, 0))
    n_sub = _guard("the subgraph list", where, model.SubgraphsLength)
    if n_sub < 1:
        raise ModelFileError("the .tflite file has no subgraph", where=where)
    sub = _guard("subgraph 0", where, lambda: model.Subgraphs(0))
    n_buffers = _guard("the buffer list", where, model.BuffersLength)
    buffers = _BufferReader(model, data, n_buffers, where)
    n_tensors = _guard("the tensor list", where, sub.TensorsLength)
    tensors = tuple(_read_tensor(sub, i, buffers, where) for i in range(n_tensors))
    opcodes = _read_opcodes(model, where)
    n_ops = _guard("the operator list", where, sub.OperatorsLength)
    operators = tuple(_read_operator(sub, i, opcodes, n_tensors, where) for i in range(n_ops))
    inputs = _guard("the subgraph inputs", where, lambda: _ints(sub.Inputs, sub.InputsLength()))
    outputs = _guard("the subgraph outputs", where, lambda: _ints(sub.Outputs, sub.OutputsLength()))
    for kind, indices in (("input", inputs), ("output", outputs)):
        for i in indices:
            if not 0 <= i < n_tensors:
                raise ModelFileError(f"the .tflite file is corrupt: subgraph {kind} tensor {i} does not exist "
                                     f"(the subgraph has {n_tensors} tensors)", where=where)
    description = _guard("the model description", where, lambda: _decode("description", model.Description()))
    return Model(where, tensors, operators, inputs, outputs, n_sub, description)


class _BufferReader:
    """Constant buffer bytes by index (inline data, or an offset into the file for large models)."""

    def __init__(self, model, data: bytes, count: int, where: str) -> None:
        self.model, self.data, self.count, self.where = model, data, count, where

    def get(self, index: int, part: str) -> bytes:
        if not 0 <= index < self.count:
            raise ModelFileError(f"the .tflite file is corrupt: {part} refers to buffer {index} "
                                 f"(the file has {self.count})", where=self.where)

        def read() -> bytes:
            buf = self.model.Buffers(index)
            offset, size = int(buf.Offset()), int(buf.Size())
            if offset > 1:
                if offset + size > len(self.data):
                    raise ModelFileError(f"the .tflite file is corrupt: {part} lies outside the file",
                                         where=self.where)
                return self.data[offset : offset + size]
            return b"" if buf.DataIsNone() else buf.DataAsNumpy().tobytes()

        return _guard(part, self.where, read)


def _read_quantization(t, part: str, where: str) -> Quantization | None:
    def read():
        q = t.Quantization()
        if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
            return None
        scales = tuple(float(np.float32(q.Scale(j))) for j in range(q.ScaleLength()))
        zps = tuple(int(q.ZeroPoint(j)) for j in range(q.ZeroPointLength())) or (0,) * len(scales)
        return Quantization(scales, zps, int(q.QuantizedDimension()))

    quant = _guard(part, where, read)
    if quant is None:
        return None
    if len(quant.zero_points) != len(quant.scales):
        raise ModelFileError(f"the .tflite file is corrupt: {part} has {len(quant.scales)} scales but "
                             f"{len(quant.zero_points)} zero points", where=where)
    if not all(math.isfinite(s) and s > 0 for s in quant.scales):
        bad = next(s for s in quant.scales if not (math.isfinite(s) and s > 0))
        raise ModelFileError(f"the .tflite file is corrupt: {part} has scale {bad} (scales are positive and "
                             "finite)", where=where)
    return quant


def _read_tensor(sub, i: int, buffers: _BufferReader, where: str) -> Tensor:
    part = f"tensor {i}"
    t = _guard(part, where, lambda: sub.Tensors(i))
    name = _guard(f"{part} name", where, lambda: _decode("name", t.Name()))
    type_code = _guard(f"{part} type", where, t.Type)
    dtype = TYPE_NAMES.get(type_code)
    if dtype is None:
        raise ModelFileError(f"the .tflite file is corrupt: tensor {i} '{name}' has unknown type {type_code}",
                             where=where)
    shape = _guard(f"{part} '{name}' shape", where, lambda: _ints(t.Shape, t.ShapeLength()))
    if any(d < 0 for d in shape):
        raise ModelFileError(f"the .tflite file is corrupt: tensor {i} '{name}' has shape {list(shape)}",
                             where=where)
    if _guard(f"{part} sparsity", where, lambda: t.Sparsity() is not None):
        raise ModelFileError(f"tensor {i} '{name}' is sparse: sparse tensors are not supported", where=where,
                             hint="convert the model without sparsity")
    quant = _read_quantization(t, f"{part} '{name}' quantisation", where)
    raw = buffers.get(_guard(f"{part} buffer", where, t.Buffer), f"{part} '{name}' buffer")
    data = _const_values(raw, dtype, shape, i, name, where) if raw else None
    variable = bool(_guard(f"{part} flags", where, t.IsVariable))
    return Tensor(i, name, dtype, shape, quant, data, variable)


def _const_values(raw: bytes, dtype: str, shape: tuple[int, ...], i: int, name: str, where: str) -> np.ndarray:
    np_type = NUMPY_TYPES.get(dtype)
    if np_type is None:
        raise ModelFileError(f"tensor {i} '{name}' holds constants of type {dtype}, which is not supported",
                             where=where)
    count = int(np.prod(shape, dtype=np.int64))
    expect = count * np.dtype(np_type).itemsize
    if len(raw) != expect:
        raise ModelFileError(f"the .tflite file is corrupt: tensor {i} '{name}' of shape {list(shape)} {dtype} "
                             f"needs {expect} bytes but its buffer has {len(raw)}", where=where)
    return np.frombuffer(raw, np_type).reshape(shape).copy()


def _read_opcodes(model, where: str) -> tuple[tuple[str, int], ...]:
    def read_one(j: int) -> tuple[str, int]:
        code = model.OperatorCodes(j)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        if builtin == tflite.BuiltinOperator.CUSTOM:
            return f"CUSTOM({_decode('custom', code.CustomCode())})", int(code.Version())
        return OP_NAMES.get(builtin, f"BUILTIN_{builtin}"), int(code.Version())

    count = _guard("the operator code list", where, model.OperatorCodesLength)
    return tuple(_guard(f"operator code {j}", where, lambda j=j: read_one(j)) for j in range(count))


def _read_operator(sub, i: int, opcodes, n_tensors: int, where: str) -> Operator:
    part = f"operator {i}"
    op = _guard(part, where, lambda: sub.Operators(i))
    code = _guard(f"{part} opcode", where, op.OpcodeIndex)
    if not 0 <= code < len(opcodes):
        raise ModelFileError(f"the .tflite file is corrupt: operator #{i} has opcode index {code} "
                             f"(the file has {len(opcodes)})", where=where)
    name, version = opcodes[code]
    inputs = _guard(f"{part} ({name}) inputs", where, lambda: _ints(op.Inputs, op.InputsLength()))
    outputs = _guard(f"{part} ({name}) outputs", where, lambda: _ints(op.Outputs, op.OutputsLength()))
    for t in (*inputs, *outputs):
        if not -1 <= t < n_tensors:
            raise ModelFileError(f"the .tflite file is corrupt: operator #{i} {name} refers to tensor {t} "
                                 f"(the subgraph has {n_tensors})", where=where)
    options = _guard(f"{part} ({name}) options", where, lambda: _read_options(op))
    return Operator(i, name, version, inputs, outputs, options)


def _read_options(op) -> dict:
    """Every field of the operator's builtin options table, by name (enums as their names)."""
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return {}
    cls = getattr(tflite, _OPTION_CLASSES.get(kind, ""), None)
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    out: dict = {}
    for attr in dir(cls):
        if attr.startswith(("_", "GetRootAs", "Init")) or attr.endswith(("BufferHasIdentifier", "IsNone", "Length",
                                                                         "AsNumpy")):
            continue
        if hasattr(cls, f"{attr}Length"):  # a vector field
            length = getattr(obj, f"{attr}Length")()
            out[attr] = tuple(int(getattr(obj, attr)(j)) for j in range(length))
            continue
        value = getattr(obj, attr)()
        out[attr] = _ENUM_FIELDS[attr].get(value, value) if attr in _ENUM_FIELDS else value
    return out
