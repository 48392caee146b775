"""The one-shot supernet: every architecture of a space shares one set of weights (elastic kernel,
expand ratio and depth, as in once-for-all / TinyNAS).

Each block slot holds the largest variant: a 7x7 depthwise kernel (a 3x3 or
5x5 subnet uses its centre) and ``6 x cin`` hidden channels (a subnet with
expand ratio e uses the first ``round(e x cin)``, in the expand conv, its
BatchNorm, the depthwise conv and the project conv alike). A stage of depth d
runs its first d blocks. :func:`extract_subnet` copies those slices into the
plain network the compiler reads (``frontend.netconfig.ProxylessNet``), so the
extracted subnet computes exactly what the supernet computes for that
architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from torch import nn

from ..frontend.netconfig import ConvBNAct, MBConv, ProxylessNet
from .space import EXPANDS, KERNELS, STAGES, Arch, Space, block_config, mix_channels, stem_channels, to_netconfig

MAX_K = max(KERNELS)
MAX_E = max(EXPANDS)


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, n: int) -> torch.Tensor:
    """BatchNorm over the first ``n`` channels (running statistics updated in place when training)."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.momentum is None:  # cumulative average (BatchNorm re-calibration)
        bn.num_batches_tracked += 1
        momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(x, bn.running_mean[:n], bn.running_var[:n], bn.weight[:n], bn.bias[:n],
                        bn.training, momentum, bn.eps)


class DynamicMBConv(nn.Module):
    """An MBConv block slot whose kernel size and expand ratio are chosen per forward pass."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        mid = cin * MAX_E
        self.expand = nn.Conv2d(cin, mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid)
        self.depthwise = nn.Conv2d(mid, mid, MAX_K, stride, MAX_K // 2, groups=mid, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(mid)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(cout)
        self.shortcut = stride == 1 and cin == cout

    def mid(self, expand: int) -> int:
        return round(self.cin * expand)

    def kernel(self, k: int) -> torch.Tensor:
        start = (MAX_K - k) // 2
        return self.depthwise.weight[:, :, start : start + k, start : start + k]

    def forward(self, x: torch.Tensor, k: int, expand: int) -> torch.Tensor:
        mid = self.mid(expand)
        y = F.relu6(_bn(F.conv2d(x, self.expand.weight[:mid]), self.expand_bn, mid))
        y = F.conv2d(y, self.kernel(k)[:mid], stride=self.stride, padding=k // 2, groups=mid)
        y = F.relu6(_bn(y, self.depthwise_bn, mid))
        y = _bn(F.conv2d(y, self.project.weight[:, :mid]), self.project_bn, self.cout)
        return x + y if self.shortcut else y


class Supernet(nn.Module):
    """All architectures of one :class:`Space`; ``forward(x, arch)`` runs one of them."""

    def __init__(self, space: Space, classes: int) -> None:
        super().__init__()
        self.space, self.classes = space, classes
        first, first_block = stem_channels(space.width)
        self.first_conv = ConvBNAct(3, first, 3, 2, act="relu6")
        self.first_block = MBConv(block_config(first, first_block, 3, 1, 1)["mobile_inverted_conv"], False, "")
        slots, cin = [], first_block
        for base, stride, depths in STAGES:
            cout = space.channels(base)
            for i in range(max(depths)):
                slots.append(DynamicMBConv(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.ModuleList(slots)
        mix = mix_channels(space.width)
        self.feature_mix = ConvBNAct(cin, mix, 1, 1, act="relu6")
        self.classifier = nn.Linear(mix, classes)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.first_block(self.first_conv(x))
        for _, slot, _ in arch.active_blocks():
            x = self.blocks[slot](x, arch.kernels[slot], arch.expands[slot])
        return self.classifier(self.feature_mix(x).mean((2, 3)))


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, n: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[:n])
    dst.eps = src.eps


@torch.no_grad()
def extract_subnet(supernet: Supernet, arch: Arch) -> ProxylessNet:
    """The standalone network of ``arch`` with the supernet's (sliced) weights, in eval mode."""
    net = ProxylessNet(to_netconfig(arch, supernet.classes))
    net.first_conv.load_state_dict(supernet.first_conv.state_dict())
    blocks = list(net.blocks)
    blocks[0].load_state_dict(supernet.first_block.state_dict())
    for block, (_, slot, _) in zip(blocks[1:], arch.active_blocks(), strict=True):
        src: DynamicMBConv = supernet.blocks[slot]
        mid, k = src.mid(arch.expands[slot]), arch.kernels[slot]
        block.expand[0].weight.copy_(src.expand.weight[:mid])
        _copy_bn(block.expand[1], src.expand_bn, mid)
        block.depthwise[0].weight.copy_(src.kernel(k)[:mid])
        _copy_bn(block.depthwise[1], src.depthwise_bn, mid)
        block.project[0].weight.copy_(src.project.weight[:, :mid])
        _copy_bn(block.project[1], src.project_bn, src.cout)
    net.feature_mix.load_state_dict(supernet.feature_mix.state_dict())
    net.classifier.load_state_dict(supernet.classifier.state_dict())
    return net.eval()
