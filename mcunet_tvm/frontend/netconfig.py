"""MCUNet / ProxylessNAS JSON net configs to PyTorch modules.

Reads the format of ``ProxylessNASNets.build_from_config`` (mcunet package):
``first_conv`` (ConvLayer), ``blocks`` of ``MobileInvertedResidualBlock``
(``mobile_inverted_conv``: MBInvertedConvLayer or ZeroLayer; ``shortcut``:
IdentityLayer or null), optional ``feature_mix_layer`` (ConvLayer) and
``classifier`` (LinearLayer); the input ``resolution`` key is optional.
Weights are seeded random (BatchNorm statistics too, so folding is real).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelFileError, UnsupportedModelError

_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, None: nn.Identity, "none": nn.Identity}


def _act(name, where: str) -> nn.Module:
    if name not in _ACTS:
        raise UnsupportedModelError(f"activation '{name}' is not supported", where=where,
                                    hint="use relu, relu6 or none")
    return _ACTS[name]()


class ConvBNAct(nn.Sequential):
    """conv (same padding) -> BatchNorm -> activation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int = 1, act=None, where: str = ""):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if act not in (None, "none"):
            layers.append(_act(act, where))
        super().__init__(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 project (+ identity shortcut)."""

    def __init__(self, cfg: dict, shortcut: bool, where: str) -> None:
        super().__init__()
        cin, cout = int(cfg["in_channels"]), int(cfg["out_channels"])
        k, stride, expand = int(cfg["kernel_size"]), int(cfg["stride"]), float(cfg["expand_ratio"])
        mid = int(cfg.get("mid_channels") or round(cin * expand))
        act = cfg.get("act_func", "relu6")
        if cfg.get("use_se"):
            raise UnsupportedModelError("squeeze-and-excitation blocks are not supported", where=where)
        self.expand = ConvBNAct(cin, mid, 1, 1, act=act, where=where) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, k, stride, groups=mid, act=act, where=where)
        self.project = ConvBNAct(mid, cout, 1, 1, act=None, where=where)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.shortcut else y


class ProxylessNet(nn.Module):
    """first conv -> MBConv blocks -> (feature mix) -> global average pool -> classifier."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        fc = config["first_conv"]
        self.first_conv = ConvBNAct(int(fc["in_channels"]), int(fc["out_channels"]), int(fc["kernel_size"]),
                                    int(fc["stride"]), act=fc.get("act_func", "relu6"), where="first_conv")
        blocks = []
        for i, block in enumerate(config["blocks"]):
            where = f"blocks[{i}]"
            if block.get("name", "MobileInvertedResidualBlock") != "MobileInvertedResidualBlock":
                raise UnsupportedModelError(f"block type '{block.get('name')}' is not supported", where=where)
            conv, shortcut = block.get("mobile_inverted_conv"), block.get("shortcut")
            if shortcut is not None and shortcut.get("name") != "IdentityLayer":
                raise UnsupportedModelError(f"shortcut '{shortcut.get('name')}' is not supported", where=where)
            if conv is None or conv.get("name") == "ZeroLayer":
                if shortcut is None:
                    raise UnsupportedModelError("a block with neither conv nor shortcut", where=where)
                continue  # identity block
            if conv.get("name") != "MBInvertedConvLayer":
                raise UnsupportedModelError(f"layer '{conv.get('name')}' is not supported", where=where,
                                            hint="supported: MBInvertedConvLayer, ZeroLayer, IdentityLayer")
            blocks.append(MBConv(conv, shortcut is not None, where))
        self.blocks = nn.Sequential(*blocks)
        mix = config.get("feature_mix_layer")
        self.feature_mix = (
            ConvBNAct(int(mix["in_channels"]), int(mix["out_channels"]), int(mix.get("kernel_size", 1)), 1,
                      act=mix.get("act_func", "relu6"), where="feature_mix_layer")
            if mix else nn.Identity()
        )
        cls = config["classifier"]
        self.classifier = nn.Linear(int(cls["in_features"]), int(cls["out_features"]), bias=bool(cls.get("bias", True)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.blocks(self.first_conv(x)))
        return self.classifier(x.mean((2, 3)))


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights and non-trivial BatchNorm statistics (so folding and PTQ are exercised)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1.0 + 0.2 * torch.rand(m.running_var.shape, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.in_features ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    return model.eval()


def build_from_config(config: dict, seed: int = 0) -> ProxylessNet:
    """A seeded-random :class:`ProxylessNet` for ``config``."""
    try:
        return randomize(ProxylessNet(config), seed)
    except KeyError as exc:
        raise UnsupportedModelError(f"the net config lacks the key {exc}",
                                    hint="see the ProxylessNASNets config format") from None


def load_netconfig(path: Path, resolution: int | None = None) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """Module and NHWC input shape for a JSON net config file."""
    try:
        config = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ModelFileError(f"cannot read the net config: {exc.strerror}", where=str(path)) from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"invalid JSON ({exc.msg} at line {exc.lineno})", where=str(path)) from None
    if not isinstance(config, dict) or "blocks" not in config:
        raise ModelFileError("not a ProxylessNAS/MCUNet net config (no 'blocks')", where=str(path))
    res = int(resolution or config.get("resolution", 224))
    cin = int(config["first_conv"]["in_channels"])
    return build_from_config(config), (1, res, res, cin)
