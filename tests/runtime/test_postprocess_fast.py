"""The fast post-processing and runtime paths give exactly what the plain computations give.

``inspect_core.runtime.postprocess`` labels each class on the bounding box of its pixels, skips
absent classes, hands ``RemoveSmallRegions``'s components on to ``extract_regions`` and takes
the argmax one class at a time; ``inspect_core.runtime.onnx_model`` normalises through a lookup
table and computes the softmax in place. The references below are the straightforward
whole-image versions (what the code did before); regions, label maps, probabilities and
verdicts must be identical, not just close.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from inspect_core.rules.engine import BUILTIN_RULES, RuleContext, build_rules, judge
from inspect_core.runtime.inspector import Inspector
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
from inspect_core.types import Region

NAMES = ["background", "inclusion", "patches", "scratches"]

# --------------------------------------------------------------------------- references


def _kernel(size):
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def ref_open(size, classes=None):
    def step(labels, probs):
        out = labels.copy()
        for c in classes if classes is not None else range(1, probs.shape[0]):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            kept = cv2.morphologyEx(m, cv2.MORPH_OPEN, _kernel(size))
            out[(m == 1) & (kept == 0)] = 0
        return out

    return step


def ref_close(size, classes=None):
    def step(labels, probs):
        out = labels.copy()
        for c in classes if classes is not None else range(1, probs.shape[0]):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            grown = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _kernel(size))
            out[(grown == 1) & (out == 0)] = c
        return out

    return step


def ref_fill_holes(max_area=0, classes=None):
    def step(labels, probs):
        out = labels.copy()
        for c in classes if classes is not None else range(1, probs.shape[0]):
            m = (labels == c).astype(np.uint8)
            if not m.any():
                continue
            inv = np.pad(1 - m, 1, constant_values=1)
            n, comp, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
            border = comp[0, 0]
            for i in range(1, n):
                if i == border or (max_area and stats[i, cv2.CC_STAT_AREA] > max_area):
                    continue
                hole = comp[1:-1, 1:-1] == i
                out[hole & (out == 0)] = c
        return out

    return step


def ref_remove_small(step: RemoveSmallRegions):
    def run(labels, probs):
        out = labels.copy()
        for c in step.classes if step.classes is not None else range(1, probs.shape[0]):
            t = step.threshold(c)
            m = (labels == c).astype(np.uint8)
            if t <= 0 or not m.any():
                continue
            n, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
            small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < t]
            if small:
                out[np.isin(comp, small)] = 0
        return out

    return run


def ref_extract(
    labels, probs, class_names, classes=None, pixel_size_mm=None, max_polygon_points=64
):
    regions = []
    for c in list(classes) if classes is not None else range(1, probs.shape[0]):
        m = (labels == c).astype(np.uint8)
        if not m.any():
            continue
        n, comp, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            sub = comp[y : y + h, x : x + w] == i
            p = probs[c, y : y + h, x : x + w][sub]
            contours, _ = cv2.findContours(
                sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            poly = max(contours, key=cv2.contourArea) if contours else np.zeros((0, 1, 2), int)
            if len(poly) > max_polygon_points:
                eps = 0.005 * cv2.arcLength(poly, True)
                while len(poly) > max_polygon_points:
                    poly = cv2.approxPolyDP(poly, eps, True)
                    eps *= 1.5
            regions.append(
                Region(
                    class_id=c,
                    class_name=class_names[c],
                    bbox=(x, y, w, h),
                    area_px=area,
                    centroid=(float(cents[i][0]), float(cents[i][1])),
                    max_prob=float(p.max()),
                    mean_prob=float(p.mean()),
                    polygon=[(int(px) + x, int(py) + y) for px, py in poly.reshape(-1, 2)],
                    area_mm2=area * pixel_size_mm**2 if pixel_size_mm else None,
                )
            )
    regions.sort(key=lambda r: -r.area_px)
    return regions


def ref_softmax(logits, axis=1):
    z = logits - logits.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def _reference(steps):
    """The reference of each fast step (same parameters)."""
    out = []
    for s in steps:
        if isinstance(s, Open):
            out.append(ref_open(s.size, s.classes))
        elif isinstance(s, Close):
            out.append(ref_close(s.size, s.classes))
        elif isinstance(s, FillHoles):
            out.append(ref_fill_holes(s.max_area, s.classes))
        else:
            out.append(ref_remove_small(s))
    return out


# --------------------------------------------------------------------------- synthetic maps


def _probs(seed: int, h: int, w: int, sigma: float, bias: float, ties: bool = False):
    """Smooth random logits (blobs of every class, many touching the border), softmaxed."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(NAMES), h, w)).astype(np.float32)
    if sigma:
        logits = np.stack([cv2.GaussianBlur(z, (0, 0), sigma) for z in logits]) * (sigma * 2)
    logits[0] += bias
    p = ref_softmax(logits[None])[0]
    if ties:  # coarse probabilities: exact ties between classes are common
        p = (np.round(p * 8) / 8).astype(np.float32)
    return np.ascontiguousarray(p)


