"""Segmentation metrics against confusion matrices worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_core.data.metrics import SegmentationScores, confusion

CLASSES = ["background", "scratch", "dent"]
X = 255  # ignore

TARGET = np.array([[0, 0, 1], [1, 1, 2], [2, X, 0]], np.uint8)
PRED = np.array([[0, 1, 1], [1, 0, 2], [1, 2, 0]], np.uint8)
# valid (true, pred) pairs: (0,0) (0,1) (1,1) | (1,1) (1,0) (2,2) | (2,1) -- (0,0)
CM = np.array([[2, 1, 0], [1, 2, 0], [0, 1, 1]])


def test_confusion_by_hand_excludes_ignored_pixels():
    cm = confusion(PRED, TARGET, 3, X)
    np.testing.assert_array_equal(cm, CM)
    assert cm.sum() == 8  # 9 pixels, one ignored (its prediction, 2, is not counted)


def test_per_class_and_summary_by_hand():
    s = SegmentationScores(CLASSES)
    s.update(PRED, TARGET, X)
    pc = s.per_class()
    # background: tp 2, fp 1, fn 1
    assert pc["background"] == pytest.approx(
        dict(dice=4 / 6, iou=2 / 4, precision=2 / 3, recall=2 / 3)
    )
    # scratch: tp 2, fp 2, fn 1
    assert pc["scratch"] == pytest.approx(
        dict(dice=4 / 7, iou=2 / 5, precision=2 / 4, recall=2 / 3)
    )
    # dent: tp 1, fp 0, fn 1
    assert pc["dent"] == pytest.approx(dict(dice=2 / 3, iou=1 / 2, precision=1.0, recall=1 / 2))

    summ = s.summary()
    assert summ["miou"] == pytest.approx((1 / 2 + 2 / 5 + 1 / 2) / 3)
    assert summ["mean_dice"] == pytest.approx((4 / 7 + 2 / 3) / 2)  # background excluded
    assert summ["pixel_accuracy"] == pytest.approx(5 / 8)
    assert summ["images"] == 1
    # one defective image, found; no defect-free image: the false-reject rate is undefined
    assert summ["image_recall"] == 1.0 and summ["false_reject_rate"] is None
    assert set(summ["undefined"]) == {"false_reject_rate"}


def test_accumulates_over_images():
    s = SegmentationScores(CLASSES)
    s.update(PRED, TARGET, X)
    s.update(TARGET.copy(), TARGET, X)  # a perfect image adds to the diagonal only
    np.testing.assert_array_equal(s.cm, CM + np.diag([3, 3, 2]))
    assert s.summary()["pixel_accuracy"] == pytest.approx((5 + 8) / 16)
    assert s.images == 2


def test_image_level_recall_and_false_reject_rate():
    s = SegmentationScores(["background", "defect"])
    z = np.zeros((4, 4), np.uint8)
    defect = z.copy()
    defect[1, 1] = 1
    s.update(defect, defect, X)  # defective, found           -> TP
    s.update(z, defect, X)  # defective, missed                -> FN
    s.update(z, defect, X)  # defective, missed                -> FN
    s.update(defect, z, X)  # clean, rejected                  -> FP
    for _ in range(3):
        s.update(z, z, X)  # clean, passed                     -> TN
    # clean image whose only "defect" prediction lies on ignored pixels: not a false reject
    ignored = z.copy()
    ignored[0, :] = X
    pred = z.copy()
    pred[0, 2] = 1
    s.update(pred, ignored, X)  # -> TN
    # a defect that lies only in ignored pixels is no defect either
    s.update(z, np.where(ignored == X, X, 0).astype(np.uint8), X)  # -> TN
    assert s.image_counts == [1, 2, 1, 5]
    summ = s.summary()
    assert summ["image_recall"] == pytest.approx(1 / 3)
    assert summ["false_reject_rate"] == pytest.approx(1 / 6)
    assert summ["images"] == 9


def test_empty_conventions():
    s = SegmentationScores(["background", "defect"])
    z = np.zeros((3, 3), np.uint8)
    s.update(z, z, X)
    summ = s.summary()
    # a class absent and never predicted scores perfect; no defective image -> recall is
    # undefined (None, with the reason); the clean image was not rejected -> FRR 0
    assert summ["per_class"]["defect"]["iou"] == 1.0
    assert summ["miou"] == 1.0 and summ["mean_dice"] == 1.0
    assert summ["image_recall"] is None and summ["false_reject_rate"] == 0.0
    assert set(summ["undefined"]) == {"image_recall"}


def test_missed_class_scores_zero():
    s = SegmentationScores(["background", "defect"])
    t = np.zeros((2, 2), np.uint8)
    t[0, 0] = 1
    s.update(np.zeros_like(t), t, X)
    pc = s.per_class()["defect"]
    assert pc["dice"] == 0.0 and pc["iou"] == 0.0 and pc["recall"] == 0.0
    assert pc["precision"] == 1.0  # nothing predicted: 0/0
    assert s.summary()["miou"] == pytest.approx((3 / 4 + 0) / 2)
