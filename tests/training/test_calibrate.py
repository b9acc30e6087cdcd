"""Fitting the class prior correction (inspect_core.training.calibration) on synthetic
posteriors."""

from __future__ import annotations

import numpy as np

from inspect_core.training.calibration import (
    Pixels,
    choose,
    confusion_for,
    fit_class_bias,
    fit_shared_bias,
    miou,
    two_fold_miou,
)


def _overcalling(seed=0, images=8, shift=2.0):
    """Images whose 'network' puts ``shift`` nats too much on class 1 (a rare defect) and
    something sensible on class 2: the kind of prior a defect-centred crop teaches."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(images):
        mask = np.zeros((40, 40), np.uint8)
        y, x = rng.integers(0, 30, 2)
        mask[y : y + 8, x : x + 8] = 1
        mask[:4] = 2
        mask[-1] = 255  # ignored
        onehot = np.eye(3, dtype=np.float32)[np.minimum(mask, 2)].transpose(2, 0, 1)
        logits = 2.5 * onehot + rng.normal(0, 1.0, onehot.shape).astype(np.float32)
        logits[1] += shift
        p = np.exp(logits - logits.max(0))
        items.append((p / p.sum(0), mask))
    return items


def test_fit_removes_the_overcalling_and_raises_miou():
    px = Pixels.gather(_overcalling(), step=1)
    assert not (px.target == 255).any()  # ignored pixels dropped
    zero = np.zeros(3, np.float32)
    before = miou(confusion_for(px, zero))
    bias = fit_class_bias(px)
    assert bias[0] == 0
    assert bias[1] <= -1.0  # the injected prior is taken back
    assert miou(confusion_for(px, bias)) > before + 0.05


def test_the_fit_takes_back_exactly_the_injected_shift():
    # the mIoU-best offsets of an unshifted network need not be zero (IoU is not accuracy),
    # but a shift of the class-1 prior by 2 nats must move its offset by -2
    b0 = fit_class_bias(Pixels.gather(_overcalling(shift=0.0), step=1))
    b2 = fit_class_bias(Pixels.gather(_overcalling(shift=2.0), step=1))
    assert abs((b2[1] - b0[1]) + 2.0) <= 0.5
    assert abs(b2[2] - b0[2]) <= 0.5


def test_two_fold_estimate_sits_between_uncalibrated_and_fitted():
    px = Pixels.gather(_overcalling(images=10), step=1)
    before = miou(confusion_for(px, np.zeros(3, np.float32)))
    fitted = miou(confusion_for(px, fit_class_bias(px)))
    cv = two_fold_miou(px)
    assert before < cv <= fitted + 1e-9


def test_pixel_step_subsamples_both_axes():
    items = _overcalling(images=2)
    full, half = Pixels.gather(items, step=1), Pixels.gather(items, step=2)
    assert abs(len(half.target) * 4 - len(full.target)) <= 2 * 40
    assert set(np.unique(half.image)) == {0, 1}


def test_shared_offset_moves_every_defect_class_together():
    px = Pixels.gather(_overcalling(), step=1)
    b = fit_shared_bias(px)
    assert b[0] == 0 and b[1] == b[2] < 0
    assert miou(confusion_for(px, b)) > miou(confusion_for(px, np.zeros(3, np.float32)))


def test_choose_keeps_a_correction_only_when_held_out_images_gain():
    px = Pixels.gather(_overcalling(images=12), step=1)
    c = choose(px)
    assert c.mode in ("shared", "per_class")
    assert c.two_fold[c.mode] == max(c.two_fold.values()) > c.before
    fit = {"shared": fit_shared_bias, "per_class": fit_class_bias}[c.mode]
    np.testing.assert_array_equal(c.bias, fit(px))


def test_choose_refuses_a_correction_that_does_not_generalise():
    # every image over-calls class 1 in a different direction: no fixed offset helps others
    items = []
    for i, (p, m) in enumerate(_overcalling(images=8, shift=0.0)):
        logp = np.log(p)
        logp[1] += 3.0 if (i // 4) % 2 else -3.0  # the two folds disagree
        q = np.exp(logp - logp.max(0))
        items.append((q / q.sum(0), m))
    c = choose(Pixels.gather(items, step=1))
    assert c.mode is None and not c.bias.any()


def test_two_fold_returns_the_biases_each_fold_is_scored_with():
    """The estimate is exactly fold 0 scored with the offsets fitted on fold 1 and the other way
    round, and the biases returned are those: what fit_prior scores the headline with."""
    from inspect_core.training.calibration import image_folds, two_fold

    px = Pixels.gather(_overcalling(images=12), step=1)
    est, (b0, b1) = two_fold(px, fit_class_bias)
    fold = image_folds(12)[px.image]
    assert list(image_folds(12)) == [0] * 4 + [1] * 4 + [0] * 4
    np.testing.assert_array_equal(b0, fit_class_bias(px.subset(fold == 1)))
    np.testing.assert_array_equal(b1, fit_class_bias(px.subset(fold == 0)))
    cm = confusion_for(px.subset(fold == 0), b0) + confusion_for(px.subset(fold == 1), b1)
    assert est == miou(cm) == two_fold_miou(px, fit_class_bias)
    c = choose(px)
    assert c.mode is not None and len(c.fold_bias) == 2


def test_fit_prior_headline_scores_each_image_with_the_other_folds_offsets(tmp_path, monkeypatch):
    """training/fit_prior.py's headline: no image is scored with offsets fitted on it. A fake
    model whose prediction follows the bias: fold 0's offsets turn every pixel background."""
    from dataclasses import dataclass

    from script_kit import load_script
    from seg_kit import write_dataset

    from inspect_core.data.datasets import open_dataset
    from inspect_core.data.metrics import SegmentationScores
    from inspect_core.training.calibration import Choice

    script = load_script("fit_prior", monkeypatch)

    @dataclass(frozen=True)
    class Meta:
        class_bias: tuple = ()

    class Fake:
        def __init__(self, path, verify=True, variant="fp32"):
            self.meta = Meta()

        def probabilities(self, img):
            sq = (img >= 128).astype(np.float32)
            p = np.stack([0.9 - 0.8 * sq, 0.1 + 0.8 * sq])  # the truth, roughly
            return p * np.exp(np.asarray(self.meta.class_bias or (0, 0)))[:, None, None]

    monkeypatch.setattr(script, "OnnxModel", Fake)
    ds = open_dataset(write_dataset(tmp_path / "d", {"val": 8}), "val")
    c = Choice("shared", np.zeros(2), 0.5, {}, {}, (np.array([0.0, -50.0]), np.zeros(2)))
    got = script.cross_fitted(tmp_path / "m.onnx", ds, c, None)
    want = SegmentationScores(ds.classes)
    for i in range(8):
        img, mask = ds.load(i)
        pred = np.zeros_like(mask) if i < 4 else (img >= 128).astype(np.uint8)
        want.update(pred, mask, ds.ignore_index)
    assert got == want.summary()
    assert got["per_class"]["square"]["recall"] < 0.6  # fold 0 really lost its squares
