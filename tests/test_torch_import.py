"""PyTorch import without the decomposition pass (frontend/torch_import.py).

A program of ``DIRECT_OPS`` only is translated as exported; the module must be the one the
decomposed import gives (TVM's default), structurally: every zoo architecture and a module
with the other allowed operators (one zoo model per family in CI). Programs with any other operator, or a batch norm in
training, still take the decomposed path.
"""

from __future__ import annotations

import pytest
import torch
import tvm
from tvm.relax.frontend.torch import from_exported_program

from mcunet_tvm.frontend.torch_import import _direct, import_exported
from mcunet_tvm.frontend.zoo import get_model, list_models


class _Others(torch.nn.Module):
    """ReLU, a mean, a linear layer and a batch norm without affine parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = torch.nn.BatchNorm2d(8, affine=False)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


class _Pooled(torch.nn.Module):
    """Adaptive average pooling and flatten: not direct (the decomposition rewrites them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(torch.sigmoid(x), 1), 1)


def _export(module: torch.nn.Module, shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    module = module.eval()
    for buffer in module.buffers():  # non-trivial running statistics
        if buffer.is_floating_point():
            buffer.data.uniform_(0.5, 1.5)
    with torch.no_grad():
        return torch.export.export(module, (torch.zeros(shape),))


#: one of each zoo family (they share ``zoo.build_from_config``), and the other allowed operators
CASES = ("demo-cnn", "mbv2-w0.35-r96", "mcunet-in-like", "others")


def test_cases_are_zoo_models() -> None:
    assert set(CASES) - {"others"} <= set(list_models())


@pytest.mark.parametrize("name", CASES)
def test_direct_import_equals_the_decomposed_one(name: str) -> None:
    if name == "others":
        program = _export(_Others(), (1, 3, 8, 8))
    else:
        zoo = get_model(name)
        n, h, w, c = zoo.input_shape_nhwc
        program = _export(zoo.torch_module, (n, c, h, w))
    assert _direct(program)
    tvm.ir.assert_structural_equal(import_exported(program), from_exported_program(program))


def test_other_programs_are_decomposed_first() -> None:
    pooled = _export(_Pooled(), (1, 4, 6, 6))
    assert not _direct(pooled)
    tvm.ir.assert_structural_equal(import_exported(pooled), from_exported_program(pooled))
    training = torch.nn.BatchNorm2d(3).train()
    with torch.no_grad():
        program = torch.export.export(training, (torch.zeros((2, 3, 4, 4)),))
    assert not _direct(program)
