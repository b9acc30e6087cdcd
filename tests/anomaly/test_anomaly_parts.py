"""The parts of a good-only model that need no training: the threshold, the split of the good
images, the feature sources' rule, the coreset and the network's distance."""

from __future__ import annotations

import numpy as np
import pytest
from anomaly_kit import make_dataset, make_encoder, make_mvtec

from inspect_core.anomaly.sources import parse_source, resolve_source
from inspect_core.anomaly.split import split_good
from inspect_core.anomaly.threshold import false_reject_rate, fit_threshold
from inspect_core.errors import DataError, InspectError


@pytest.mark.parametrize(("n", "target", "above"), [(100, 0.01, 1), (100, 0.0, 0), (50, 0.05, 2)])
def test_threshold_rejects_at_most_the_target_share(n, target, above):
    scores = np.random.default_rng(0).random(n)
    t = fit_threshold(scores, float(np.median(scores)) / 2, target)
    assert int((scores > t.value).sum()) == above
    assert t.fit_frr == false_reject_rate(scores, t.value) <= target
    # a pixel at the good images' median pixel score has logit -4
    assert (float(np.median(scores)) / 2 - t.value) / t.scale == pytest.approx(-4.0)


def test_threshold_on_held_out_good_images_hits_its_target():
    rng = np.random.default_rng(1)
    fit, unseen = rng.normal(1.0, 0.1, 2000), rng.normal(1.0, 0.1, 20000)
    t = fit_threshold(fit, 0.5, 0.01)
    assert false_reject_rate(unseen, t.value) == pytest.approx(0.01, abs=0.005)


def test_split_by_groups_keeps_each_group_in_one_part(tmp_path):
    data = make_dataset(tmp_path / "d", groups=4, good=5, defects=2)
    split = split_good(data, None, None)
    assert split.groups == {"bank": ["g0", "g1"], "fit": ["g2"], "check": ["g3"]}
    assert all("_g3_" in s.image.name for s in split.check.samples)
    assert len(split.bank) == 10 and len(split.fit) == 5 and len(split.check) == 7
    assert all(s.mask is not None for s in split.bank.samples)  # good: masks all background
    chosen = split_good(data, None, "g0")
    assert chosen.groups == {"bank": ["g1", "g2"], "fit": ["g3"], "check": ["g0"]}
    with pytest.raises(DataError, match="g9 not among the groups"):
        split_good(data, None, "g9")


def test_split_needs_three_groups(tmp_path):
    data = make_dataset(tmp_path / "d", groups=2, good=4, defects=0)
    with pytest.raises(DataError, match="needs at least 3"):
        split_good(data, None, None)


def test_split_by_image_without_groups(tmp_path):
    data = make_dataset(tmp_path / "d", groups=0, good=20, defects=3)
    split = split_good(data, None, None, seed=0)
    assert (len(split.bank), len(split.fit)) == (14, 3)
    assert len(split.check) == 3 + 3  # 3 good, and every defect image
    names = [s.image.name for part in (split.bank, split.fit) for s in part.samples]
    assert len(set(names)) == 17


def test_split_of_the_mvtec_layout(tmp_path):
    split = split_good(make_mvtec(tmp_path / "m", good=10, defects=2), None, None)
    assert len(split.bank) + len(split.fit) + 2 == 10  # 2 train/good kept back to check
    assert len(split.check) == 2 + 2 + 2  # + test/good + test/blob
    assert sum(s.mask is not None for s in split.check.samples) == 2


def test_feature_sources(tmp_path):
    assert parse_source("filters") == ("filters", None)
    for bad in ("imagenet", "encoder", "random:x"):
        with pytest.raises(InspectError, match="unknown feature source"):
            parse_source(bad)
    enc = make_encoder(tmp_path / "steel.pt", "neu-steel")
    src = resolve_source(f"encoder:{enc}", "magnetic-tile", tmp_path / "magnetic-tile")
    assert src.trained_on == "neu-steel"
    assert src.card_entry("magnetic-tile")["label_leak"] == "saw no defect of magnetic-tile"
    with pytest.raises(InspectError, match="trained on neu-steel"):
        resolve_source(f"encoder:{enc}", "neu-steel", tmp_path / "neu")


def test_greedy_coreset_keeps_the_rare_patches():
    import torch

    from inspect_core.training.anomaly.memory import greedy_coreset

    common = torch.randn(1000, 8) * 0.01
    rare = torch.full((3, 8), 5.0) + torch.arange(3.0)[:, None]
    keep = greedy_coreset(torch.cat([common, rare]), 10, seed=0)
    assert len(set(keep.tolist())) == 10
    assert {1000, 1001, 1002} <= set(keep.tolist())


def test_distance_in_the_graph_is_the_nearest_neighbour():
    import torch
    from torch import nn

    from inspect_core.training.anomaly.network import AnomalyNet

    bank = torch.randn(300, 6)
    net = AnomalyNet(nn.Identity(), bank, torch.zeros(6), torch.ones(6), chunk=64)
    q = torch.randn(50, 6)
    expect = torch.cdist(q, bank).min(1).values
    torch.testing.assert_close(net.nearest(q), expect, atol=1e-4, rtol=1e-4)


def test_labelled_defects_lower_the_threshold_only_as_far_as_they_pay():
    from inspect_core.anomaly.threshold import REFINE_FRR_FACTOR, refine_threshold

    good = np.arange(1.0, 101.0)  # 100 good images scoring 1..100
    t = fit_threshold(good, 0.0, 0.01)  # rejects 1 of them: the threshold is 99
    assert t.value == 99.0
    # three defects score 98.5, 97.5 and 96.5: catching them costs 2-4 good images at most
    refined, how = refine_threshold(t, good, np.array([98.5, 97.5, 96.5, 200.0]))
    assert refined.value < 96.5 and how.caught_after == 1.0 and how.caught_before == 0.25
    assert how.fit_frr_after <= REFINE_FRR_FACTOR * t.target_frr
    assert refined.fit_frr == false_reject_rate(good, refined.value)
    # a defect scoring like the median good image is not worth half the good images
    refined, how = refine_threshold(t, good, np.array([50.0, 200.0]))
    assert refined.value >= 94.0 and how.fit_frr_after <= 0.05 and how.caught_after == 0.5
    # defects already caught: nothing changes; the threshold is never raised
    refined, how = refine_threshold(t, good, np.array([150.0, 300.0]))
    assert refined.value == t.value and how.after == how.before
    with pytest.raises(ValueError, match="no labelled defect"):
        refine_threshold(t, good, np.array([]))