MAPS = [  # seed, h, w, sigma, background bias, ties
    (0, 200, 200, 2.0, 1.5, False),
    (1, 200, 200, 4.0, 3.0, False),
    (2, 200, 200, 1.0, 0.0, False),
    (3, 37, 53, 1.5, 0.5, False),
    (4, 64, 64, 0.0, 0.0, False),
    (5, 1, 17, 1.0, 0.0, False),
    (6, 13, 1, 1.0, 0.0, False),
    (7, 90, 130, 2.0, 0.0, True),
    (8, 31, 29, 0.0, 1.0, True),
    (9, 128, 96, 3.0, 5.0, False),
    (10, 2, 2, 0.0, 0.0, False),
    (11, 257, 131, 6.0, 2.0, False),
]

STEPS = [
    [Open(3), FillHoles(max_area=200), RemoveSmallRegions(default_px=15)],  # the steel recipe
    [Open(3), RemoveSmallRegions(default_px=15)],  # bench/station.py
    [Close(3), FillHoles(), RemoveSmallRegions(min_px={1: 30.0}, classes=[1, 2])],
    [Open(5, classes=[2, 3]), Close(4), RemoveSmallRegions(default_px=8, classes=[0, 1, 3])],
    [
        Open(2),
        RemoveSmallRegions(default_px=40),
        Close(5),
    ],  # RemoveSmallRegions not last: nothing handed over
    [RemoveSmallRegions(min_mm2={1: 0.5, 3: 2.0}, pixel_size_mm=0.1, default_px=3)],
    [FillHoles(max_area=10, classes=[3, 1]), Open(1)],
    [],
]


