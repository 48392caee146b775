"""Our TFLite frontend: a checked flatbuffer reader and an importer into the integer IR."""

from .importer import CONVERTERS, SUPPORTED_OPS, import_tflite
from .reader import Model, Operator, Tensor, read_model

__all__ = ["CONVERTERS", "SUPPORTED_OPS", "Model", "Operator", "Tensor", "import_tflite", "read_model"]
