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
import math
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


# ---- checking a config before building it ---------------------------------------------------------
_HINT = "see the ProxylessNASNets config format (mcunet's net configs)"
_KERNELS = (1, 3, 5, 7)
_STRIDES = (1, 2)


def _field(obj: dict, key: str, path: str, kind: type, default=None, required: bool = True):
    """``obj[key]`` as ``kind`` (int fields take integral numbers only; bool is never a number)."""
    where = f"{path}.{key}"
    if key not in obj or obj[key] is None:
        if required and default is None:
            raise UnsupportedModelError(f"the net config lacks '{where}'", where=where, hint=_HINT)
        return default
    value = obj[key]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and number and float(value).is_integer():
        return int(value)
    if kind is float and number and math.isfinite(value):
        return float(value)
    if kind in (str, dict, list) and isinstance(value, kind):
        return value
    raise UnsupportedModelError(f"'{where}' is {json.dumps(value)[:40]}; it must be {_KIND_NAMES[kind]}",
                                where=where, hint=_HINT)


_KIND_NAMES = {int: "a whole number", float: "a finite number", str: "a string", dict: "an object",
               list: "a list"}


def _positive(obj: dict, key: str, path: str, default=None, choices: tuple[int, ...] = ()) -> int:
    value = _field(obj, key, path, int, default)
    if value < 1 or (choices and value not in choices):
        allowed = f"one of {', '.join(map(str, choices))}" if choices else "at least 1"
        raise UnsupportedModelError(f"'{path}.{key}' is {value}; it must be {allowed}", where=f"{path}.{key}",
                                    hint=_HINT)
    return value


def _channels(layer: dict, path: str, have: int) -> int:
    """Check ``in_channels`` against the ``have`` channels the layer before produces; its output channels."""
    cin = _positive(layer, "in_channels", path)
    if cin != have:
        raise UnsupportedModelError(f"'{path}.in_channels' is {cin} but the layer before produces {have} channels",
                                    where=f"{path}.in_channels", hint="make each layer's in_channels the previous "
                                    "layer's out_channels")
    return _positive(layer, "out_channels", path)


def _check_conv_layer(layer: dict, path: str, have: int) -> int:
    cout = _channels(layer, path, have)
    _positive(layer, "kernel_size", path, choices=_KERNELS)
    _positive(layer, "stride", path, choices=_STRIDES)
    _act_name(layer, path)
    return cout


def _act_name(layer: dict, path: str) -> None:
    act = layer.get("act_func", "relu6")
    if act not in _ACTS:
        raise UnsupportedModelError(f"activation {json.dumps(act)[:40]} is not supported", where=f"{path}.act_func",
                                    hint="use relu, relu6 or none")


def _check_block(block: object, path: str, have: int) -> int:
    if not isinstance(block, dict):
        raise UnsupportedModelError(f"'{path}' is not an object", where=path, hint=_HINT)
    conv, shortcut = block.get("mobile_inverted_conv"), block.get("shortcut")
    for key, value in (("mobile_inverted_conv", conv), ("shortcut", shortcut)):
        if value is not None and not isinstance(value, dict):
            raise UnsupportedModelError(f"'{path}.{key}' is not an object", where=f"{path}.{key}", hint=_HINT)
    if block.get("name", "MobileInvertedResidualBlock") != "MobileInvertedResidualBlock":
        raise UnsupportedModelError(f"block type {json.dumps(block.get('name'))[:40]} is not supported",
                                    where=f"{path}.name", hint="supported: MobileInvertedResidualBlock")
    if shortcut is not None and shortcut.get("name") != "IdentityLayer":
        raise UnsupportedModelError(f"shortcut {json.dumps(shortcut.get('name'))[:40]} is not supported",
                                    where=f"{path}.shortcut.name", hint="supported: IdentityLayer or null")
    if conv is None or conv.get("name") == "ZeroLayer":
        if shortcut is None:
            raise UnsupportedModelError("a block with neither conv nor shortcut", where=path, hint=_HINT)
        return have
    if conv.get("name") != "MBInvertedConvLayer":
        raise UnsupportedModelError(f"layer {json.dumps(conv.get('name'))[:40]} is not supported",
                                    where=f"{path}.mobile_inverted_conv.name",
                                    hint="supported: MBInvertedConvLayer, ZeroLayer, IdentityLayer")
    path = f"{path}.mobile_inverted_conv"
    cout = _channels(conv, path, have)
    _positive(conv, "kernel_size", path, choices=_KERNELS)
    stride = _positive(conv, "stride", path, choices=_STRIDES)
    expand = _field(conv, "expand_ratio", path, float)
    if expand <= 0:
        raise UnsupportedModelError(f"'{path}.expand_ratio' is {expand}; it must be positive",
                                    where=f"{path}.expand_ratio", hint=_HINT)
    mid = _field(conv, "mid_channels", path, int, required=False)
    if (mid if mid is not None else round(have * expand)) < 1:
        raise UnsupportedModelError(f"'{path}' expands to no channels", where=f"{path}.mid_channels",
                                    hint=_HINT)
    _act_name(conv, path)
    if shortcut is not None and (stride != 1 or cout != have):
        raise UnsupportedModelError(f"an identity shortcut around a block from {have} to {cout} channels with "
                                    f"stride {stride}", where=f"{path[: -len('.mobile_inverted_conv')]}.shortcut",
                                    hint="a shortcut needs stride 1 and in_channels == out_channels; set it to null")
    return cout


def check_config(config: object) -> None:
    """Every field the network is built from, typed and ranged, channels chained from layer to layer;
    errors name the JSON path (``blocks[1].mobile_inverted_conv.stride``)."""
    if not isinstance(config, dict) or not isinstance(config.get("blocks"), list):
        raise UnsupportedModelError("not a ProxylessNAS/MCUNet net config (no 'blocks' list)", hint=_HINT)
    _positive(config, "resolution", "config", default=224)
    first = _field(config, "first_conv", "config", dict)
    have = _check_conv_layer(first, "first_conv", _positive(first, "in_channels", "first_conv"))
    for i, block in enumerate(config["blocks"]):
        have = _check_block(block, f"blocks[{i}]", have)
    mix = _field(config, "feature_mix_layer", "config", dict, required=False)
    if mix:
        have = _check_conv_layer(mix, "feature_mix_layer", have)
    cls = _field(config, "classifier", "config", dict)
    features = _positive(cls, "in_features", "classifier")
    if features != have:
        raise UnsupportedModelError(f"'classifier.in_features' is {features} but the last layer produces {have} "
                                    "channels", where="classifier.in_features", hint="make them equal")
    _positive(cls, "out_features", "classifier")


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
    check_config(config)
    return randomize(ProxylessNet(config), seed)


def load_netconfig(path: Path, resolution: int | None = None) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """Module and NHWC input shape for a JSON net config file."""
    try:
        config = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ModelFileError(f"cannot read the net config: {exc.strerror}", where=str(path)) from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"invalid JSON ({exc.msg} at line {exc.lineno})", where=str(path)) from None
    try:
        check_config(config)
    except UnsupportedModelError as exc:
        where = f"{path}: {exc.where}" if exc.where else str(path)
        raise UnsupportedModelError(exc.what, where=where, hint=exc.hint) from None
    res = int(resolution or config.get("resolution", 224))
    cin = int(config["first_conv"]["in_channels"])
    return build_from_config(config), (1, res, res, cin)
