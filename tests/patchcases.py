"""Random chains of spatial ops (conv, depthwise, pooling, residual add) ending in a global mean."""

from __future__ import annotations

import numpy as np

from mcunet_tvm.aot.program import KernelCall, Program
from mcunet_tvm.ops import Mean

from opcases import add_case, conv_case, pool_case


def random_chain(seed: int) -> Program:
    """A chain of 2-6 spatial ops on an uneven image, then a mean (the part patches never cover)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(9, 22)), int(rng.integers(9, 22)), int(rng.integers(2, 6))
    prog = Program(input="input")
    prog.shapes["input"] = (1, h, w, c)
    cur = "input"

    def emit(op, consts, inputs) -> str:
        name = f"t{len(prog.calls)}"
        prog.calls.append(KernelCall(f"k{len(prog.calls)}_{op.kind}", op, tuple(inputs), tuple(consts), name))
        prog.shapes[name] = op.out_shape
        return name

    for _ in range(int(rng.integers(2, 7))):
        _, h, w, c = prog.shapes[cur]
        kind = rng.choice(["conv", "dw", "pool", "residual"])
        if kind == "conv" or (h < 4 or w < 4):
            k, s = int(rng.choice([1, 3, 5, 7])), int(rng.choice([1, 2]))
            pad = "valid" if (rng.random() < 0.2 and min(h, w) > k + 2) else "same"
            op, consts = conv_case(rng, h, w, c, int(rng.integers(2, 9)), k, s, padding=pad)
            cur = emit(op, consts, [cur])
        elif kind == "dw":
            k, s = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
            op, consts = conv_case(rng, h, w, c, c, k, s, depthwise=True)
            cur = emit(op, consts, [cur])
        elif kind == "pool":
            k, s = int(rng.choice([2, 3])), int(rng.choice([1, 2]))
            pad = int(rng.integers(0, 2)) if k == 3 else 0
            op, consts = pool_case(rng, h, w, c, k, s, str(rng.choice(["avg", "max"])), pad=pad)
            cur = emit(op, consts, [cur])
        else:  # inverted residual: expand, depthwise, project, add
            e = int(rng.integers(c + 1, 3 * c + 2))
            op1, k1 = conv_case(rng, h, w, c, e, 1, 1)
            a = emit(op1, k1, [cur])
            op2, k2 = conv_case(rng, h, w, e, e, int(rng.choice([3, 5])), 1, depthwise=True)
            b = emit(op2, k2, [a])
            op3, k3 = conv_case(rng, h, w, e, c, 1, 1)
            d = emit(op3, k3, [b])
            op4, _ = add_case(rng, (1, h, w, c))
            cur = emit(op4, [], [cur, d])
    _, h, w, c = prog.shapes[cur]
    mean = Mean((1, h, w, c), (1, c), in_zp=3, out_zp=-2, multiplier=1 << 30, shift=-int(np.ceil(np.log2(h * w))))
    prog.output = emit(mean, [], [cur])
    return prog


def random_grid(seed: int, prog: Program) -> tuple[int, tuple[int, int]]:
    """The last spatial step as split and a grid from 1x1 to 4x4 that fits the split tensor."""
    rng = np.random.default_rng(seed + 1000)
    split = len(prog.calls) - 2
    _, h, w, _ = prog.shapes[prog.calls[split].output]
    return split, (int(rng.integers(1, min(4, h) + 1)), int(rng.integers(1, min(4, w) + 1)))
