"""Quality limits fitted from training images (inspect_core.health.fit): at most ``share`` of
them outside each limit, the degraded ones outside, and a dataset folder read as it is."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from quality_kit import scaled, texture

from inspect_core.errors import DataError
from inspect_core.health import (
    QualityFigures,
    check,
    fit_limits,
    fit_limits_from_dataset,
    measure,
    measure_split,
)
from inspect_core.health.fit import FLOORS
from inspect_core.health.limits import LIMITS


def random_figures(n: int, seed: int, heavy: bool = False) -> list[QualityFigures]:
    """Figures spread as a line's images are (heavy: with far outliers in every tail)."""
    rng = np.random.default_rng(seed)

    def draw(centre: float, spread: float) -> np.ndarray:
        x = rng.standard_t(2, n) if heavy else rng.normal(size=n)
        return centre + spread * x

    cols = {
        "focus": np.exp(draw(-0.5, 0.3)),
        "clipped_dark": np.clip(draw(0.002, 0.004), 0, 1),
        "clipped_bright": np.clip(draw(0.01, 0.01), 0, 1),
        "mean": np.clip(draw(120, 15), 0, 255),
        "highlights": np.clip(draw(210, 10), 0, 255),
        "contrast": np.clip(draw(40, 6), 0, 127),
    }
    return [QualityFigures(**{k: float(v[i]) for k, v in cols.items()}) for i in range(n)]


@pytest.mark.parametrize("n", [20, 57, 400, 2000])
@pytest.mark.parametrize("share", [0.005, 0.02, 0.1])
@pytest.mark.parametrize("heavy", [False, True])
def test_at_most_share_of_the_training_images_fall_outside_each_limit(n, share, heavy):
    figures = random_figures(n, seed=n, heavy=heavy)
    limits = fit_limits(figures, share=share)
    for spec in LIMITS:
        limit = limits.limit(spec)
        assert limit is not None, spec.key
        values = np.array([f.value(spec.figure) for f in figures])
        outside = (values < limit) if spec.bound == "min" else (values > limit)
        assert outside.sum() <= share * n, (spec.key, int(outside.sum()))


def test_each_limit_lies_beyond_the_tail_of_the_training_images_by_at_least_its_floor():
    """The limit is the images' own ``share`` quantile widened by the tail's width times the
    margin, and at least by the figure's floor (focus: by a factor)."""
    figures = random_figures(1000, seed=7)
    tight, wide = fit_limits(figures, margin=0.0), fit_limits(figures)
    widened_more = []
    for spec in LIMITS:
        values = np.array([f.value(spec.figure) for f in figures])
        if spec.bound == "min":
            q = np.quantile(values, 0.005, method="lower")  # one of the images' own values
        else:
            q = np.quantile(values, 0.995, method="higher")
        a, b = tight.limit(spec), wide.limit(spec)
        assert a is not None and b is not None
        floor = FLOORS[spec.figure]
        if spec.figure == "focus":
            q, a, b = np.log(q), np.log(a), np.log(b)
        gap = (q - a, q - b) if spec.bound == "min" else (a - q, b - q)
        assert gap[0] == pytest.approx(floor)
        assert gap[1] >= gap[0] - 1e-12
        widened_more.append(gap[1] > floor * 1.01)
    assert any(widened_more)


def test_limits_fitted_on_good_images_flag_blurred_and_darkened_ones():
    train = [
        measure(texture(128, seed=s, mean=110 + s % 7 * 5, std=30 + s % 5 * 2)) for s in range(40)
    ]
    limits = fit_limits(train)
    new = texture(128, seed=99, mean=125, std=33)
    assert check(measure(new), limits) == []
    blurred = check(measure(cv2.GaussianBlur(new, (0, 0), 3)), limits)
    assert "out of focus" in [p.reason for p in blurred]
    darkened = check(measure(scaled(new, 0.3)), limits)
    assert [p.reason for p in darkened][0] == "under-exposed"
    assert "out of focus" not in [p.reason for p in darkened]
    bright = check(measure(scaled(new, 2.5)), limits)
    assert "over-exposed" in [p.reason for p in bright]


def test_fit_refuses_too_few_images_and_a_share_out_of_range():
    with pytest.raises(ValueError, match="at least 20 training images, got 5"):
        fit_limits(random_figures(5, seed=0))
    with pytest.raises(ValueError, match="share must be between 0 and 0.5"):
        fit_limits(random_figures(50, seed=0), share=0.6)
    with pytest.raises(ValueError, match="share must be between 0 and 0.5"):
        fit_limits(random_figures(50, seed=0), share=0.0)


def make_dataset(root: Path, images: list[np.ndarray], split: str = "train") -> Path:
    """A dataset folder in the shared layout (classes.json, <split>/images and masks)."""
    (root / split / "images").mkdir(parents=True)
    (root / split / "masks").mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps({"classes": ["background", "defect"]}))
    for i, img in enumerate(images):
        cv2.imwrite(str(root / split / "images" / f"{i:03d}.png"), img)
        cv2.imwrite(str(root / split / "masks" / f"{i:03d}.png"), np.zeros(img.shape[:2], "u1"))
    return root


def test_limits_fitted_from_a_dataset_folder_match_those_of_its_figures(tmp_path):
    images = [texture(96, seed=s, mean=100 + s, std=30) for s in range(30)]
    root = make_dataset(tmp_path / "ds", images)
    assert fit_limits_from_dataset(root) == fit_limits([measure(im) for im in images])


def test_measure_split_spreads_a_subsample_over_the_split(tmp_path):
    images = [np.full((32, 32), 10 * s, np.uint8) for s in range(21)]
    root = make_dataset(tmp_path / "ds", images)
    means = [f.mean for f in measure_split(root, "train", max_images=3)]
    assert means == [0.0, 100.0, 200.0]
    assert len(measure_split(root, "train")) == 21


def test_a_dataset_with_too_few_images_says_so_and_what_to_do(tmp_path):
    root = make_dataset(tmp_path / "ds", [texture(64, seed=s) for s in range(5)])
    with pytest.raises(DataError, match=r"train: 5 training image\(s\).*set the limits by hand"):
        fit_limits_from_dataset(root)


def test_an_image_too_small_to_measure_names_its_file(tmp_path):
    images = [texture(64, seed=s) for s in range(25)] + [np.zeros((8, 64), np.uint8)]
    root = make_dataset(tmp_path / "ds", images)
    with pytest.raises(DataError, match=r"025\.png: the image is too small \(64x8 px\)"):
        fit_limits_from_dataset(root)
