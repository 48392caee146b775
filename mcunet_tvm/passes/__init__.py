"""mcunet-tvm's passes, each a ``tvm.transform.Pass`` usable in your own TVM pipelines.

Before lowering (float and QDQ Relax):

- :func:`FoldBatchNorm` — fold inference batch-norm into the preceding conv2d.
- :func:`QuantizePTQ` — float NCHW graph + calibrated ranges → TFLite-style QDQ graph in NHWC.
- :func:`LowerQDQToInteger` — QDQ patterns → ``call_tir`` of integer TIR kernels (the integer IR,
  :mod:`mcunet_tvm.ir`).

On the integer IR, in the order ``mcunet_tvm.pipeline`` runs them:

- :func:`PatchInference` — run the first stage patch by patch (MCUNetV2).
- :func:`ZeroCopyViews` — contiguous concatenations and slices become views: no copy.
- :func:`InplaceDepthwise` — depthwise convs whose input dies write over it.
- :func:`UseSimdKernels` — conv2d/dense kernels become Cortex-M SIMD (or Helium) micro-kernels.
- :func:`UseSharedKernels` — kernels take layer sizes at run time; layers share their code.
- :func:`ReorderForPeak` — the topological order with the lowest peak of live bytes.
- :func:`ShrinkPeakScratch` — the kernel at the arena's peak takes a smaller-scratch form (int8 ring, unstaged SIMD).

and one TIR pass, run on the lowered kernels before they are rendered as C (``codegen``):

- :func:`RemoveUnusedBinds` — delete side-effect-free bindings nothing reads.
"""

from .fold_batchnorm import FoldBatchNorm
from .inplace_depthwise import InplaceDepthwise
from .lower_qdq import LowerQDQToInteger
from .patch_inference import PatchInference
from .peak_scratch import ShrinkPeakScratch
from .quantize_ptq import QuantizePTQ
from .remove_unused_binds import RemoveUnusedBinds
from .reorder import ReorderForPeak
from .shared_kernels import UseSharedKernels
from .simd_kernels import UseSimdKernels
from .zero_copy_views import ZeroCopyViews

__all__ = [
    "FoldBatchNorm",
    "InplaceDepthwise",
    "LowerQDQToInteger",
    "PatchInference",
    "QuantizePTQ",
    "RemoveUnusedBinds",
    "ReorderForPeak",
    "ShrinkPeakScratch",
    "UseSharedKernels",
    "UseSimdKernels",
    "ZeroCopyViews",
]
