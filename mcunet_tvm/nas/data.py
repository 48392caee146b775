"""Datasets for the NAS: a built-in generated demo set, or any image folder. Nothing downloads.

``demo`` is *mcunet-shapes*: ten classes of shapes and textures (disc, ring,
square, frame, triangle, plus, cross, horizontal / vertical bars, checker)
drawn procedurally with random colours, sizes, positions, clutter and noise,
deterministic from a seed. Small objects in clutter make resolution and
capacity matter, as in real vision tasks.

Three disjoint splits: *train* (weights), *val* (every search decision:
the evolution's fitness, the choice of the baseline) and *test* (the reported
accuracies only; the search never sees it). The demo draws one pool of
images and cuts it by index. ``imagefolder:PATH`` reads
``PATH/<class>/*.png|jpg|jpeg|bmp`` and splits every class by file name hash
(60 / 20 / 20 %); with ``PATH/train/`` and ``PATH/val/`` (ImageNet layout)
``val/`` is the test split and the validation split is 20 % of ``train/`` by
hash; ``PATH/train/``, ``PATH/val/`` and ``PATH/test/`` are used as they are.

Images become float tensors ``x / 127.5 - 1`` (NCHW): the compiled model's
int8 input is that, quantised with the input scale in its report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import McunetError

SHAPE_CLASSES = ("disc", "ring", "square", "frame", "triangle", "plus", "cross", "hbars", "vbars", "checker")
NATIVE = 96  # pixels the demo images are drawn at
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """Train, validation and test images (uint8 NHWC at native size) and labels."""

    name: str
    classes: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of ``train``, ``val`` or ``test``."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} (one of {', '.join(SPLITS)})")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def tensors(self, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """NCHW float images of ``split`` at ``resolution`` (bilinear, antialiased) and int64 labels."""
        x, y = self.split(split)
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        if t.shape[-1] != resolution or t.shape[-2] != resolution:
            t = torch.nn.functional.interpolate(t, size=(resolution, resolution), mode="bilinear",
                                                antialias=True, align_corners=False)
        return t / 127.5 - 1.0, torch.from_numpy(y).long()


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cy, cx = rng.uniform(0.25, 0.75, 2) * NATIVE
    r = rng.uniform(0.12, 0.3) * NATIVE
    dy, dx = yy - cy, xx - cx
    d = np.hypot(dy, dx)
    t = max(2.0, r * rng.uniform(0.18, 0.3))  # stroke width
    box = (np.abs(dy) <= r) & (np.abs(dx) <= r)
    name = SHAPE_CLASSES[kind]
    if name == "disc":
        return d <= r
    if name == "ring":
        return (d <= r) & (d >= r - t)
    if name == "square":
        return box
    if name == "frame":
        return box & ~((np.abs(dy) <= r - t) & (np.abs(dx) <= r - t))
    if name == "triangle":
        return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
    if name == "plus":
        return box & ((np.abs(dy) <= t / 2) | (np.abs(dx) <= t / 2))
    if name == "cross":
        return box & ((np.abs(dy - dx) <= t / 1.4) | (np.abs(dy + dx) <= t / 1.4))
    period = max(4.0, r / rng.uniform(1.5, 3.0))
    if name == "hbars":
        return box & ((dy % period) < period / 2)
    if name == "vbars":
        return box & ((dx % period) < period / 2)
    return box & (((dy // period) + (dx // period)) % 2 == 0)  # checker


def make_shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` demo images (uint8 NHWC, 96 px) with balanced labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:NATIVE, 0:NATIVE].astype(np.float32)
    images = np.empty((count, NATIVE, NATIVE, 3), np.uint8)
    labels = np.arange(count) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    for i, kind in enumerate(labels):
        bg = rng.uniform(0, 255, 3)
        grad = rng.uniform(-60, 60, 3)[None, None, :] * (xx / NATIVE - 0.5)[..., None]
        img = np.broadcast_to(bg, (NATIVE, NATIVE, 3)) + grad
        for _ in range(int(rng.integers(2, 6))):  # clutter: random strokes
            a, b = rng.uniform(-1, 1, 2)
            c = rng.uniform(0, NATIVE) * (abs(a) + abs(b))
            line = np.abs(a * xx + b * yy - c) <= rng.uniform(0.5, 1.5)
            img = np.where(line[..., None], rng.uniform(0, 255, 3), img)
        fg = (bg + rng.uniform(70, 150, 3) * rng.choice([-1, 1], 3)) % 255
        mask = _shape_mask(int(kind), yy, xx, rng)
        img = np.where(mask[..., None], fg, img)
        img = img + rng.normal(0, rng.uniform(8, 30), img.shape)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def demo_dataset(train: int = 3000, val: int = 1000, test: int = 1000, seed: int = 0) -> Dataset:
    """One pool of ``train + val + test`` generated images, cut by index into the three splits."""
    x, y = make_shapes(train + val + test, seed)
    a, b = train, train + val
    return Dataset("mcunet-shapes", SHAPE_CLASSES, x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def _read_folder(root: Path, size: int) -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    from PIL import Image

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels, names = [], [], []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
            except OSError as exc:
                raise McunetError(f"cannot read the image: {exc}", where=str(f),
                                  hint="remove or fix the file") from None
            labels.append(label)
            names.append(f"{cls}/{f.name}")
    return images, labels, classes, names


def _hash_bucket(name: str, buckets: int = 5) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


def _take(x: list, y: list, keep: list[bool]) -> tuple[list, list]:
    return ([a for a, k in zip(x, keep, strict=True) if k], [b for b, k in zip(y, keep, strict=True) if k])


def image_folder(path: Path, size: int = 160) -> Dataset:
    """An image-folder dataset resized to ``size`` px (the largest resolution the search may use)."""
    if not path.is_dir():
        raise McunetError("the image folder does not exist", where=str(path),
                          hint="use --data imagefolder:PATH with PATH/<class>/<images>")

    def read(sub: Path, classes: list[str] | None) -> tuple[list, list, list[str], list[str]]:
        x, y, found, names = _read_folder(sub, size)
        if classes is not None and found != classes:
            raise McunetError(f"{sub.name}/ and train/ have different class folders", where=str(path))
        return x, y, found, names

    if (path / "train").is_dir() and (path / "val").is_dir():
        tx, ty, classes, names = read(path / "train", None)
        if (path / "test").is_dir():
            vx, vy, _, _ = read(path / "val", classes)
            sx, sy, _, _ = read(path / "test", classes)
        else:  # val/ is the reported split; the search's validation split comes out of train/
            sx, sy, _, _ = read(path / "val", classes)
            held = [_hash_bucket(n) == 0 for n in names]
            vx, vy = _take(tx, ty, held)
            tx, ty = _take(tx, ty, [not h for h in held])
    else:
        x, y, classes, names = _read_folder(path, size)
        bucket = [_hash_bucket(n) for n in names]
        tx, ty = _take(x, y, [b >= 2 for b in bucket])
        vx, vy = _take(x, y, [b == 0 for b in bucket])
        sx, sy = _take(x, y, [b == 1 for b in bucket])
    if len(classes) < 2 or not tx or not vx or not sx:
        raise McunetError(f"need at least two classes and images in every split (found {len(classes)} classes, "
                          f"{len(tx)} train / {len(vx)} validation / {len(sx)} test images)", where=str(path),
                          hint="layout: PATH/<class>/<image files>, or PATH/train|val[|test]/<class>/...")
    return Dataset(path.name, tuple(classes), np.stack(tx), np.asarray(ty, np.int64), np.stack(vx),
                   np.asarray(vy, np.int64), np.stack(sx), np.asarray(sy, np.int64))


def load_dataset(spec: str, quick: bool = False, seed: int = 0) -> Dataset:
    """``demo`` or ``imagefolder:PATH``."""
    if spec == "demo":
        return demo_dataset(400, 200, 200, seed) if quick else demo_dataset(seed=seed)
    if spec.startswith("imagefolder:"):
        return image_folder(Path(spec.split(":", 1)[1]))
    raise McunetError(f"unknown dataset '{spec}'", where="--data", hint="use demo or imagefolder:PATH")
