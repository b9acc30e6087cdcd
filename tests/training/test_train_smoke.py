"""Training end to end on a tiny synthetic dataset: outputs, model card, resume, determinism.

Each run is 2 epochs x 2 steps of a width-4, depth-2 network on 32x32 crops: well under a
second. Nothing here checks that the model learns; it checks the machinery around training.
The final export uses the fast legacy exporter: test_export covers the default one, and the
train -> export hand-over (samples, metadata, parity) does not depend on which exporter runs.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from seg_kit import write_dataset

import inspect_core.training.export
from inspect_core.errors import InspectError
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.training.config import AugmentConfig, TrainConfig
from inspect_core.training.trainer import train


@pytest.fixture(autouse=True, scope="module")
def _fast_export_and_restore_threads():
    n = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            inspect_core.training.export,
            "export_onnx",
            partial(inspect_core.training.export.export_onnx, dynamo=False),
        )
        yield
    torch.set_num_threads(n)  # train(threads=1) sets the process-wide count


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """8 train + 2 val gray 48x48 images, each with a bright square of class 1."""
    root = tmp_path_factory.mktemp("squares")
    (root / "classes.json").write_text(
        json.dumps({"classes": ["background", "square"], "ignore_index": 255, "name": "squares"})
    )
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(n):
            img = rng.normal(60, 10, (48, 48)).clip(0, 255).astype(np.uint8)
            mask = np.zeros((48, 48), np.uint8)
            y, x = rng.integers(4, 28, 2)
            img[y : y + 14, x : x + 14] = 220
            mask[y : y + 14, x : x + 14] = 1
            mask[y - 1, x : x + 14] = 255  # an ignored boundary row
            cv2.imwrite(str(root / split / "images" / f"{i:02d}.png"), img)
            cv2.imwrite(str(root / split / "masks" / f"{i:02d}.png"), mask)
    return root


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    cfg = dict(
        data=str(data),
        out=str(out),
        epochs=2,
        batch=4,
        size=32,
        width=4,
        depth=2,
        workers=0,
        steps_per_epoch=2,
        threads=1,
        bf16="off",
        seed=0,
        augment=AugmentConfig(crop=32),
    )
    cfg.update(kw)
    return TrainConfig(**cfg)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.log").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(_fast_export_and_restore_threads, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    messages: list[str] = []
    card = train(_cfg(dataset, out), log=messages.append)
    return out, card, messages


def test_writes_checkpoints_model_and_card(full_run, dataset):
    out, card, _ = full_run
    for name in ("last.pt", "best.pt", "model.onnx", "model.json", "train.log"):
        assert (out / name).is_file(), name
    assert json.loads((out / "model.json").read_text()) == json.loads(json.dumps(card))
    for key in (
        "classes",
        "normalization",
        "dataset",
        "validation",
        "train_images_per_s",
        "versions",
        "export_parity",
    ):
        assert key in card, key
    assert card["classes"] == ["background", "square"]
    assert set(card["normalization"]) >= {"mean", "std"}
    assert len(card["dataset"]["file_list_sha256"]) == 64
    assert card["dataset"]["train_images"] == 8
    assert {"miou", "mean_dice", "per_class"} <= set(card["validation"])
    assert card["train_images_per_s"] > 0
    assert "torch" in card["versions"] and "onnxruntime" in card["versions"]
    assert card["export_parity"]["max_abs_diff"] < 1e-4 and card["export_parity"]["samples"] == 2
    assert card["epochs"] == 2


def test_exported_model_runs_with_the_card_normalisation(full_run):
    out, card, _ = full_run
    m = OnnxModel(out / "model.onnx", threads=1)
    assert m.classes == card["classes"] and m.meta.channels == 1
    assert m.meta.mean == pytest.approx(card["normalization"]["mean"])
    assert m.meta.std == pytest.approx(card["normalization"]["std"])
    assert m.probabilities(np.zeros((48, 48), np.uint8)).shape == (2, 48, 48)


def test_checkpoints_hold_what_resume_and_export_need(full_run):
    out, _, _ = full_run
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1 and len(last["history"]) == 2
    assert {"model", "opt", "sched", "rng", "gen", "best"} <= set(last)
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    assert best["config"]["width"] == 4 and best["config"]["num_classes"] == 2
    assert best["val"]["miou"] == pytest.approx(last["best"])


def test_log_has_one_row_per_epoch(full_run):
    out, _, _ = full_run
    rows = _log(out)
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(np.isfinite(r["loss"]) and "val_miou" in r for r in rows)


def test_same_seed_same_loss_history(full_run, dataset, tmp_path):
    out, _, _ = full_run
    train(_cfg(dataset, tmp_path / "again"), log=lambda s: None)
    assert [r["loss"] for r in _log(tmp_path / "again")] == [r["loss"] for r in _log(out)]
    train(_cfg(dataset, tmp_path / "other", seed=1), log=lambda s: None)
    assert [r["loss"] for r in _log(tmp_path / "other")] != [r["loss"] for r in _log(out)]


def test_resume_extends_a_finished_run(dataset, tmp_path):
    out = tmp_path / "run"
    train(_cfg(dataset, out, epochs=1), log=lambda s: None)
    assert [r["epoch"] for r in _log(out)] == [0]
    messages: list[str] = []
    card = train(_cfg(dataset, out, epochs=2), log=messages.append)
    assert any("resumed from" in m and "epoch 1" in m for m in messages)
    assert [r["epoch"] for r in _log(out)] == [0, 1]
    assert card["epochs"] == 2
    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 1


def test_a_rerun_of_a_run_that_stopped_early_trains_no_more(dataset, tmp_path):
    """Patience ran out (or the time budget): rerunning the same command (train.sh does)
    exports the same best weights and adds no epoch."""
    out = tmp_path / "run"
    kw = dict(epochs=50, patience=1, lr=0.0)  # lr 0: nothing improves after epoch 0
    train(_cfg(dataset, out, **kw), log=lambda s: None)
    rows = _log(out)
    assert len(rows) == 2  # epoch 0, then one without improvement: stopped
    best = (out / "best.pt").read_bytes()
    messages: list[str] = []
    train(_cfg(dataset, out, **kw), log=messages.append)
    assert _log(out) == rows and (out / "best.pt").read_bytes() == best
    assert any("stopped early" in m and "exporting its best weights" in m for m in messages)


class _Interrupted(Exception):
    pass


def _crash_in_epoch_1(epoch, step, steps, loss):
    if epoch == 1:
        raise _Interrupted


def test_resume_after_interruption_continues_exactly(full_run, dataset, tmp_path):
    """Killed during epoch 1 and resumed, a run matches an uninterrupted one: weights,
    optimiser, schedule, sampler and augmentation all pick up where epoch 0 left them."""
    full_out, _, _ = full_run
    out = tmp_path / "run"
    with pytest.raises(_Interrupted):
        train(_cfg(dataset, out), log=lambda s: None, progress=_crash_in_epoch_1)
    assert [r["epoch"] for r in _log(out)] == [0]
    assert not (out / "model.onnx").exists()
    train(_cfg(dataset, out), log=lambda s: None)
    rows, full = _log(out), _log(full_out)
    assert [r["epoch"] for r in rows] == [0, 1]
    timing = ("seconds", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows] == [
        {k: v for k, v in r.items() if k not in timing} for r in full
    ]  # loss, lr, val
    a = torch.load(out / "last.pt", weights_only=False)["model"]
    b = torch.load(full_out / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tune_records_what_it_loaded_and_what_it_validated_on(full_run, tmp_path):
    """Colour images, 3 classes, no val split, started from the gray 2-class run: the card
    says what loaded, what was adapted or started from scratch, and which images validated."""
    out, _, _ = full_run
    data = write_dataset(
        tmp_path / "colour", {"train": 8, "test": 2}, classes=("bg", "crack", "hole"), channels=3
    )
    messages: list[str] = []
    cfg = _cfg(data, tmp_path / "ft", init_from=str(out / "model.onnx"), width=None, depth=None)
    card = train(cfg, log=messages.append)
    init = card["init_from"]
    assert init["source"] == str(out / "model.onnx") and init["weights"] == str(out / "model.pt")
    assert list(init["adapted"]) == ["stem.0.weight"]
    assert set(init["reinitialised"]) == {"head.weight", "head.bias"}
    assert init["loaded"] == init["tensors"] - 3 and init["architecture_from"] == "its checkpoint"
    assert card["architecture"]["width"] == 4 and card["architecture"]["in_channels"] == 3
    split = card["validation_split"]
    assert split["source"] == "carved from train" and split["count"] == 1
    assert split["images"][0].startswith("train/images/") and "random 15%" in split["rule"]
    assert card["dataset"]["train_images"] == 7
    chosen = card["settings_chosen"]
    assert chosen["width"].startswith("4 (from ") and chosen["lr"].startswith("0.001")
    assert card["training"]["patience"] == 0 and card["training"]["epochs"] == 2
    assert any("no val split" in m for m in messages)
    assert any(m.startswith("--init-from") for m in messages)


def test_no_epoch_limit_ends_at_the_time_budget_and_validates_there(dataset, tmp_path):
    messages: list[str] = []
    cfg = _cfg(dataset, tmp_path / "run", epochs=0, max_minutes=1e-4, val_every=5)
    card = train(cfg, log=messages.append)
    assert card["epochs"] == 1 and "val_miou" in _log(tmp_path / "run")[0]
    assert any("time budget" in m for m in messages)


def test_a_set_smaller_than_a_batch_trains(tmp_path):
    data = write_dataset(tmp_path / "few", {"train": 3, "val": 1})
    card = train(_cfg(data, tmp_path / "run", batch=8, epochs=1), log=lambda s: None)
    assert card["epochs"] == 1 and card["dataset"]["train_images"] == 3
    assert _log(tmp_path / "run")[0]["images_per_s"] > 0


def test_val_groups_pick_the_checkpoint_on_unseen_groups_and_card_has_both_scores(tmp_path):
    stems = [f"lot{g}_{i}" for g in "ABC" for i in range(4)]
    root = write_dataset(tmp_path / "g", {"train": stems, "val": ["lotA_9", "lotC_9"]})
    cfg = _cfg(root, tmp_path / "out", groups="^(lot[A-C])_", val_groups="lotB")
    card = train(cfg, log=lambda _: None)
    split = card["validation_split"]
    assert split["source"] == "unseen groups" and split["unseen"] and split["groups"] == ["lotB"]
    assert card["validation"]["images"] == 4 and card["dataset"]["train_images"] == 8
    assert all("lotB" in p for p in split["images"])
    seen = card["validation_seen_groups"]
    assert seen["images"] == 2 and set(split["seen_images"]) == {
        "val/images/lotA_9.png",
        "val/images/lotC_9.png",
    }
    assert card["training"]["val_groups"] == "lotB"  # the card says how to rerun it


def test_lovasz_loss_trains_and_the_card_names_it(dataset, tmp_path):
    """--loss lovasz_ce reaches the optimiser (its losses differ from Dice + CE's on the same
    seed and batches) and the card records it; an unknown loss stops before any work."""
    dice = train(_cfg(dataset, tmp_path / "dice"), log=lambda m: None)
    lov = train(_cfg(dataset, tmp_path / "lov", loss="lovasz_ce"), log=lambda m: None)
    assert dice["training"]["loss"] == "dice_ce" and lov["training"]["loss"] == "lovasz_ce"
    losses = [[r["loss"] for r in _log(tmp_path / n)] for n in ("dice", "lov")]
    assert all(math.isfinite(v) and v > 0 for v in losses[1])
    assert losses[0] != losses[1]
    with pytest.raises(InspectError, match="dice_ce, lovasz_ce"):
        train(_cfg(dataset, tmp_path / "bad", loss="focal"), log=lambda m: None)
    assert not (tmp_path / "bad").exists()


def test_weights_that_saw_the_held_out_groups_make_no_unseen_score(tmp_path):
    """A fine-tune that holds out lotA, started from weights trained on lotA, is not scored on
    'unseen groups'; started from weights that held lotA out too, it is."""
    stems = [f"lot{g}_{i}" for g in "ABC" for i in range(4)]
    root = write_dataset(tmp_path / "g", {"train": stems, "val": ["lotB_9"]})
    groups = "^(lot[A-C])_"
    train(_cfg(root, tmp_path / "b", groups=groups, val_groups="lotB"), log=lambda _: None)
    messages: list[str] = []

    def tune(out: str, held: str) -> dict:
        weights = str(tmp_path / "b" / "model.pt")
        cfg = _cfg(root, tmp_path / out, groups=groups, val_groups=held, init_from=weights)
        return train(cfg, log=messages.append)

    tuned = tune("t", "lotA")
    split = tuned["validation_split"]
    assert not split["unseen"] and "trained on 4 of these 4 images" in split["rule"]
    assert tuned["scores"]["unseen_groups"] is None
    assert any("was trained on 4 of the 4 held-out images" in m for m in messages)
    again = tune("t2", "lotB")
    assert again["validation_split"]["unseen"]
    assert again["scores"]["unseen_groups"]["groups"] == ["lotB"]
    # a fine-tune of "t" (which lotA's images reached through "b") holding lotA out again
    chain = train(
        _cfg(
            root,
            tmp_path / "c",
            groups=groups,
            val_groups="lotA",
            init_from=str(tmp_path / "t" / "model.pt"),
        ),
        log=lambda _: None,
    )
    assert not chain["validation_split"]["unseen"]
    # weights with no card: what they trained on is unknown
    import shutil

    shutil.copy(tmp_path / "b" / "model.pt", tmp_path / "lone.pt")
    lone = train(
        _cfg(
            root,
            tmp_path / "l",
            groups=groups,
            val_groups="lotB",
            init_from=str(tmp_path / "lone.pt"),
        ),
        log=lambda _: None,
    )
    assert (
        not lone["validation_split"]["unseen"]
        and "no model card" in lone["validation_split"]["rule"]
    )


def test_a_run_folder_is_not_resumed_on_other_groups(tmp_path):
    stems = [f"lot{g}_{i}" for g in "ABC" for i in range(4)]
    root = write_dataset(tmp_path / "g", {"train": stems})
    out = tmp_path / "run"
    train(_cfg(root, out, groups="^(lot[A-C])_", val_groups="lotB"), log=lambda _: None)
    best = (out / "best.pt").read_bytes()
    with pytest.raises(InspectError, match="other validation images .* Give a new --out"):
        train(_cfg(root, out, groups="^(lot[A-C])_", val_groups="lotC", epochs=3), log=print)
    assert (out / "best.pt").read_bytes() == best  # nothing of the old run was touched
    with pytest.raises(InspectError, match=r"other settings \(loss dice_ce -> lovasz_ce\)"):
        train(
            _cfg(root, out, groups="^(lot[A-C])_", val_groups="lotB", epochs=3, loss="lovasz_ce"),
            log=print,
        )
    # more epochs is how a run is extended: that resumes
    train(_cfg(root, out, groups="^(lot[A-C])_", val_groups="lotB", epochs=3), log=print)
    assert len(_log(out)) == 3
