"""training/logo_folds.py: one tiny training per group held out, resumable, with the spread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from seg_kit import write_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = "--epochs 1 --size 32 --width 4 --depth 2 --batch 4 --steps-per-epoch 2 --workers 0"


def _folds(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "training/logo_folds.py", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_every_group_is_held_out_once_and_a_rerun_keeps_the_folds(tmp_path):
    train = [f"seq{g}_{i}" for g in "AB" for i in range(4)]
    data = write_dataset(
        tmp_path / "d", {"train": train, "val": ["seqA_10", "seqB_10"]}, groups="^(seq[AB])_"
    )
    out = tmp_path / "folds"
    res = _folds("--data", data, "--out", out, "--", *TINY.split(), "--threads", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "folds.json").read_text())
    assert set(summary["folds"]) == {"seqA", "seqB"} and summary["missing"] == []
    for g in ("seqA", "seqB"):
        card = json.loads((out / g / "model.json").read_text())
        split = card["validation_split"]
        assert split["unseen"] and split["groups"] == [g]  # the fold's own group, never trained
        assert summary["folds"][g]["miou"] == round(card["validation"]["miou"], 4)
        assert summary["folds"][g]["images"] == 5  # its 4 train images and its val image
    scores = [f["miou"] for f in summary["folds"].values()]
    s = summary["spread"]
    assert s["min"] == min(scores) and s["max"] == max(scores)
    assert s["worst_group"] in ("seqA", "seqB") and "mean" in res.stdout
    again = _folds("--data", data, "--out", out, "--", *TINY.split(), "--threads", "1")
    assert again.returncode == 0 and again.stdout.count("done before") == 2
    assert json.loads((out / "folds.json").read_text()) == summary
    other = _folds("--data", data, "--out", out, "--", *TINY.split(), "--lr", "0.1")
    assert other.returncode == 1 and "seqA: this fold was trained with other arguments" in (
        other.stderr
    )
    assert json.loads((out / "folds.json").read_text()) == summary  # nothing mixed in


def test_a_mistyped_train_option_is_one_line(tmp_path):
    data = write_dataset(tmp_path / "d", {"train": ["seqA_0", "seqB_0"]}, groups="^(seq[AB])_")
    res = _folds("--data", data, "--out", tmp_path / "f", "--", "--bogus")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "fold seqA: inspect train: No such option '--bogus'" in res.stderr


def test_unknown_groups_and_a_single_group_are_refused(tmp_path):
    data = write_dataset(tmp_path / "d", {"train": ["seqA_0", "seqA_1"]}, groups="^(seq[AB])_")
    res = _folds("--data", data, "--out", tmp_path / "f")
    assert res.returncode == 1 and "folds need two or more" in res.stderr
    data2 = write_dataset(tmp_path / "d2", {"train": ["seqA_0", "seqB_0"]}, groups="^(seq[AB])_")
    res = _folds("--data", data2, "--out", tmp_path / "f", "--only", "seqZ")
    assert res.returncode == 1 and "no such group ['seqZ']" in res.stderr
    assert not (tmp_path / "f").exists()  # nothing trained
