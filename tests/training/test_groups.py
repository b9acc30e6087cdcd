"""Whole groups (sequence, tile, lot) held out by name: what is trained on, what picks the
checkpoint, what gives the same-distribution score, and what later choices are decided on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seg_kit import write_dataset

from inspect_core.data.datasets import open_dataset
from inspect_core.data.groups import group_names, with_groups
from inspect_core.errors import DataError
from inspect_core.training.calibration import (
    Pixels,
    choose,
    confusion_for,
    group_folds,
    miou,
    two_fold_miou,
)
from inspect_core.training.holdout import held_out_dataset, open_splits, seen_dataset

PATTERN = "^(seq[A-C])_"


@pytest.fixture
def three_sequences(tmp_path):
    """Train: 4 images of each of seqA, seqB, seqC; val: 2 of seqA and 2 of seqC."""
    train = [f"seq{g}_{i}" for g in "ABC" for i in range(4)]
    val = [f"seq{g}_{i + 10}" for g in "AC" for i in range(2)]
    return write_dataset(tmp_path / "d", {"train": train, "val": val})


def _stems(ds):
    return {s.image.stem for s in ds.samples}


def test_named_groups_validate_and_are_never_trained_on(three_sequences):
    log: list[str] = []
    s = open_splits(str(three_sequences), 0, log.append, PATTERN, ["seqA"])
    assert _stems(s.val) == {"seqA_0", "seqA_1", "seqA_2", "seqA_3", "seqA_10", "seqA_11"}
    assert _stems(s.train) == {f"seq{g}_{i}" for g in "BC" for i in range(4)}
    assert _stems(s.seen) == {"seqC_10", "seqC_11"}  # val split, a trained group
    assert not _stems(s.val) & _stems(s.train) and not _stems(s.seen) & _stems(s.train)
    how = s.holdout
    assert how.source == "unseen groups" and how.unseen and how.groups == ["seqA"]
    assert "val/images/seqA_10.png" in how.images and "train/images/seqA_0.png" in how.images
    assert set(how.seen_images) == {"val/images/seqC_10.png", "val/images/seqC_11.png"}
    assert "6 images of the groups seqA" in log[0] and "training on 8" in log[0]


def test_unknown_or_all_groups_are_refused(three_sequences):
    with pytest.raises(DataError, match=r"no such group.*seqA \(6 images\), seqB \(4 images\)"):
        open_splits(str(three_sequences), 0, print, PATTERN, ["seqZ"])
    with pytest.raises(DataError, match="every group"):
        open_splits(str(three_sequences), 0, print, PATTERN, ["seqA", "seqB", "seqC"])


def test_groups_pattern_from_the_command_line_is_checked(three_sequences):
    ds = open_dataset(three_sequences, "train")
    with pytest.raises(DataError, match="--groups.*capture groups"):
        with_groups(ds, "^seq")
    with pytest.raises(DataError, match="no groups pattern.*--groups"):
        group_names(ds)
    with pytest.raises(DataError, match="does not match 4 image"):
        group_names(with_groups(ds, "^(seq[AB])_"))


def test_later_choices_are_made_on_the_held_out_images(three_sequences):
    s = open_splits(str(three_sequences), 0, print, PATTERN, ["seqB"])
    card = {"validation_split": s.holdout.to_dict(), "training": {"groups": PATTERN}}
    card = json.loads(json.dumps(card))  # as read back from model.json
    held = held_out_dataset(card, str(three_sequences))
    assert _stems(held) == _stems(s.val) and group_names(held) == ["seqB"] * 4
    assert _stems(seen_dataset(card, str(three_sequences))) == _stems(s.seen)
    # a card of a plain val split: the val split; no seen list: none
    plain = {"validation_split": {"source": "val split"}}
    assert len(held_out_dataset(plain, str(three_sequences))) == 4
    assert seen_dataset(plain, str(three_sequences)) is None
    (three_sequences / "train" / "images" / "seqB_0.png").unlink()
    with pytest.raises(DataError, match="seqB_0.png.*give the dataset the model was trained on"):
        held_out_dataset(card, str(three_sequences))


def test_prior_correction_is_measured_across_groups():
    assert group_folds(["b", "a", "b", "c"]).tolist() == [1, 0, 1, 0]
    assert group_folds(["a", "a"]) is None  # one group: blocks of images instead
    # group a (images 0-7) under-predicts class 1 and wants a large offset; group b (8-15) is
    # calibrated and that offset ruins it. Blocks of 4 images put both groups on each side and
    # promise what the offset is worth on the same groups; group folds show what it is worth
    # on a group it was not fitted on.
    rng = np.random.default_rng(0)
    n = 200
    image = np.repeat(np.arange(16), n).astype(np.int32)
    target = rng.integers(0, 2, image.size)
    group_b = image >= 8
    margin = np.where(group_b, 0.5, 2.0) + rng.normal(0, 0.3, image.size)
    logit1 = np.where(target == 1, margin, -margin) + np.where(group_b, 0.0, -2.5)
    px = Pixels(np.stack([np.zeros(image.size), logit1]).astype(np.float32), target, image)
    by_group = two_fold_miou(px, image_fold=group_folds(["a"] * 8 + ["b"] * 8))
    by_block = two_fold_miou(px)
    before = miou(confusion_for(px, np.zeros(2, np.float32)))
    assert by_block > before + 0.02 > by_group + 0.1  # blocks would ship it; groups refuse it
    assert choose(px, group_folds(["a"] * 8 + ["b"] * 8)).mode is None


def _scores(miou, images):
    return {"miou": miou, "mean_dice": miou + 0.05, "images": images}


def test_card_headlines_the_unseen_groups_and_says_what_each_number_is_on(tmp_path):
    from inspect_core.training.model_card import headline, save_card

    unseen = {
        "validation": _scores(0.61, 101),
        "validation_seen_groups": _scores(0.74, 50),
        "validation_split": {"unseen": True, "groups": ["0006R0"], "rule": "whole groups ..."},
    }
    h = headline(unseen)
    assert h["unseen_groups"]["miou"] == 0.61 and h["unseen_groups"]["groups"] == ["0006R0"]
    assert h["same_distribution"]["miou"] == 0.74 and h["same_distribution"]["images"] == 50
    plain = {
        "validation": _scores(0.82, 369),
        "validation_split": {"source": "val split", "rule": "the dataset's val split"},
    }
    h = headline(plain)
    assert h["unseen_groups"] is None and "--val-groups" in h["why_no_unseen"]
    assert h["same_distribution"]["miou"] == 0.82
    plain["groups_note"] = "file names name no group"
    assert headline(plain)["why_no_unseen"] == "file names name no group"
    # trained on every group: the settings run's unseen score, said to be an estimate
    est = {"miou": 0.52, "groups": ["tile2"], "what": "estimate: the same settings ..."}
    h = headline({**plain, "unseen_groups_estimate": est})
    assert h["unseen_groups"]["miou"] == 0.52 and h["unseen_groups"]["what"].startswith("estimate")
    assert h["same_distribution"]["miou"] == 0.82
    # a tool that changes the scores (test-time copies, prior) rewrites the headline with them
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    unseen["validation"] = _scores(0.63, 101)
    save_card(unseen, tmp_path / "m.json", model)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["scores"]["unseen_groups"]["miou"] == 0.63 and len(card["sha256"]) == 64
