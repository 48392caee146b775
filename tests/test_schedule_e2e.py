"""A branching network: the chosen execution order lowers the arena and keeps results bit-exact."""

from __future__ import annotations

import numpy as np
import torch

from mcunet_tvm import toolchain
from mcunet_tvm.frontend.netconfig import randomize
from mcunet_tvm.frontend.torch_import import import_torch
from mcunet_tvm.frontend.zoo import smooth_images
from mcunet_tvm.pipeline import compile_relax
from mcunet_tvm.quant.ptq import quantize_model
from mcunet_tvm.reference.graph_ref import run_reference
from mcunet_tvm.targets import get_target


class TwoBranches(torch.nn.Module):
    """Both wide tensors are produced before either is reduced: a poor order as written."""

    def __init__(self) -> None:
        super().__init__()
        self.a1, self.b1 = torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.Conv2d(3, 32, 3, padding=1)
        self.a2, self.b2 = torch.nn.Conv2d(32, 4, 1), torch.nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1, b1 = self.a1(x), self.b1(x)
        return self.a2(a1) + self.b2(b1)


def test_reordering_lowers_arena_and_stays_exact(tmp_path) -> None:
    model = randomize(TwoBranches())
    qdq = quantize_model(import_torch(model, (1, 3, 16, 16)), smooth_images((1, 3, 16, 16), 8, 0))
    as_written = compile_relax(qdq, mcpu=None, reorder=False)
    best = compile_relax(qdq, mcpu=None, reorder=True)
    assert best.plan.arena_bytes < as_written.plan.arena_bytes
    host = get_target("host")
    sources = best.write(tmp_path)
    exe = toolchain.link(host, toolchain.compile_objects(host, sources, [tmp_path], tmp_path / "obj"),
                         tmp_path / "model")
    x = np.random.default_rng(0).integers(-128, 128, (1, 16, 16, 3), dtype=np.int8)
    out = toolchain.run(host, exe, x.tobytes(), best.program.nbytes(best.program.output)).output
    assert out == run_reference(as_written.program, x).tobytes()