@pytest.fixture(params=[1, 4], ids=["cv1thread", "cv4threads"])
def cv_threads(request):
    """OpenCV's labelling runs in parallel stripes with several threads: same answers."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(request.param)
    yield
    cv2.setNumThreads(before)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", MAPS, ids=lambda c: f"map{c[0]}")
def test_argmax_labels_matches_numpy(case):
    p = _probs(*case)
    np.testing.assert_array_equal(argmax_labels(p), p.argmax(0).astype(np.uint8))
    p64 = p.astype(np.float64)
    np.testing.assert_array_equal(argmax_labels(p64), p64.argmax(0).astype(np.uint8))


def test_argmax_labels_nan_and_odd_inputs():
    p = _probs(7, 90, 130, 2.0, 0.0, True)
    p[2, 5, 7] = np.nan
    p[0, 9, 9] = np.nan
    np.testing.assert_array_equal(argmax_labels(p), p.argmax(0).astype(np.uint8))
    flipped = p[:, ::-1]  # not contiguous
    np.testing.assert_array_equal(argmax_labels(flipped), flipped.argmax(0).astype(np.uint8))
    one = p[:1]
    np.testing.assert_array_equal(argmax_labels(one), np.zeros(p.shape[1:], np.uint8))


@pytest.mark.parametrize("case", MAPS, ids=lambda c: f"map{c[0]}")
def test_each_step_matches_whole_image_reference(case, cv_threads):
    p = _probs(*case)
    labels = p.argmax(0).astype(np.uint8)
    steps = [
        Open(3),
        Open(2),
        Open(5, classes=[3, 1]),
        Close(3),
        Close(4),
        Close(7, classes=[2]),
        FillHoles(),
        FillHoles(max_area=12),
        FillHoles(max_area=1, classes=[1]),
        RemoveSmallRegions(default_px=15),
        RemoveSmallRegions(min_px={2: 50.0}, classes=[0, 2, 3]),
    ]
    for step, ref in zip(steps, _reference(steps)):
        got, want = step(labels, p), ref(labels, p)
        np.testing.assert_array_equal(got, want, err_msg=repr(step))
        labels = want  # feed every step a map the previous steps have shaped


@pytest.mark.parametrize("case", MAPS, ids=lambda c: f"map{c[0]}")
@pytest.mark.parametrize(
    "steps", STEPS, ids=lambda s: "+".join(type(x).__name__ for x in s) or "none"
)
def test_compose_and_regions_match_reference(case, steps, cv_threads):
    p = _probs(*case)
    labels, found = Compose(steps).run(argmax_labels(p), p)
    want = p.argmax(0).astype(np.uint8)
    for ref in _reference(steps):
        want = ref(want, p)
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(Compose(steps)(argmax_labels(p), p), want)
    for kw in ({}, {"classes": [3, 1], "pixel_size_mm": 0.25}, {"max_polygon_points": 6}):
        got = extract_regions(labels, p, NAMES, components=found, **kw)
        assert got == ref_extract(want, p, NAMES, **kw)
        assert extract_regions(labels, p, NAMES, **kw) == got  # labelled here instead


def test_regions_keep_order_of_equal_areas_and_blobs_at_odd_offsets():
    """Ties in area keep OpenCV's component order; boxes starting at odd rows and columns."""
    lab = np.zeros((41, 43), np.uint8)
    for y, x in [(1, 1), (1, 9), (3, 5), (7, 2), (7, 14), (13, 3), (19, 31), (33, 37), (39, 41)]:
        lab[y : y + 2, x : x + 2] = 1  # 4 px each
        lab[y + 1, x + 1] = 3 if (y + x) % 4 == 2 else 1
    lab[20:23, 1:4] = 2
    lab[21, 2] = 0  # a one-pixel hole
    p = np.full((4, *lab.shape), 0.1, np.float32)
    for k in range(4):
        p[k][lab == k] = 0.7
    p[1, 3, 5] = p[1, 33, 37] = 0.9
    for steps in (
        [Open(1), FillHoles(), RemoveSmallRegions(default_px=2)],
        [RemoveSmallRegions(default_px=4)],
    ):
        labels, found = Compose(steps).run(lab, p)
        want = lab
        for ref in _reference(steps):
            want = ref(want, p)
        np.testing.assert_array_equal(labels, want)
        assert extract_regions(labels, p, NAMES, components=found) == ref_extract(want, p, NAMES)


RULES = [
    {"type": "min_area", "min": 40},
    {"type": "review_band", "low": 0.5, "high": 0.7},
    {"type": "max_count", "classes": ["scratches"], "max": 2, "decision": "REVIEW"},
]


@pytest.mark.parametrize("case", MAPS, ids=lambda c: f"map{c[0]}")
def test_inspector_verdict_matches_reference(case):
    """``Inspector.post_process`` and ``judge`` (argmax, steps, regions, coverage, rules)
    against the reference chain, on the steel recipe's post-processing."""
    p = _probs(*case)
    spec = [
        {"type": "open", "size": 3},
        {"type": "fill_holes", "max_area": 200},
        {"type": "min_area", "default_px": 15},
    ]
    rules = build_rules(RULES, BUILTIN_RULES, NAMES)
    recipe = SimpleNamespace(pixel_size_mm=None, coverage_classes=["patches", "background"])
    fake = SimpleNamespace(
        post=build_steps(spec), classes=NAMES, region_ids=[1, 2, 3], recipe=recipe, rules=rules
    )
    got = Inspector.judge(fake, None, Inspector.post_process(fake, p))

    labels = p.argmax(0).astype(np.uint8)
    for ref in _reference(build_steps(spec).steps):
        labels = ref(labels, p)
    regions = ref_extract(labels, p, NAMES, [1, 2, 3])
    coverage = {
        c: float((labels == NAMES.index(c)).sum()) / labels.size for c in recipe.coverage_classes
    }
    want = judge(RuleContext(regions, labels, NAMES), rules, coverage)
    np.testing.assert_array_equal(got.labels, labels)
    assert got.verdict == want
    assert got.verdict.to_dict() == want.to_dict()
