"""Post-training quantisation of a float Relax model (TFLite int8 rules).

``quantize_model`` = FoldBatchNorm -> calibrate on the given batches -> QuantizePTQ.
The result is the same QDQ form the TFLite importer produces.
"""

from __future__ import annotations

import numpy as np
import tvm

from ..passes.fold_batchnorm import fold_batchnorm
from ..passes.quantize_ptq import quantize_ptq
from .calibrate import calibrate


def quantize_model(float_mod: tvm.IRModule, calib_inputs: list[np.ndarray]) -> tvm.IRModule:
    """Quantise ``float_mod`` (NCHW float input) into a QDQ module with an int8 NHWC input."""
    folded = fold_batchnorm(float_mod)
    ranges = calibrate(folded, calib_inputs)
    return quantize_ptq(folded, ranges)
