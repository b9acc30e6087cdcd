"""Each post-processing step on small synthetic label maps, and region extraction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspect_core.runtime.postprocess import (
    Close,
    Compose,
    FillHoles,
    Open,
    RemoveSmallRegions,
    argmax_labels,
    build_steps,
    extract_regions,
)

NAMES = ["background", "scratch", "dent"]


def _probs(labels, c=3, hi=0.9):
    """Probabilities consistent with ``labels``: ``hi`` on the label, the rest spread evenly."""
    p = np.full((c, *labels.shape), (1 - hi) / (c - 1), np.float32)
    for k in range(c):
        p[k][labels == k] = hi
    return p


def _blank(h=30, w=30):
    return np.zeros((h, w), np.uint8)


# --------------------------------------------------------------------------- Open / Close


def test_open_removes_speck_keeps_blob():
    lab = _blank()
    lab[5:15, 5:15] = 1  # 10x10 blob
    lab[22, 22] = 1  # 1-px speck
    lab[25, 3] = 2  # speck of another class
    out = Open(3)(lab, _probs(lab))
    assert out[22, 22] == 0 and out[25, 3] == 0
    blob = out[5:15, 5:15] == 1
    assert blob.sum() >= 100 - 4  # at most the four corners go (elliptic kernel)
    assert blob[1:-1, 1:-1].all()
    assert set(np.unique(out)) <= {0, 1}
    assert lab[22, 22] == 1  # input untouched


def test_open_only_touches_requested_classes():
    lab = _blank()
    lab[2, 2] = 1
    lab[20, 20] = 2
    out = Open(3, classes=[2])(lab, _probs(lab))
    assert out[2, 2] == 1 and out[20, 20] == 0


def test_close_bridges_one_pixel_gap():
    lab = _blank()
    lab[10:20, 5:12] = 1
    lab[10:20, 13:20] = 1  # gap column 12
    out = Close(3)(lab, _probs(lab))
    assert (out[11:19, 12] == 1).all()
    assert (out[lab == 1] == 1).all()  # closing only adds
    n, _ = cv2.connectedComponents((out == 1).astype(np.uint8))
    assert n - 1 == 1


def test_close_does_not_overwrite_other_classes():
    lab = _blank()
    lab[10:20, 5:12] = 1
    lab[10:20, 13:20] = 1
    lab[10:20, 12] = 2  # the "gap" is another class
    out = Close(3, classes=[1])(lab, _probs(lab))
    assert (out[10:20, 12] == 2).all()


# --------------------------------------------------------------------------- FillHoles


def _ring(lab, y0, x0, size, hole, c=1):
    lab[y0 : y0 + size, x0 : x0 + size] = c
    m = (size - hole) // 2
    lab[y0 + m : y0 + m + hole, x0 + m : x0 + m + hole] = 0
    return lab


def test_fill_holes_fills_enclosed_hole():
    lab = _ring(_blank(), 5, 5, 12, 4)
    out = FillHoles()(lab, _probs(lab))
    assert (out[5:17, 5:17] == 1).all()
    assert out[lab == 0].sum() == 16  # exactly the 4x4 hole was filled
    assert out[0, 0] == 0


def test_fill_holes_respects_max_area():
    lab = _ring(_blank(40, 40), 2, 2, 12, 4)  # hole 16 px
    lab = _ring(lab, 20, 20, 14, 2)  # hole 4 px
    out = FillHoles(max_area=5)(lab, _probs(lab))
    assert (out[26:28, 26:28] == 1).all()  # small hole filled
    assert (out[6:10, 6:10] == 0).all()  # large hole kept


def test_fill_holes_leaves_notch_open_to_the_border():
    lab = _blank(20, 20)
    lab[0:12, 4:16] = 1
    lab[0:8, 8:12] = 0  # U shape whose inside opens onto the top edge
    out = FillHoles()(lab, _probs(lab))
    np.testing.assert_array_equal(out, lab)


def test_fill_holes_diagonal_ring_is_closed():
    """An 8-connected ring (diagonal steps) encloses its hole: background is 4-connected."""
    lab = _blank(9, 9)
    for y, x in [(2, 4), (3, 3), (3, 5), (4, 2), (4, 6), (5, 3), (5, 5), (6, 4)]:
        lab[y, x] = 1
    out = FillHoles()(lab, _probs(lab))
    assert out[4, 4] == 1 and out[3, 4] == 1
    assert out[0, 0] == 0


# --------------------------------------------------------------------------- RemoveSmallRegions


def _two_blobs():
    lab = _blank()
    lab[2:4, 2:4] = 1  # 4 px
    lab[10:20, 10:20] = 1  # 100 px
    lab[25:28, 25:28] = 2  # 9 px
    return lab


def test_min_area_in_pixels_per_class():
    lab = _two_blobs()
    out = RemoveSmallRegions(min_px={1: 5})(lab, _probs(lab))
    assert (out[2:4, 2:4] == 0).all() and (out[10:20, 10:20] == 1).all()
    assert (out[25:28, 25:28] == 2).all()  # class 2 has no minimum
    out = RemoveSmallRegions(default_px=10)(lab, _probs(lab))
    assert (out[25:28, 25:28] == 0).all() and (out[10:20, 10:20] == 1).all()
    out = RemoveSmallRegions(min_px={1: 4})(lab, _probs(lab))  # equal to the minimum: kept
    assert (out[2:4, 2:4] == 1).all()


def test_min_area_in_mm2_with_pixel_size():
    lab = _two_blobs()
    # 0.1 mm/px -> 1 px = 0.01 mm²; 0.05 mm² = 5 px
    out = RemoveSmallRegions(min_mm2={1: 0.05, 2: 0.1}, pixel_size_mm=0.1)(lab, _probs(lab))
    assert (out[2:4, 2:4] == 0).all()  # 4 px = 0.04 mm²
    assert (out[25:28, 25:28] == 0).all()  # 9 px = 0.09 mm²
    assert (out[10:20, 10:20] == 1).all()
    assert (
        RemoveSmallRegions(min_px={1: 50}, min_mm2={1: 0.05}, pixel_size_mm=0.1).threshold(1) == 50
    )


def test_min_area_mm2_without_pixel_size_is_a_clear_error():
    lab = _two_blobs()
    with pytest.raises(ValueError, match="pixel size"):
        RemoveSmallRegions(min_mm2={1: 0.05})(lab, _probs(lab))


# --------------------------------------------------------------------------- Compose


def test_compose_applies_steps_in_order():
    """Open then Close is not Close then Open: a 1-px bridge between blobs is cut by opening
    first, but closing first would keep it."""
    lab = _blank()
    lab[10:20, 3:10] = 1
    lab[10:20, 13:20] = 1
    lab[14, 10:13] = 1  # 1-px bridge
    lab[2, 2] = 1  # speck
    p = _probs(lab)
    open_close = Compose([Open(3), Close(3)])(lab, p)
    close_open = Compose([Close(3), Open(3)])(lab, p)
    assert open_close[14, 11] == 0 and close_open[14, 11] == 1
    assert open_close[2, 2] == 0
    np.testing.assert_array_equal(open_close, Close(3)(Open(3)(lab, p), p))
    np.testing.assert_array_equal(Compose([])(lab, p), lab)


def test_build_steps_from_recipe():
    comp = build_steps(
        [
            {"type": "open", "size": 5},
            {"type": "min_area", "min_mm2": {"1": 0.05}, "min_px": {"2": 3}},
        ],
        pixel_size_mm=0.1,
    )
    assert isinstance(comp.steps[0], Open) and comp.steps[0].size == 5
    ma = comp.steps[1]
    assert ma.pixel_size_mm == 0.1 and ma.min_mm2 == {1: 0.05} and ma.min_px == {2: 3.0}
    with pytest.raises(ValueError, match="unknown post-processing step"):
        build_steps([{"type": "dilate"}])
    with pytest.raises(ValueError, match=r"min_px.2 must be a number in 0..1e\+08 px, got '3'"):
        build_steps([{"type": "min_area", "min_px": {"2": "3"}}])  # a number, not text


# --------------------------------------------------------------------------- regions


def test_argmax_labels():
    p = np.zeros((3, 2, 2), np.float32)
    p[2, 0, 0] = p[1, 1, 1] = 1
    lab = argmax_labels(p)
    assert lab.dtype == np.uint8 and lab.tolist() == [[2, 0], [0, 1]]


def test_extract_regions_geometry_and_probabilities():
    lab = _blank(40, 50)
    lab[5:15, 10:30] = 1  # 10 x 20 rectangle, 200 px
    lab[30:33, 40:43] = 2  # 3 x 3, 9 px
    lab[36, 2] = 1  # single pixel
    probs = _probs(lab)
    probs[1, 5:15, 10:30] = 0.6
    probs[1, 7, 12] = 0.97
    regions = extract_regions(lab, probs, NAMES, pixel_size_mm=0.5)
    assert [r.area_px for r in regions] == [200, 9, 1]  # largest first

    r = regions[0]
    assert (r.class_id, r.class_name) == (1, "scratch")
    assert r.bbox == (10, 5, 20, 10)
    assert r.centroid == pytest.approx((19.5, 9.5))
    assert r.max_prob == pytest.approx(0.97) and r.mean_prob == pytest.approx(
        (199 * 0.6 + 0.97) / 200
    )
    assert r.area_mm2 == pytest.approx(200 * 0.25)
    x, y, w, h = r.bbox
    assert len(r.polygon) >= 4
    assert all(x <= px < x + w and y <= py < y + h for px, py in r.polygon)
    assert cv2.contourArea(np.array(r.polygon, np.int32)) == pytest.approx((w - 1) * (h - 1))

    dent = regions[1]
    assert dent.class_name == "dent" and dent.bbox == (40, 30, 3, 3)
    assert dent.centroid == pytest.approx((41.0, 31.0))
    assert regions[2].bbox == (2, 36, 1, 1) and regions[2].polygon == [(2, 36)]


def test_extract_regions_separates_components_and_filters_classes():
    lab = _blank()
    lab[2:5, 2:5] = 1
    lab[20:25, 20:25] = 1
    lab[10, 10] = 2
    regions = extract_regions(lab, _probs(lab), NAMES)
    assert sorted(r.area_px for r in regions) == [1, 9, 25]
    assert all(r.area_mm2 is None for r in regions)
    only_dent = extract_regions(lab, _probs(lab), NAMES, classes=[2])
    assert [(r.class_id, r.area_px) for r in only_dent] == [(2, 1)]
    assert extract_regions(_blank(), _probs(_blank()), NAMES) == []


def test_extract_regions_limits_polygon_points():
    lab = _blank(80, 80)
    cv2.circle(lab, (40, 40), 30, 1, -1)
    r = extract_regions(lab, _probs(lab), NAMES, max_polygon_points=12)[0]
    assert 3 <= len(r.polygon) <= 12
    x, y, w, h = r.bbox
    assert all(x <= px < x + w and y <= py < y + h for px, py in r.polygon)
    # the simplified outline still covers most of the disc
    assert cv2.contourArea(np.array(r.polygon, np.int32)) > 0.85 * r.area_px


def test_a_wrong_step_parameter_names_the_step_and_its_parameters():
    with pytest.raises(ValueError, match=r"postprocess\[1\] \(open\).*size"):
        build_steps([{"type": "min_area", "default_px": 5}, {"type": "open", "radius": 3}])


def test_a_wrong_preprocessing_parameter_names_the_step():
    from inspect_core.runtime.preprocess import build_preprocess

    with pytest.raises(ValueError, match=r"preprocess\[0\] \(clahe\)"):
        build_preprocess([{"type": "clahe", "strength": 9}])
    with pytest.raises(ValueError, match=r"preprocess\[0\]: expected a table"):
        build_preprocess(["clahe"])
