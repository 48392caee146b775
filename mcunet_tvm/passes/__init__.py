"""mcunet-tvm's passes, imported as ``mcunet_tvm.passes``.

Each is a ``tvm.transform.Pass`` usable in your own TVM pipelines:

- :func:`FoldBatchNorm` — fold inference batch-norm into the preceding conv2d.
- :func:`QuantizePTQ` — float NCHW graph + calibrated ranges → TFLite-style QDQ graph in NHWC.
- :func:`LowerQDQToInteger` — QDQ patterns → ``call_tir`` of integer TIR kernels.
- :func:`InplaceDepthwise` — depthwise convs whose input dies write over it.
- :func:`PatchInference` — run the first stage patch by patch (MCUNetV2).
- :func:`UseSimdKernels` — conv2d/dense kernels become Cortex-M SIMD micro-kernels.
- :func:`UseSharedKernels` — kernels take layer sizes at run time; layers share their code.

and one TIR pass, run on the lowered kernels before they are rendered as C:

- :func:`RemoveUnusedBinds` — delete side-effect-free bindings nothing reads.
"""

from .fold_batchnorm import FoldBatchNorm
from .inplace_depthwise import InplaceDepthwise
from .lower_qdq import LowerQDQToInteger
from .patch_inference import PatchInference
from .quantize_ptq import QuantizePTQ
from .remove_unused_binds import RemoveUnusedBinds
from .shared_kernels import UseSharedKernels
from .simd_kernels import UseSimdKernels

__all__ = [
    "FoldBatchNorm",
    "InplaceDepthwise",
    "LowerQDQToInteger",
    "PatchInference",
    "QuantizePTQ",
    "RemoveUnusedBinds",
    "UseSharedKernels",
    "UseSimdKernels",
]
