"""Validation images: the val split, or a part of train held out (by group where classes.json
names groups), never the test split."""

import json

import pytest
from seg_kit import write_dataset

from inspect_core.data.datasets import open_dataset
from inspect_core.errors import DataError
from inspect_core.training.holdout import carve_validation, held_out_dataset, open_splits


def _splits(s):
    return s.train, s.val, s.holdout, s.seen


def _stems(ds):
    return [s.image.stem for s in ds.samples]


def test_with_a_val_split_it_validates_on_it(tmp_path):
    root = write_dataset(tmp_path / "d", {"train": 4, "val": 2, "test": 3})
    log: list[str] = []
    train, val, how, _ = _splits(open_splits(str(root), 0, log.append))
    assert len(train) == 4 and val.split == "val" and len(val) == 2
    assert how.source == "val split" and how.images == ["val/images/00.png", "val/images/01.png"]
    assert not log


def test_without_val_it_holds_out_part_of_train_never_test(tmp_path):
    root = write_dataset(tmp_path / "d", {"train": 20, "test": 5})
    log: list[str] = []
    train, val, how, _ = _splits(open_splits(str(root), 0, log.append))
    assert how.source == "carved from train" and how.count == len(val) == 3  # 15% of 20
    assert all(p.startswith("train/images/") for p in how.images)
    assert not set(_stems(train)) & set(_stems(val)) and len(train) + len(val) == 20
    assert "random 15%" in how.rule and "seed 0" in how.rule
    assert "no val split" in log[0] and "3 of 20" in log[0] and "never used" in log[0]
    assert log[1] == "  held out: " + ", ".join(p.split("/")[-1] for p in how.images)
    again = open_splits(str(root), 0, print).holdout
    other = open_splits(str(root), 1, print).holdout
    assert again.images == how.images and other.images != how.images  # seeded


@pytest.mark.parametrize("n,held", [(3, 1), (4, 1), (7, 1), (10, 2), (70, 10)])
def test_about_15_percent_at_least_one_at_most_a_third(tmp_path, n, held):
    train = open_dataset(write_dataset(tmp_path / "d", {"train": n}), "train")
    rest, val, how = carve_validation(train, seed=0)
    assert len(val) == held == how.count and len(rest) == n - held


def test_too_few_images_to_hold_any_out(tmp_path):
    train = open_dataset(write_dataset(tmp_path / "d", {"train": 2}), "train")
    with pytest.raises(DataError, match="add a val/ split"):
        carve_validation(train, seed=0)


def test_groups_are_held_out_whole(tmp_path):
    stems = [f"tile{t}_{i:02d}" for t in range(1, 9) for i in range(5)]  # 8 groups of 5
    root = write_dataset(tmp_path / "d", {"train": stems}, groups="^(tile\\d+)_")
    train = open_dataset(root, "train")
    rest, val, how = carve_validation(train, seed=0)
    held = {s.split("_")[0] for s in _stems(val)}
    assert held == set(how.groups) and len(held) == 2 and len(val) == 10  # >= 15% of 40
    assert not held & {s.split("_")[0] for s in _stems(rest)}
    assert "whole groups by '^(tile\\\\d+)_': 2 of 8 groups" in how.rule


def test_groups_may_name_sequences_by_alternatives(tmp_path):
    stems = [
        f"{seq}_{i:03d}"
        for seq, n in (("0001TP", 6), ("0006R0", 10), ("0016E5", 20))
        for i in range(n)
    ]
    root = write_dataset(tmp_path / "d", {"train": stems}, groups="^(0001TP|0006R0|0016E5)")
    _, val, how = carve_validation(open_dataset(root, "train"), seed=0)
    assert how.groups in (["0001TP"], ["0006R0"]) and len(val) in (6, 10)


@pytest.mark.parametrize(
    "pattern,says",
    [
        ("^(tile", "not a valid regex"),
        ("^tile", "has 0 capture groups"),
        ("^(t)(i)", "has 2 capture groups"),
        (7, "must be a regex string"),
    ],
)
def test_a_bad_groups_pattern_names_classes_json(tmp_path, pattern, says):
    root = write_dataset(tmp_path / "d", {"train": 4}, groups=pattern)
    with pytest.raises(DataError, match=says) as e:
        open_dataset(root, "train")
    assert "classes.json" in str(e.value)


