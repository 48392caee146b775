"""Random chains of spatial ops (conv, depthwise, pooling, residual add; with ``elementwise``: PRELU,
binary ops by a per-channel constant and of two branches) ending in a global mean."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from mcunet_tvm.ir import PatchInfo, Program, new_main, patch_of, program_of
from mcunet_tvm.ops import Mean
from mcunet_tvm.passes.patch_inference import patch_inference

from opcases import add_case, binary_case, conv_case, emit_op, pool_case, prelu_case


def random_chain(seed: int, elementwise: bool = False) -> tvm.IRModule:
    """A chain of 2-6 spatial ops on an uneven image, then a mean (the part patches never cover)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(9, 22)), int(rng.integers(9, 22)), int(rng.integers(2, 6))
    bb = relax.BlockBuilder()
    x = relax.Var("input", relax.TensorType((1, h, w, c), "int8"))
    with new_main(bb, x, {}) as result:
        result(_Chain(bb, x).grow(rng, elementwise))
    return bb.get()


class _Chain:
    """Emits the ops of a random chain, naming kernels ``k<n>_<kind>``."""

    def __init__(self, bb: relax.BlockBuilder, x: relax.Var) -> None:
        self.bb, self.count = bb, 0
        self.cur = x

    def shape(self, value) -> tuple[int, ...]:
        return tuple(int(d) for d in value.ty.shape)

    def emit(self, op, consts, inputs) -> relax.Expr:
        out = emit_op(self.bb, f"k{self.count}_{op.kind}", op, inputs, consts)
        self.count += 1
        return out

    def grow(self, rng: np.random.Generator, elementwise: bool = False) -> relax.Expr:
        kinds = ["conv", "dw", "pool", "residual"] + ["prelu", "by_channel", "branches"] * elementwise
        for _ in range(int(rng.integers(2, 7))):
            _, h, w, c = self.shape(self.cur)
            kind = rng.choice(kinds)
            if kind == "conv" or (h < 4 or w < 4):
                k, s = int(rng.choice([1, 3, 5, 7])), int(rng.choice([1, 2]))
                pad = "valid" if (rng.random() < 0.2 and min(h, w) > k + 2) else "same"
                op, consts = conv_case(rng, h, w, c, int(rng.integers(2, 9)), k, s, padding=pad)
                self.cur = self.emit(op, consts, [self.cur])
            elif kind == "dw":
                k, s = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
                op, consts = conv_case(rng, h, w, c, c, k, s, depthwise=True)
                self.cur = self.emit(op, consts, [self.cur])
            elif kind == "pool":
                k, s = int(rng.choice([2, 3])), int(rng.choice([1, 2]))
                pad = int(rng.integers(0, 2)) if k == 3 else 0
                op, consts = pool_case(rng, h, w, c, k, s, str(rng.choice(["avg", "max"])), pad=pad)
                self.cur = self.emit(op, consts, [self.cur])
            elif kind == "prelu":
                op, consts = prelu_case(rng, (1, h, w, c), (1, 1, c) if rng.random() < 0.5 else (1,))
                self.cur = self.emit(op, consts, [self.cur])
            elif kind == "by_channel":  # a constant per channel, on either side
                function = str(rng.choice(["add", "sub", "mul", "maximum", "minimum"]))
                side = int(rng.integers(0, 2))
                shapes = [(1, h, w, c), (c,) if rng.random() < 0.5 else (1, 1, 1, c)]
                op, consts = binary_case(rng, function, *(shapes[::-1] if side == 0 else shapes), const_operand=side)
                self.cur = self.emit(op, consts, [self.cur])
            elif kind == "branches":  # two convolutions of the same tensor, combined element-wise
                op1, k1 = conv_case(rng, h, w, c, c, 3, 1)
                op2, k2 = conv_case(rng, h, w, c, c, 1, 1)
                a, b = self.emit(op1, k1, [self.cur]), self.emit(op2, k2, [self.cur])
                op, _ = binary_case(rng, str(rng.choice(["sub", "mul", "maximum"])), (1, h, w, c), (1, h, w, c))
                self.cur = self.emit(op, [], [a, b])
            else:  # inverted residual: expand, depthwise, project, add
                e = int(rng.integers(c + 1, 3 * c + 2))
                op1, k1 = conv_case(rng, h, w, c, e, 1, 1)
                a = self.emit(op1, k1, [self.cur])
                op2, k2 = conv_case(rng, h, w, e, e, int(rng.choice([3, 5])), 1, depthwise=True)
                b = self.emit(op2, k2, [a])
                op3, k3 = conv_case(rng, h, w, e, c, 1, 1)
                d = self.emit(op3, k3, [b])
                op4, _ = add_case(rng, (1, h, w, c))
                self.cur = self.emit(op4, [], [self.cur, d])
        _, h, w, c = self.shape(self.cur)
        mean = Mean((1, h, w, c), (1, c), in_zp=3, out_zp=-2, multiplier=1 << 30,
                    shift=-int(np.ceil(np.log2(h * w))))
        return self.emit(mean, [], [self.cur])


def patch_program(mod: tvm.IRModule, split: int, grid: tuple[int, int],
                  stream_input: bool = False) -> tuple[Program, PatchInfo]:
    """The view of ``mod`` patched by ``PatchInference``, and the split it records."""
    patched = patch_inference(mod, split, grid, stream_input)
    return program_of(patched), patch_of(patched)


def random_grid(seed: int, mod: tvm.IRModule) -> tuple[int, tuple[int, int]]:
    """The last spatial step as split and a grid from 1x1 to 4x4 that fits the split tensor."""
    prog = program_of(mod)
    rng = np.random.default_rng(seed + 1000)
    split = len(prog.calls) - 2
    _, h, w, _ = prog.shapes[prog.calls[split].output]
    return split, (int(rng.integers(1, min(4, h) + 1)), int(rng.integers(1, min(4, w) + 1)))
