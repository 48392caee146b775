"""Import a full-integer int8 ``.tflite`` model into Relax (QDQ form).

The file is checked first, so that a user gets a precise error rather than a
failure deep inside TVM: it must parse, have one int8 input and one int8
output, and use only operators we can lower (each offender is reported with
its operator index and output tensor name). The import itself is TVM's
``relax.frontend.tflite.from_tflite``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tflite
import tvm
from tvm.relax.frontend.tflite import from_tflite

from ..errors import ModelFileError, UnsupportedModelError

SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "SOFTMAX",
    "RESHAPE",
    "QUANTIZE",
)
_FLOAT_HINT = (
    "convert it with full-integer quantisation: converter.optimizations = [tf.lite.Optimize.DEFAULT], "
    "converter.representative_dataset = ..., converter.target_spec.supported_ops = "
    "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], converter.inference_input_type = tf.int8, "
    "converter.inference_output_type = tf.int8"
)
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _op_name(model: tflite.Model, op: tflite.Operator) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM({code.CustomCode().decode(errors='replace')})"
    return _OP_NAMES.get(builtin, f"builtin#{builtin}")


def _tensor(sub: tflite.SubGraph, index: int) -> tuple[str, str]:
    t = sub.Tensors(index)
    return t.Name().decode(errors="replace"), _TYPE_NAMES.get(t.Type(), str(t.Type()))


def read_tflite(path: Path) -> tflite.Model:
    """Parse ``path``; raise :class:`ModelFileError` if it is not a readable .tflite file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file: {exc.strerror}", where=str(path)) from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(
            "not a TensorFlow Lite flatbuffer (missing the 'TFL3' identifier)",
            where=str(path),
            hint="pass a .tflite file written by the TF Lite converter",
        )
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraphs")
        sub = model.Subgraphs(0)
        for i in range(sub.OperatorsLength()):
            _op_name(model, sub.Operators(i))
        for i in range(sub.TensorsLength()):
            _tensor(sub, i)
    except Exception as exc:  # the flatbuffer accessors raise anything on corrupt data
        raise ModelFileError(
            f"the .tflite file is corrupt or truncated ({type(exc).__name__})", where=str(path)
        ) from None
    return model


def check_full_integer(model: tflite.Model, path: Path) -> None:
    """Raise :class:`UnsupportedModelError` unless the model is int8 end to end with supported ops."""
    sub = model.Subgraphs(0)
    if model.SubgraphsLength() != 1 or sub.InputsLength() != 1 or sub.OutputsLength() != 1:
        raise UnsupportedModelError(
            "only models with one subgraph, one input and one output are supported", where=str(path)
        )
    types = {_tensor(sub, i)[1] for i in range(sub.TensorsLength())}
    if _tensor(sub, sub.Inputs(0))[1] == "FLOAT32" and "INT8" in types:
        raise UnsupportedModelError(
            "the model is weights-only (dynamic-range) quantised: activations are float32",
            where=str(path),
            hint=_FLOAT_HINT,
        )
    for kind, index in (("input", sub.Inputs(0)), ("output", sub.Outputs(0))):
        name, dtype = _tensor(sub, index)
        if dtype != "INT8":
            raise UnsupportedModelError(
                f"the model {kind} '{name}' is {dtype}, not INT8: this is not a full-integer model",
                where=str(path),
                hint=_FLOAT_HINT,
            )
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        name = _op_name(model, op)
        out_name = _tensor(sub, op.Outputs(0))[0] if op.OutputsLength() else "?"
        where = f"{path}: operator #{i} {name} (output tensor '{out_name}')"
        if name == "DEQUANTIZE":
            raise UnsupportedModelError(
                "the model dequantises weights at run time (float or dynamic-range quantisation)",
                where=where,
                hint=_FLOAT_HINT,
            )
        if name not in SUPPORTED_OPS:
            raise UnsupportedModelError(
                f"operator {name} is not supported",
                where=where,
                hint="supported TFLite operators: " + ", ".join(SUPPORTED_OPS),
            )
        for j in range(op.InputsLength()):
            idx = op.Inputs(j)
            if idx < 0:
                continue
            tname, dtype = _tensor(sub, idx)
            if dtype not in ("INT8", "INT32"):
                raise UnsupportedModelError(
                    f"tensor '{tname}' is {dtype}: the model is not fully int8-quantised",
                    where=where,
                    hint=_FLOAT_HINT,
                )


def import_tflite(path: str | Path) -> tuple[tvm.IRModule, tuple[int, ...]]:
    """Check and import ``path``; returns the QDQ Relax module and the NHWC input shape."""
    path = Path(path)
    model = read_tflite(path)
    check_full_integer(model, path)
    sub = model.Subgraphs(0)
    shape = tuple(int(d) for d in np.asarray(sub.Tensors(sub.Inputs(0)).ShapeAsNumpy()).reshape(-1))
    try:
        mod = from_tflite(model)
    except Exception as exc:
        raise UnsupportedModelError(
            f"TVM's TFLite importer rejected the model: {str(exc).strip().splitlines()[-1]}",
            where=str(path),
        ) from None
    mod = mod[0] if isinstance(mod, tuple) else mod
    return mod, shape
