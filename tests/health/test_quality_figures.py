"""The quality figures of generated images (inspect_core.health.quality): focus falls with
blur and holds with resolution and exposure; the exposure figures read what was made."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from quality_kit import checkerboard, parts, scaled, texture

from inspect_core.errors import ImageError, InspectError
from inspect_core.health import QualityFigures, measure


def test_a_blurred_checkerboard_reads_less_in_focus_than_the_sharp_one():
    sharp = checkerboard()
    figures = [measure(cv2.GaussianBlur(sharp, (0, 0), s)).focus for s in (1, 3, 6)]
    assert measure(sharp).focus > 1.5 * figures[0]
    assert figures[0] > figures[1] > figures[2]  # more blur, less focus
    assert figures[1] < measure(sharp).focus / 2


def test_blurred_texture_falls_towards_a_sixteenth():
    """A sharp texture reads about 1; smooth at its pixel scale, about 1/16 (the docstring)."""
    img = texture(512)
    assert 0.8 < measure(img).focus < 3.0
    assert measure(cv2.GaussianBlur(img, (0, 0), 6)).focus < 0.1


def test_focus_holds_when_the_same_scene_is_taken_at_a_lower_resolution():
    """One limit serves images of one product at different sizes: a scene of parts taken at
    half the resolution keeps its focus, where the Laplacian's variance nearly doubles."""
    big = parts(seed=1)
    full, half = (
        cv2.resize(big, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) for f in (0.5, 0.25)
    )
    assert 0.8 < measure(half).focus / measure(full).focus < 1.25

    def lap(g: np.ndarray) -> float:
        return float(cv2.Laplacian(g, cv2.CV_32F).var())

    assert lap(half) / lap(full) > 1.5


def test_focus_of_a_scale_free_texture_holds_down_to_a_quarter_of_the_resolution():
    img = texture(1024, seed=3)
    for f in (0.5, 0.25):
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        assert 0.8 < measure(small).focus / measure(img).focus < 1.25


def test_focus_does_not_change_with_exposure():
    """A darker image is under-exposed, not out of focus."""
    img = texture(256, seed=1)
    for gain in (0.3, 0.6, 1.5):
        assert measure(scaled(img, gain)).focus == pytest.approx(measure(img).focus, rel=0.1)


def test_a_dark_image_has_clipped_dark_pixels_and_low_levels():
    dark = scaled(texture(256, seed=2), 0.03)
    f = measure(dark)
    assert f.clipped_dark > 0.05 and f.clipped_bright == 0
    assert f.mean < 10 and f.highlights < 10
    normal = measure(texture(256, seed=2))
    assert normal.clipped_dark < 0.01 and normal.mean > 100


def test_an_over_exposed_image_has_clipped_bright_pixels():
    f = measure(scaled(texture(256, seed=2), 2.5))
    assert f.clipped_bright > 0.3 and f.highlights == 255 and f.mean > 200


def test_exposure_figures_of_known_histograms():
    img = np.full((100, 100), 10, np.uint8)
    img[:, :50] = 250  # half at 10, half at 250
    f = measure(img)
    assert f.mean == pytest.approx(130) and f.contrast == pytest.approx(120)
    assert f.clipped_dark == 0 and f.clipped_bright == 0
    img[:, :50] = 255
    img[:, 50:] = 2
    f = measure(img)
    assert f.clipped_dark == pytest.approx(0.5) and f.clipped_bright == pytest.approx(0.5)


def test_highlights_is_the_level_of_the_brightest_percent():
    img = np.full((100, 100), 40, np.uint8)
    img[:2] = 200  # 2 % bright: the brightest 1 % is at 200
    assert measure(img).highlights == 200
    img[:2] = 40
    img[0, :50] = 200  # 0.5 % bright: 99 % are at 40 or below
    assert measure(img).highlights == 40


def test_a_flat_image_has_no_contrast_and_a_finite_focus():
    f = measure(np.full((64, 64), 128, np.uint8))
    assert f == QualityFigures(
        focus=0.0, clipped_dark=0.0, clipped_bright=0.0, mean=128.0, highlights=128.0, contrast=0.0
    )


def test_rgb_gray_and_one_channel_images_read_alike():
    gray = texture(128, seed=4)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    assert measure(rgb) == pytest.approx(measure(gray))
    assert measure(gray[..., None]) == measure(gray)


@pytest.mark.parametrize(
    "image,words",
    [
        (np.zeros((0, 0), np.uint8), "empty"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        (np.zeros((8, 64), np.uint8), "too small"),
        (np.zeros((64, 64), np.float32), "8-bit (uint8) image, got float32"),
        (np.zeros((64, 64), np.uint16), "got 16-bit"),
        (np.zeros((64, 64, 4), np.uint8), "got shape (64, 64, 4)"),
        (np.zeros((64, 64, 3, 1), np.uint8), "got shape"),
    ],
)
def test_bad_input_is_refused_with_what_is_wrong(image, words):
    with pytest.raises(ImageError, match="quality figures|image is") as e:
        measure(image)
    assert words in str(e.value)
    assert isinstance(e.value, InspectError)  # the command line shows it as one line


def test_a_list_is_no_image():
    with pytest.raises(ImageError, match="got list"):
        measure([[0, 1], [2, 3]])  # type: ignore[arg-type]
