"""Detection scores (image/pixel AUROC, AUPRO, F1 max) against slow, plainly written
references on small random cases, and on cases whose answer is known by hand."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from inspect_core.data.detection_metrics import aupro, auroc, detection_scores, f1_max


def _auroc_pairs(scores, positive):
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _f1_slow(scores, positive):
    best = 0.0
    for t in set(scores):
        called = [s >= t for s in scores]
        tp = sum(c and p for c, p in zip(called, positive))
        fp = sum(c and not p for c, p in zip(called, positive))
        fn = sum(p and not c for c, p in zip(called, positive))
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_auroc_is_the_share_of_pairs_ranked_right_ties_half(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    assert auroc(scores, positive) == pytest.approx(_auroc_pairs(scores, positive))


@pytest.mark.parametrize("seed", range(5))
def test_f1_max_is_the_best_f1_over_every_threshold(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, 30).astype(float)
    positive = rng.random(30) < 0.5
    assert f1_max(scores, positive) == pytest.approx(_f1_slow(list(scores), list(positive)))


def test_one_class_only_gives_no_score_rather_than_a_number():
    assert auroc(np.array([0.1, 0.9]), np.array([False, False])) is None
    assert f1_max(np.array([0.1, 0.9]), np.array([False, False])) is None


def _aupro_slow(maps, masks, limit=0.3):
    regions = []
    for i, m in enumerate(masks):
        n, lab = cv2.connectedComponents((m > 0).astype(np.uint8), connectivity=8)
        regions += [(i, lab == k) for k in range(1, n)]
    normal = sum(int((m == 0).sum()) for m in masks)
    points = [(0.0, 0.0)]
    for t in sorted({float(v) for a in maps for v in a.ravel()}, reverse=True):
        fpr = sum(int(((a >= t) & (m == 0)).sum()) for a, m in zip(maps, masks)) / normal
        pro = np.mean([(maps[i][r] >= t).mean() for i, r in regions])
        points.append((fpr, pro))
    fine = np.linspace(0, limit, 30001)
    xs, ys = zip(*points)
    return float(np.trapezoid(np.interp(fine, xs, ys), fine) / limit)


@pytest.mark.parametrize("seed", range(4))
def test_aupro_matches_a_slow_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    maps, masks = [], []
    for _ in range(3):
        mask = np.zeros((12, 12), np.uint8)
        mask[2:5, 2:6] = 1
        mask[8:10, 7:11] = 2 if seed % 2 else 0
        amap = rng.random((12, 12)) + 0.8 * (mask > 0)
        maps.append(np.round(amap, 2))
        masks.append(mask)
    assert aupro(maps, masks) == pytest.approx(_aupro_slow(maps, masks), abs=2e-4)


def test_aupro_weighs_each_region_alike_whatever_its_size():
    mask = np.zeros((40, 40), np.uint8)
    mask[:20, :20] = 1  # large region, found first
    mask[35, 35] = 1  # one-pixel region, scored below every good pixel
    amap = np.full((40, 40), 0.5)
    amap[:20, :20] = 1.0
    amap[35, 35] = 0.0
    assert aupro([amap], [mask]) == pytest.approx(0.5)
    assert aupro([amap], [mask], limit=1.0) < 0.6  # the small one only at the very end


def test_perfect_and_inverted_maps():
    mask = np.zeros((10, 10), np.uint8)
    mask[3:6, 3:6] = 1
    good = mask.astype(float)
    assert aupro([good], [mask]) == pytest.approx(1.0)
    assert aupro([1.0 - good], [mask]) == pytest.approx(0.0)


def test_detection_scores_of_a_small_set():
    good = np.zeros((8, 8), np.uint8)
    bad = good.copy()
    bad[2:4, 2:4] = 3  # any non-background class is a defect
    bad[7, 7] = 255  # ignored: counts nowhere
    amap_good = np.full((8, 8), 0.1)
    amap_bad = np.full((8, 8), 0.1)
    amap_bad[2:4, 2:4] = 0.9
    amap_bad[7, 7] = 5.0  # the ignored pixel's score must not decide the pixel scores
    s = detection_scores([amap_good, amap_bad], [good, bad])
    assert s.images == 2 and s.defective_images == 1
    assert s.pixel_auroc == pytest.approx(1.0)
    assert s.aupro == pytest.approx(1.0)
    assert s.image_auroc == pytest.approx(1.0) and s.f1_max == pytest.approx(1.0)
    assert set(s.as_json()) >= {"image_auroc", "pixel_auroc", "aupro", "f1_max"}


def test_no_defect_anywhere_gives_none_not_a_score():
    masks = [np.zeros((4, 4), np.uint8)] * 2
    s = detection_scores([np.random.default_rng(0).random((4, 4))] * 2, masks)
    assert s.image_auroc is None and s.pixel_auroc is None and s.aupro is None


def test_a_map_of_another_size_is_refused_with_its_index():
    with pytest.raises(ValueError, match="image 1"):
        detection_scores([np.zeros((4, 4)), np.zeros((4, 5))], [np.zeros((4, 4), np.uint8)] * 2)