def test_stems_the_pattern_misses_and_groups_too_large_are_errors(tmp_path):
    root = write_dataset(
        tmp_path / "a", {"train": ["tile1_0", "tile2_0", "odd"]}, groups="^(tile\\d)_"
    )
    with pytest.raises(DataError, match="does not match 1 image.*odd.png"):
        carve_validation(open_dataset(root, "train"), seed=0)
    stems = [f"tile{t}_{i}" for t in (1, 2) for i in range(5)]
    root = write_dataset(tmp_path / "b", {"train": stems}, groups="^(tile\\d)_")
    with pytest.raises(DataError, match="at most a third") as e:
        carve_validation(open_dataset(root, "train"), seed=0)
    assert "tile1: 5, tile2: 5" in str(e.value)


def test_mvtec_holds_out_good_images_and_warns(tmp_path):
    import cv2
    import numpy as np

    root = tmp_path / "bottle"
    (root / "train" / "good").mkdir(parents=True)
    (root / "test" / "crack").mkdir(parents=True)
    for i in range(7):
        cv2.imwrite(str(root / "train" / "good" / f"{i:03d}.png"), np.zeros((16, 16), np.uint8))
    log: list[str] = []
    train, val, how, _ = _splits(open_splits(str(root), 0, log.append))
    assert how.source == "carved from train" and len(val) == 1 and len(train) == 6
    assert any("defect-free" in line for line in log)
    # the tools after training (choose_tta, fit_prior, variants) read the same images back
    card = {"validation_split": how.to_dict(), "training": {"groups": None}}
    again = held_out_dataset(card, str(root))
    assert [s.image for s in again.samples] == [s.image for s in val.samples]
    assert again.classes == ["background", "crack"] and again.samples[0].mask is None
    img, mask = again.load(0)
    assert mask.shape == img.shape[:2] and not mask.any()  # defect-free: all background


def test_card_records_the_rule(tmp_path):
    root = write_dataset(tmp_path / "d", {"train": 7})
    how = open_splits(str(root), 3, print).holdout
    d = json.loads(json.dumps(how.to_dict()))
    assert set(d) == {"source", "rule", "count", "images", "groups", "unseen", "seen_images"}
    assert d["count"] == 1 and d["unseen"] is False  # random images: their groups are trained on


def test_val_groups_seen_score_only_covers_groups_trained_on(tmp_path):
    """The same-distribution images are val-split images of groups with training images: a
    val-only group is neither trained on nor called 'seen'."""
    root = write_dataset(
        tmp_path / "d",
        {"train": ["A_0", "A_1", "B_0", "B_1"], "val": ["B_v0", "C_v0", "C_v1"]},
        groups="^([A-Z])_",
    )
    logs: list[str] = []
    train, val, how, seen = _splits(open_splits(str(root), 0, logs.append, val_groups=["A"]))
    assert _stems(val) == ["A_0", "A_1"] and _stems(train) == ["B_0", "B_1"]
    assert _stems(seen) == ["B_v0"] and list(how.seen_images) == ["val/images/B_v0.png"]
    assert "2 val-split images of groups with no training image take no part" in logs[-1]


def test_val_groups_that_leave_nothing_to_train_on_or_name_nothing_are_errors(tmp_path):
    root = write_dataset(
        tmp_path / "e", {"train": ["A_0", "A_1"], "val": ["C_v0"]}, groups="^([A-Z])_"
    )
    with pytest.raises(DataError, match="leaves no image .* to train on"):
        open_splits(str(root), 0, print, val_groups=["A"])
    with pytest.raises(DataError, match="names no group"):
        open_splits(str(root), 0, print, val_groups=[])


def test_a_groups_option_that_misses_names_the_option_not_classes_json(tmp_path):
    root = write_dataset(tmp_path / "f", {"train": ["lotA_0", "odd"]})
    with pytest.raises(DataError, match=r"^--groups: the groups pattern .* \(odd.png\)"):
        open_splits(str(root), 0, print, groups="^(lot[A-Z])_", val_groups=["lotA"])


def test_an_empty_val_folder_is_no_val_split(tmp_path):
    root = write_dataset(tmp_path / "g", {"train": 7})
    (root / "val" / "images").mkdir(parents=True)  # left empty
    (root / "val" / "masks").mkdir(parents=True)
    logs: list[str] = []
    how = open_splits(str(root), 0, logs.append).holdout
    assert how.source == "carved from train" and any("no val split" in m for m in logs)
