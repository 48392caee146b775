"""TinyNAS on fair terms: disjoint splits, test accuracy from the test split only, the MobileNetV2
baseline on the search's grid picked by validation accuracy, its width labels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from mcunet_tvm.frontend.zoo import make_divisible, mbv2_config
from mcunet_tvm.nas.cli import _accuracies, pick_baseline
from mcunet_tvm.nas.data import SPLITS, Dataset, demo_dataset, load_dataset, make_shapes
from mcunet_tvm.nas.light import Prediction, predict
from mcunet_tvm.nas.mcu import Mcu
from mcunet_tvm.nas.search import MobileNetV2, fits, mobilenetv2_grid
from mcunet_tvm.nas.space import WIDTHS


def _hashes(x: np.ndarray) -> set[str]:
    return {hashlib.sha1(img.tobytes()).hexdigest() for img in x}


def _assert_disjoint(data: Dataset) -> None:
    sets = {s: _hashes(data.split(s)[0]) for s in SPLITS}
    for s in SPLITS:
        assert len(sets[s]) == len(data.split(s)[0]) > 0, f"{s}: empty or repeated images"
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]


def test_demo_splits_are_disjoint() -> None:
    data = demo_dataset(40, 20, 20, seed=5)
    assert [len(data.split(s)[1]) for s in SPLITS] == [40, 20, 20]
    _assert_disjoint(data)
    with pytest.raises(ValueError, match="unknown split"):
        data.tensors("validation", 32)


@pytest.mark.parametrize("layout", ["flat", "train_val", "train_val_test"])
def test_image_folder_splits_are_disjoint(tmp_path, layout: str) -> None:
    from PIL import Image

    x, y = make_shapes(90, seed=7)  # 9 of each class
    seen: dict[int, int] = {}
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        n = seen[int(label)] = seen.get(int(label), -1) + 1  # every class in every folder
        split = {"flat": "", "train_val": ("train", "train", "val")[n % 3],
                 "train_val_test": ("train", "val", "test")[n % 3]}[layout]
        folder = tmp_path / split / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert sum(len(data.split(s)[1]) for s in SPLITS) == 90
    if layout == "train_val":  # val/ is reported (test); validation is carved out of train/
        assert len(data.test_y) == 30
    _assert_disjoint(data)


class _Constant(torch.nn.Module):
    """Always predicts class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 2).float()


def test_reported_test_accuracy_is_computed_on_the_test_split() -> None:
    x, _ = make_shapes(12, seed=1)
    zeros, ones = np.zeros(4, np.int64), np.ones(4, np.int64)
    data = Dataset("t", ("a", "b"), x[:4], zeros, x[4:8], zeros, x[8:], ones)
    assert _accuracies(_Constant(), data, 16) == {"val": 1.0, "test": 0.0}


def test_mobilenetv2_width_label_equals_the_configuration_width() -> None:
    roomy = Mcu("roomy", 1 << 30, 1 << 30, "cortex-m7")
    resolutions = [32, 40]
    grid = mobilenetv2_grid(roomy, WIDTHS, resolutions, 10, "dsp")
    assert [(c.width, c.resolution) for c in grid] == [(w, r) for w in WIDTHS for r in resolutions]
    for c in grid:
        assert c.config == mbv2_config(c.width, c.resolution, 10, scale_last=True)
        assert c.config["first_conv"]["out_channels"] == make_divisible(32 * c.width)
        assert c.to_json()["last_channels"] == make_divisible(1280 * c.width)  # scaled like the search space
        assert c.to_json()["width"] == c.width and c.label == f"mbv2-w{c.width}-r{c.resolution}"
    fixed = mobilenetv2_grid(roomy, (0.3,), [32], 10, "dsp", scale_last=False)
    assert fixed[0].to_json()["last_channels"] == 1280 and fixed[0].label.endswith("-last1280")


def test_mobilenetv2_grid_keeps_what_the_exact_planner_fits() -> None:
    full = mobilenetv2_grid(Mcu("roomy", 1 << 30, 1 << 30, "cortex-m7"), WIDTHS, [48], 10, "dsp")
    flashes = sorted(c.prediction.flash_bytes for c in full)
    budget = (flashes[2] + flashes[3]) // 2  # some fit, some do not
    mcu = Mcu("tight", 1 << 30, budget, "cortex-m7")
    grid = mobilenetv2_grid(mcu, WIDTHS, [48], 10, "dsp")
    assert 0 < len(grid) < len(full)
    for c in full:
        exact = predict(c.config, dsp=True, fast=False)
        assert c.prediction == exact
        assert (c in grid) == fits(exact, mcu)


def _cand(width: float, macs: int) -> MobileNetV2:
    return MobileNetV2(width, 32, True, {}, Prediction(1000, 1000, macs, 10))


def test_baseline_is_picked_by_validation_accuracy_among_fitting_candidates() -> None:
    big, small, mid = _cand(1.0, 9_000_000), _cand(0.3, 1_000_000), _cand(0.5, 3_000_000)
    screened = [(big, 0.41, "big"), (small, 0.55, "small"), (mid, 0.50, "mid")]
    assert pick_baseline(screened)[0] == small  # not the most MACs
    tie = [(big, 0.5, "big"), (mid, 0.5, "mid")]
    assert pick_baseline(tie)[0] == big  # ties: more MACs
