"""Frontends: every supported model source becomes a Relax module the pipeline takes.

``load_model`` accepts a built-in zoo name, an int8 ``.tflite`` file, a
``torch.export`` program (``.pt2``) or an MCUNet/ProxylessNAS JSON net config.
Float PyTorch models are post-training quantised here (TFLite int8 rules) into
the QDQ form that ``LowerQDQToInteger`` lowers; ``.tflite`` files are already
integer and are imported straight into the integer IR (:mod:`.tflite`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from ..errors import ModelFileError


@dataclass
class LoadedModel:
    """A model ready for the compiler."""

    name: str
    kind: str  # "zoo" | "tflite" | "pt2" | "netconfig"
    #: QDQ Relax (PyTorch sources) or the integer IR (``.tflite``): ``pipeline.optimise`` takes either
    module: tvm.IRModule
    input_shape: tuple[int, ...]  # NHWC, int8
    tflite_path: Path | None = None


def _calibration(shape_nchw: tuple[int, ...], count: int = 32, seed: int = 0) -> list[np.ndarray]:
    from .zoo import smooth_images

    return smooth_images(shape_nchw, count, seed)


def _from_torch(name: str, kind: str, module, input_shape_nhwc, calib: Callable[[], list[np.ndarray]]):
    from ..quant.ptq import quantize_model
    from .torch_import import import_torch

    n, h, w, c = input_shape_nhwc
    float_mod = import_torch(module, (n, c, h, w))
    return LoadedModel(name, kind, quantize_model(float_mod, calib()), tuple(input_shape_nhwc))


def load_calibration(path: Path, shape_nchw: tuple[int, ...]) -> list[np.ndarray]:
    """Calibration samples from a ``.npy`` of float32 NCHW images matching the model input."""
    hint = "save them with numpy.save as an (N, C, H, W) float32 array"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        data = np.load(path, allow_pickle=False) if magic == b"\x93NUMPY" else None
    except FileNotFoundError:
        raise ModelFileError("the calibration file does not exist", where=str(path), hint=hint) from None
    except (OSError, ValueError, EOFError) as exc:
        raise ModelFileError(f"cannot read the calibration samples: {exc}", where=str(path), hint=hint) from None
    if not isinstance(data, np.ndarray):
        raise ModelFileError("the calibration file is not a .npy array", where=str(path), hint=hint)
    if not np.issubdtype(data.dtype, np.number):
        raise ModelFileError(f"the calibration samples are {data.dtype}, not numbers", where=str(path), hint=hint)
    if data.ndim != 4 or tuple(data.shape[1:]) != tuple(shape_nchw[1:]) or len(data) == 0:
        raise ModelFileError(f"calibration samples of shape {list(data.shape)}; the model takes "
                             f"(N, {', '.join(map(str, shape_nchw[1:]))})", where=str(path))
    return [data[i : i + 1].astype(np.float32) for i in range(len(data))]


def load_model(spec: str, calibration: Path | None = None) -> LoadedModel:
    """Load ``spec`` (zoo name or path) as a Relax module (QDQ, or integer for ``.tflite``).

    ``calibration``: a ``.npy`` of float NCHW samples for post-training quantisation of
    PyTorch models (default: seeded synthetic images).
    """
    from .zoo import CONFIGS, get_model

    path = Path(spec)
    suffix = path.suffix.lower()
    if spec in CONFIGS and not path.exists():
        zm = get_model(spec)
        n, h, w, c = zm.input_shape_nhwc
        calib = (lambda: load_calibration(calibration, (n, c, h, w))) if calibration else zm.calib_fn
        return _from_torch(zm.name, "zoo", zm.torch_module, zm.input_shape_nhwc, calib)
    if suffix in (".tflite", ".pt2", ".json") and not path.exists():
        raise ModelFileError("model file not found", where=str(path))
    if suffix == ".tflite":
        from .tflite import import_tflite

        if calibration is not None:
            raise ModelFileError("--calibration applies to PyTorch models; a .tflite file is already quantised",
                                 where=f"--calibration {calibration}", hint="drop --calibration")

        mod, shape = import_tflite(path)
        return LoadedModel(path.stem, "tflite", mod, shape, tflite_path=path)
    if suffix == ".pt2":
        from ..quant.ptq import quantize_model
        from .torch_import import load_pt2

        float_mod, shape_nchw = load_pt2(path)
        n, c, h, w = shape_nchw
        calib = load_calibration(calibration, shape_nchw) if calibration else _calibration(tuple(shape_nchw))
        qdq = quantize_model(float_mod, calib)
        return LoadedModel(path.stem, "pt2", qdq, (n, h, w, c))
    if suffix == ".json":
        from .netconfig import load_netconfig

        module, shape_nhwc = load_netconfig(path)
        n, h, w, c = shape_nhwc
        calib = (lambda: load_calibration(calibration, (n, c, h, w))) if calibration else (
            lambda: _calibration((n, c, h, w)))
        return _from_torch(path.stem, "netconfig", module, shape_nhwc, calib)
    if path.exists():
        raise ModelFileError(
            f"unknown model file type '{suffix or path.name}'",
            where=str(path),
            hint="use an int8 .tflite, a torch.export .pt2, an MCUNet .json net config, or a zoo name",
        )
    return get_model(spec)  # raises the unknown-name error listing the zoo
