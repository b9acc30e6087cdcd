"""The familiarity model (issue 25 item 1): fitted on training features, its threshold set on
held-out ones to flag at most 2% of images like them, shifted images flagged, the score of one
image, and the stored file (round trip, another model's file refused, damage named)."""

from __future__ import annotations

import numpy as np
import pytest

from inspect_core.cards import sha256_file
from inspect_core.errors import ModelError
from inspect_core.health.familiarity import (
    MAX_FLAGGED,
    conformal_rank,
    familiarity_path,
    fit,
    held_out_estimate,
    ledoit_wolf,
    load,
    recalibrate,
    save,
    threshold_for,
)

D = 24  # values per image, as a tiny U-Net gives (2 x (4 + 8))


def features(n: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Pooled-activation-like features: positive, correlated, log-normal; ``shift`` moves
    every value's log by that much, ``scale`` widens the spread."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(D, D)) / np.sqrt(D)  # the same for every set
    z = rng.normal(size=(n, D)) @ mix * 0.3 * scale
    return np.exp(z + np.linspace(-2, 0, D) + shift)


def test_the_threshold_flags_at_most_two_percent_of_new_images_from_the_same_conditions():
    fam = fit(features(600, 0), features(400, 1))
    assert fam.calibrated and fam.features == D and fam.trained_on == 600
    assert fam.flagged(features(400, 1)) <= MAX_FLAGGED  # the images it was set on
    fresh = fam.flagged(features(4000, 2))  # images no step saw: near 2%, not far above
    assert 0.005 <= fresh <= 0.035


@pytest.mark.parametrize("shift,scale", [(0.6, 1.0), (-0.6, 1.0), (0.0, 3.0)])
def test_shifted_images_are_flagged(shift, scale):
    fam = fit(features(600, 0), features(400, 1))
    assert fam.flagged(features(200, 3, shift, scale)) >= 0.95


def test_one_image_gets_its_familiarity_the_flag_and_the_distance():
    fam = fit(features(600, 0), features(400, 1))
    typical = fam.familiarity_of(features(1, 4)[0])
    assert not typical.unfamiliar and 0.0 < typical.value <= 1.0
    assert typical.distance == pytest.approx(float(fam.distance(features(1, 4))[0]))
    odd = fam.familiarity_of(features(1, 5, shift=2.0)[0])
    assert odd.unfamiliar and odd.value == 0.0 and odd.distance > fam.threshold
    # the share of held-out images farther out: 1 at the centre, falling with the distance
    ladder = [fam.familiarity(d) for d in (0.0, *np.quantile(fam.calibration, [0.25, 0.5, 0.9]))]
    assert ladder[0] == 1.0 and ladder == sorted(ladder, reverse=True)
    assert ladder[2] == pytest.approx(0.5, abs=0.01)
    assert fam.familiarity(fam.threshold) <= MAX_FLAGGED


def test_the_threshold_is_the_conformal_quantile_or_with_few_images_the_farthest():
    d = np.arange(1.0, 101.0)  # 100 held-out distances 1..100
    assert conformal_rank(100, 0.02) == 99  # ceil(101 * 0.98)
    assert threshold_for(d) == 99.0  # flags 1 of these 100: at most 2%
    assert conformal_rank(49, 0.02) == 49 and threshold_for(np.arange(1.0, 50.0)) == 49.0
    assert threshold_for(np.array([3.0, 1.0, 2.0])) == 3.0  # 3 images: none flagged
    fam = fit(features(100, 0), features(10, 1))
    assert not fam.calibrated and fam.threshold == fam.calibration.max()
    with pytest.raises(ValueError, match="no held-out image"):
        threshold_for(np.empty(0))


def test_the_held_out_estimate_sets_the_threshold_on_the_other_fold():
    fam = fit(features(600, 0), features(400, 1))
    held = features(400, 1)
    halves = np.arange(400) % 2
    assert held_out_estimate(fam, held, halves) <= 0.05
    # a fold of images unlike the other is flagged when the threshold is set on the other
    mixed = np.concatenate([features(200, 6), features(200, 7, shift=1.0)])
    assert held_out_estimate(fam, mixed, np.repeat([0, 1], 200)) >= 0.45
    assert held_out_estimate(fam, held, np.zeros(400)) is None  # one fold only


def test_ledoit_wolf_shrinks_little_with_many_images_and_keeps_few_invertible():
    rng = np.random.default_rng(0)
    truth = np.full((10, 10), 0.8) + 0.2 * np.eye(10)  # strongly correlated values
    many = rng.multivariate_normal(np.zeros(10), truth, size=5000)
    cov, weight = ledoit_wolf(many - many.mean(0))
    assert weight < 0.05 and np.allclose(cov, truth, atol=0.1)
    alike = rng.normal(size=(5000, 10))  # uncorrelated, equal spread: the target itself
    assert ledoit_wolf(alike - alike.mean(0))[1] > 0.9
    few = rng.normal(size=(8, 30))  # fewer images than values: singular without shrinkage
    cov, weight = ledoit_wolf(few - few.mean(0))
    assert 0.0 < weight <= 1.0 and np.linalg.eigvalsh(cov).min() > 0


def test_features_of_another_size_or_bad_values_are_refused():
    fam = fit(features(100, 0), features(60, 1))
    with pytest.raises(ValueError, match="features have 12 values, the familiarity model 24"):
        fam.distance(np.ones(12))
    with pytest.raises(ValueError, match="held-out features hold NaN"):
        fit(features(100, 0), np.full((5, D), np.nan))
    with pytest.raises(ValueError, match="training features have 24 values, held-out 12"):
        fit(features(100, 0), np.ones((5, 12)))
    with pytest.raises(ValueError, match="1 training image"):
        fit(features(1, 0), features(5, 1))


def test_the_stored_file_round_trips_and_belongs_to_its_model(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"the model copy")
    fam = fit(features(300, 0), features(100, 1), model_sha256=sha256_file(model))
    path = save(fam, familiarity_path(model))
    assert path == tmp_path / "m.familiarity.npz"
    back = load(path, model)
    assert back.threshold == fam.threshold and back.shrinkage == fam.shrinkage
    assert back.trained_on == 300 and back.model_sha256 == fam.model_sha256
    for a, b in [(back.center, fam.center), (back.whiten, fam.whiten)]:
        assert np.array_equal(a, b)
    assert np.array_equal(back.calibration, fam.calibration)
    x = features(50, 8, shift=0.3)
    assert np.array_equal(back.distance(x), fam.distance(x))
    other = tmp_path / "other.onnx"
    other.write_bytes(b"another model")
    with pytest.raises(ModelError, match="m.familiarity.npz: fitted for the model with sha256"):
        load(path, other)


def test_a_damaged_or_foreign_file_is_refused_naming_it(tmp_path):
    bad = tmp_path / "x.familiarity.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="x.familiarity.npz: not a readable familiarity file"):
        load(bad)
    np.savez(bad, center=np.zeros(3))  # an npz, but not one of ours
    with pytest.raises(ModelError, match="x.familiarity.npz: not a readable familiarity file"):
        load(bad)


def test_recalibrating_for_the_int8_file_keeps_the_fit_and_moves_the_threshold():
    fam = fit(features(300, 0), features(200, 1), model_sha256="a" * 64)
    noisier = features(200, 1) * np.exp(np.random.default_rng(5).normal(0, 0.05, (200, D)))
    own = recalibrate(fam, noisier, "b" * 64)
    assert np.array_equal(own.center, fam.center) and own.model_sha256 == "b" * 64
    assert own.threshold != fam.threshold and own.flagged(noisier) <= MAX_FLAGGED
