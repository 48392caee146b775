"""Built-in models, all defined as MCUNet/ProxylessNAS net configs.

Weights are seeded random (there are no downloads). Names ending in
``-like`` are MCUNet-style architectures written for this project (mixed
kernel sizes and expand ratios as TinyNAS produces), not the published
MCUNet checkpoints' exact architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UnsupportedModelError
from .netconfig import build_from_config

_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv(cin: int, cout: int, k: int, stride: int, act: str | None = "relu6") -> dict:
    return {"name": "ConvLayer", "in_channels": cin, "out_channels": cout, "kernel_size": k,
            "stride": stride, "act_func": act, "use_bn": True}


def _block(cin: int, cout: int, k: int, stride: int, expand: float) -> dict:
    conv = {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout, "kernel_size": k,
            "stride": stride, "expand_ratio": expand, "mid_channels": None, "act_func": "relu6"}
    shortcut = ({"name": "IdentityLayer", "in_channels": cin, "out_channels": cout}
                if stride == 1 and cin == cout else None)
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv, "shortcut": shortcut}


def _net(first: int, blocks: list[dict], last_in: int, mix: int | None, classes: int, res: int) -> dict:
    return {
        "name": "ProxylessNASNets",
        "resolution": res,
        "first_conv": _conv(3, first, 3, 2),
        "blocks": blocks,
        "feature_mix_layer": _conv(last_in, mix, 1, 1) if mix else None,
        "classifier": {"name": "LinearLayer", "in_features": mix or last_in, "out_features": classes, "bias": True},
    }


def mbv2_config(width: float, resolution: int, classes: int = 1000, scale_last: bool = False) -> dict:
    """MobileNetV2 scaled by ``width`` at ``resolution``.

    The last (feature mix) layer keeps 1280 channels below width 1 as in the paper, unless
    ``scale_last`` (then ``1280 x width``, as the TinyNAS search space scales it).
    """
    first = make_divisible(32 * width)
    blocks, cin = [], first
    for t, c, n, s in _MBV2:
        cout = make_divisible(c * width)
        for i in range(n):
            blocks.append(_block(cin, cout, 3, s if i == 0 else 1, t))
            cin = cout
    last = make_divisible(1280 * width) if width > 1.0 or scale_last else 1280
    return _net(first, blocks, cin, last, classes, resolution)


def mcunet_like_config(stages: list[tuple[int, int, list[tuple[int, float]]]], first: int, mix: int,
                       classes: int, resolution: int) -> dict:
    """A TinyNAS-style net: stages of (out channels, stride, [(kernel, expand) per block])."""
    blocks = [_block(first, first, 3, 1, 1)]
    cin = first
    for cout, stride, layers in stages:
        for i, (k, e) in enumerate(layers):
            blocks.append(_block(cin, cout, k, stride if i == 0 else 1, e))
            cin = cout
    return _net(first, blocks, cin, mix, classes, resolution)


DEMO = mcunet_like_config(
    [(16, 2, [(3, 3), (5, 3)]), (24, 2, [(3, 4), (7, 3)]), (40, 2, [(5, 4)])], first=8, mix=96, classes=10,
    resolution=48,
)

CONFIGS: dict[str, dict] = {
    "demo-cnn": DEMO,
    "mbv2-w0.35-r96": mbv2_config(0.35, 96),
    "mbv2-w0.35-r144": mbv2_config(0.35, 144),
    "mbv2-w0.5-r128": mbv2_config(0.5, 128),
    "mbv2-w1.0-r224": mbv2_config(1.0, 224),
    "mcunet-vww-like": mcunet_like_config(
        [(16, 2, [(3, 3), (5, 3)]), (24, 2, [(7, 3), (3, 4)]), (40, 2, [(5, 4), (5, 3)]),
         (48, 1, [(3, 4)]), (96, 2, [(7, 3), (5, 3)])], first=16, mix=160, classes=2, resolution=80),
    "mcunet-in-like": mcunet_like_config(
        [(24, 2, [(7, 3), (3, 4)]), (40, 2, [(5, 4), (3, 3), (5, 3)]), (80, 2, [(7, 4), (5, 3)]),
         (96, 1, [(5, 4), (3, 3)]), (160, 2, [(7, 6), (5, 4)]), (320, 1, [(3, 6)])], first=16, mix=1280,
        classes=1000, resolution=128),
}


@dataclass
class ZooModel:
    """A built-in float model, its NHWC input shape and its calibration data."""

    name: str
    torch_module: torch.nn.Module
    input_shape_nhwc: tuple[int, int, int, int]
    calib_fn: Callable[[], list[np.ndarray]]
    config: dict


def smooth_images(shape_nchw: tuple[int, ...], count: int, seed: int) -> list[np.ndarray]:
    """Seeded images in [-1, 1] with spatial structure (coarse noise upsampled)."""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape_nchw
    out = []
    for _ in range(count):
        coarse = rng.uniform(-1, 1, (n, c, -(-h // 8), -(-w // 8)))
        img = np.kron(coarse, np.ones((1, 1, 8, 8)))[:, :, :h, :w]
        img = img + rng.normal(0, 0.1, img.shape)
        out.append(np.clip(img, -1, 1).astype(np.float32))
    return out


def list_models() -> list[str]:
    return sorted(CONFIGS)


def get_model(name: str, calib_count: int = 32) -> ZooModel:
    """The built-in model ``name``."""
    if name not in CONFIGS:
        raise UnsupportedModelError(
            f"unknown model '{name}'",
            hint="use a zoo name (" + ", ".join(list_models()) + ") or a .tflite/.pt2/.json path",
        )
    config = CONFIGS[name]
    res = int(config["resolution"])
    module = build_from_config(config)
    return ZooModel(name, module, (1, res, res, 3),
                    lambda: smooth_images((1, 3, res, res), calib_count, seed=0), config)
