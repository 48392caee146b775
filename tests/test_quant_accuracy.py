"""Post-training quantisation keeps the float model's decisions (TFLite int8 rules)."""

from __future__ import annotations

import numpy as np
import torch

from mcunet_tvm.frontend.torch_import import import_torch
from mcunet_tvm.frontend.zoo import get_model, smooth_images
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant.ptq import quantize_model
from mcunet_tvm.reference.graph_ref import run_reference


def test_int8_top1_agrees_with_float(capsys) -> None:
    zm = get_model("demo-cnn")
    n, h, w, c = zm.input_shape_nhwc
    qmod = quantize_model(import_torch(zm.torch_module, (n, c, h, w)), zm.calib_fn())
    prog = compile_relax(qmod, mcpu=None).program
    scale, zp = prog.input_qparams
    last = prog.calls[-1].op
    inputs = smooth_images((n, c, h, w), 200, seed=1)  # the calibration distribution, other samples
    agree = 0
    for x in inputs:
        with torch.no_grad():
            ref = zm.torch_module(torch.from_numpy(x)).numpy()
        xq = np.clip(np.round(x.transpose(0, 2, 3, 1) / scale) + zp, -128, 127).astype(np.int8)
        yq = run_reference(prog, xq).astype(np.float32)
        y = (yq - last.out_zp) * last.out_scale
        agree += int(ref.argmax() == y.argmax())
    rate = agree / len(inputs)
    with capsys.disabled():
        print(f"\ndemo-cnn int8 vs float top-1 agreement: {agree}/{len(inputs)} = {rate:.1%}")
    assert rate >= 0.98
