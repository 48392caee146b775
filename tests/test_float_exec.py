"""The numpy float executor used by calibration agrees with TVM's compiled graph (float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mcunet_tvm.frontend.torch_import import import_torch
from mcunet_tvm.frontend.zoo import get_model, smooth_images
from mcunet_tvm.passes.fold_batchnorm import fold_batchnorm
from mcunet_tvm.quant import calibrate as cal


class _Mixed(nn.Module):
    """Every operator the executor knows: strided/dilated/grouped convolutions, pools (ceil mode,
    padding excluded from the average), explicit padding, a linear layer and softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=8)
        self.group = nn.Conv2d(16, 12, (1, 3), padding=(0, 1), groups=4)
        self.max = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))
        self.avg = nn.AvgPool2d(2, padding=1, count_include_pad=False)
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(self.stem(x), 0, 6)
        x = torch.relu(self.dw(x))
        x = self.avg(self.pad(self.max(self.group(x))))
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return torch.softmax(self.fc(x), dim=-1)


def _close(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name, (lo, hi) in b.items():
        tol = 1e-5 * max(1e-3, hi - lo)
        assert abs(a[name][0] - lo) <= tol and abs(a[name][1] - hi) <= tol, name


@pytest.mark.parametrize("name", ["demo-cnn", "mcunet-vww-like"])
def test_zoo_ranges_match_tvm(name: str) -> None:
    zm = get_model(name, calib_count=5)
    n, h, w, c = zm.input_shape_nhwc
    mod = fold_batchnorm(import_torch(zm.torch_module, (n, c, h, w)))
    batches = zm.calib_fn()
    numpy_ranges = cal._numpy_ranges(mod, batches)
    assert numpy_ranges is not None
    _close(numpy_ranges, cal._tvm_ranges(mod, batches))


def test_every_known_operator_matches_tvm() -> None:
    torch.manual_seed(0)
    mod = fold_batchnorm(import_torch(_Mixed().eval(), (1, 3, 23, 19)))
    batches = smooth_images((1, 3, 23, 19), 3, seed=1)
    numpy_ranges = cal._numpy_ranges(mod, batches)
    assert numpy_ranges is not None
    _close(numpy_ranges, cal._tvm_ranges(mod, batches))


class _Gelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x)


def test_unknown_operator_runs_through_tvm() -> None:
    mod = import_torch(_Gelu().eval(), (1, 2, 4, 4))
    batches = [np.linspace(-3, 3, 32, dtype=np.float32).reshape(1, 2, 4, 4)]
    assert cal._numpy_ranges(mod, batches) is None
    ranges = cal.calibrate(mod, batches)
    lo, hi = next(v for k, v in ranges.items() if k != mod["main"].params[0].name)
    assert lo == pytest.approx(float(torch.nn.functional.gelu(torch.tensor(-0.7)).min()), abs=0.2)
    assert hi == pytest.approx(3 * 0.99865, rel=1e-3)
