"""The TinyNAS search space: MobileNetV2-style MBConv stages, scaled by width and resolution.

A space is a (width multiplier, input resolution) pair. Inside it an
architecture picks, per stage, a depth, and per block a kernel size
{3, 5, 7} and an expand ratio {3, 4, 6}. Every architecture converts to an
MCUNet/ProxylessNAS JSON net config, the format the compiler's frontend and
the NAS's memory model both read.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from ..frontend.zoo import make_divisible

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
#: (base output channels, stride of the first block, depths allowed) per stage
STAGES = (
    (24, 2, (2, 3, 4)),
    (40, 2, (2, 3, 4)),
    (80, 2, (2, 3, 4)),
    (96, 1, (2, 3, 4)),
    (192, 2, (2, 3, 4)),
    (320, 1, (1,)),
)
MAX_BLOCKS = sum(max(d) for _, _, d in STAGES)
WIDTHS = (0.3, 0.4, 0.5, 0.6, 0.75, 1.0)


@dataclass(frozen=True)
class Space:
    """One candidate search space: every architecture at this width and resolution."""

    width: float
    resolution: int

    def channels(self, base: int) -> int:
        return make_divisible(base * self.width)

    def sample(self, rng: random.Random) -> Arch:
        depths = tuple(rng.choice(d) for _, _, d in STAGES)
        return Arch(self.width, self.resolution, depths,
                    tuple(rng.choice(KERNELS) for _ in range(MAX_BLOCKS)),
                    tuple(rng.choice(EXPANDS) for _ in range(MAX_BLOCKS)))

    def largest(self) -> Arch:
        return Arch(self.width, self.resolution, tuple(max(d) for _, _, d in STAGES),
                    (max(KERNELS),) * MAX_BLOCKS, (max(EXPANDS),) * MAX_BLOCKS)

    def covering(self) -> list[Arch]:
        """Architectures holding every layer shape of the space: all stages at full depth, one per
        (kernel, expand) pair (layer shapes depend on the stage, the block's place in it, k and e only)."""
        depths = tuple(max(d) for _, _, d in STAGES)
        return [Arch(self.width, self.resolution, depths, (k,) * MAX_BLOCKS, (e,) * MAX_BLOCKS)
                for k in KERNELS for e in EXPANDS]

    def smallest(self) -> Arch:
        return Arch(self.width, self.resolution, tuple(min(d) for _, _, d in STAGES),
                    (min(KERNELS),) * MAX_BLOCKS, (min(EXPANDS),) * MAX_BLOCKS)


@dataclass(frozen=True)
class Arch:
    """One subnet: depths per stage, kernel and expand ratio per block slot (unused slots ignored)."""

    width: float
    resolution: int
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]

    @property
    def space(self) -> Space:
        return Space(self.width, self.resolution)

    def active_blocks(self) -> list[tuple[int, int, int]]:
        """(stage, slot, block index in its stage) of every block that runs."""
        out, slot = [], 0
        for stage, (_, _, allowed) in enumerate(STAGES):
            for i in range(max(allowed)):
                if i < self.depths[stage]:
                    out.append((stage, slot, i))
                slot += 1
        return out

    def canonical(self) -> Arch:
        """Unused slots set to their defaults, so equal networks compare equal."""
        active = {slot for _, slot, _ in self.active_blocks()}
        kernels = tuple(k if s in active else KERNELS[0] for s, k in enumerate(self.kernels))
        expands = tuple(e if s in active else EXPANDS[0] for s, e in enumerate(self.expands))
        return Arch(self.width, self.resolution, self.depths, kernels, expands)

    def mutate(self, rng: random.Random, prob: float = 0.15) -> Arch:
        depths = tuple(rng.choice(d) if rng.random() < prob else v for v, (_, _, d) in zip(self.depths, STAGES,
                                                                                          strict=True))
        kernels = tuple(rng.choice(KERNELS) if rng.random() < prob else k for k in self.kernels)
        expands = tuple(rng.choice(EXPANDS) if rng.random() < prob else e for e in self.expands)
        return Arch(self.width, self.resolution, depths, kernels, expands).canonical()

    def crossover(self, other: Arch, rng: random.Random) -> Arch:
        pick = lambda a, b: tuple(rng.choice((x, y)) for x, y in zip(a, b, strict=True))  # noqa: E731
        return Arch(self.width, self.resolution, pick(self.depths, other.depths), pick(self.kernels, other.kernels),
                    pick(self.expands, other.expands)).canonical()

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> Arch:
        return Arch(float(data["width"]), int(data["resolution"]), tuple(data["depths"]), tuple(data["kernels"]),
                    tuple(data["expands"]))


def stem_channels(width: float) -> tuple[int, int]:
    """Output channels of the first conv and of the first (expand-1) block."""
    return make_divisible(32 * width), make_divisible(16 * width)


def mix_channels(width: float) -> int:
    return make_divisible(1280 * width)


def block_config(cin: int, cout: int, k: int, stride: int, expand: float) -> dict:
    """One MobileInvertedResidualBlock of the net-config format (shortcut when shapes allow)."""
    conv = {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout, "kernel_size": k,
            "stride": stride, "expand_ratio": expand, "mid_channels": round(cin * expand) if expand != 1 else cin,
            "act_func": "relu6"}
    shortcut = ({"name": "IdentityLayer", "in_channels": cin, "out_channels": cout}
                if stride == 1 and cin == cout else None)
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv, "shortcut": shortcut}


def to_netconfig(arch: Arch, classes: int) -> dict:
    """The MCUNet/ProxylessNAS JSON net config of ``arch``."""
    space = arch.space
    first, first_block = stem_channels(arch.width)
    blocks = [block_config(first, first_block, 3, 1, 1)]
    cin = first_block
    for stage, slot, i in arch.active_blocks():
        base, stride, _ = STAGES[stage]
        cout = space.channels(base)
        blocks.append(block_config(cin, cout, arch.kernels[slot], stride if i == 0 else 1, arch.expands[slot]))
        cin = cout
    mix = mix_channels(arch.width)
    return {
        "name": "ProxylessNASNets",
        "resolution": arch.resolution,
        "first_conv": {"name": "ConvLayer", "in_channels": 3, "out_channels": first, "kernel_size": 3, "stride": 2,
                       "act_func": "relu6", "use_bn": True},
        "blocks": blocks,
        "feature_mix_layer": {"name": "ConvLayer", "in_channels": cin, "out_channels": mix, "kernel_size": 1,
                              "stride": 1, "act_func": "relu6", "use_bn": True},
        "classifier": {"name": "LinearLayer", "in_features": mix, "out_features": classes, "bias": True},
    }
