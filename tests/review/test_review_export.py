"""Reviewed images as training data: what a keystroke decides for each region, the masks
(0 / class / 255), and ``inspect review export``, whose folder ``inspect train`` reads."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from review_kit import CLASSES, box_region, main_exit, record_item

from inspect_core.data.datasets import open_dataset
from inspect_core.data.groups import group_names
from inspect_db.engine import connect, make_engine
from inspect_db.errors import ReviewError
from inspect_db.records.recorder import Recorder
from inspect_review.commands import review_group
from inspect_review.export import export_dataset
from inspect_review.labels import resolve
from inspect_review.masks import review_mask
from inspect_review.storage.export import ExportFilters, LabelledRegion
from inspect_review.storage.queue import item
from inspect_review.storage.store import add_user, record_decision
from inspect_review.storage.types import DecisionIn, RegionLabel

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def at(day: int, hour: int = 10) -> float:
    return datetime(2026, 11, day, hour, tzinfo=UTC).timestamp()


# -- what a decision says of each region ----------------------------------------------------


@pytest.fixture
def two_regions(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        iid = record_item(
            rec,
            tmp_path,
            1,
            regions=[box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)],
        )
    with connect(engine) as conn:
        view = item(conn, iid)
    yield view
    engine.dispose()


def test_one_key_decides_every_region_as_the_verdict_implies(two_regions):
    view = two_regions
    a, b = (r.id for r in view.regions)
    as_pass = resolve(view, "PASS", {}, CLASSES)
    assert [(x.label, x.class_name) for x in as_pass] == [("not_defect", None)] * 2
    as_fail = resolve(view, "FAIL", {}, CLASSES)
    assert [(x.label, x.class_name, x.class_id) for x in as_fail] == [
        ("defect", "scratch", 1),
        ("defect", "dent", 2),
    ]
    chosen = resolve(
        view, "FAIL", {f"region-{a}": "unsure", f"region-{b}": "class:scratch"}, CLASSES
    )
    assert [(x.label, x.class_name, x.class_id) for x in chosen] == [
        ("unsure", None, None),
        ("defect", "scratch", 1),
    ]
    # a new name is a class too (no index in the model's list); a recipe's in any case is its
    named = resolve(
        view, "FAIL", {f"region-{a}": "class: rust ", f"region-{b}": "class:DENT"}, CLASSES
    )
    assert [(x.label, x.class_name, x.class_id) for x in named] == [
        ("defect", "rust", None),
        ("defect", "dent", 2),
    ]
    for bad, words in (
        ({f"region-{a}": "class:background"}, "region 1 .*background is no defect"),
        ({f"region-{a}": "class:"}, "region 1 .*empty"),
        ({f"region-{a}": "class:" + "x" * 41}, "over 40 characters"),
        ({f"region-{a}": "class:a\x07b"}, "control character"),
        ({f"region-{a}": "maybe"}, "not a choice"),
        ({"region-424242": "unsure"}, "not a region"),
    ):
        with pytest.raises(ReviewError, match=words):
            resolve(view, "FAIL", bad, CLASSES)


# -- masks ---------------------------------------------------------------------------------


def lab(label: str, x: int, y: int, w: int, h: int, cls: str | None = None, model="scratch"):
    poly = [[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]]
    return LabelledRegion(0, poly, (x, y, w, h), model, label, cls)


def test_masks_hold_what_the_operator_judged_and_ignore_the_rest():
    regions = [
        lab("not_defect", 0, 0, 4, 4),
        lab("defect", 10, 10, 5, 5, "dent"),  # corrected from scratch
        lab("unsure", 20, 0, 3, 3),
        lab("defect", 2, 2, 4, 4, "scratch"),  # overlaps the false alarm: the defect wins
    ]
    m = review_mask((30, 30), "FAIL", regions, CLASSES)
    assert m[1, 1] == 0 and m[3, 3] == 1 and m[12, 12] == 2
    assert m[1, 21] == 255 and m[25, 25] == 255  # unsure, and never judged
    assert set(np.unique(m)) == {0, 1, 2, 255}
    assert (m == 2).sum() == 25 and (m == 0).sum() == 16 - 4
    passed = review_mask((30, 30), "PASS", [lab("not_defect", 0, 0, 4, 4)], CLASSES)
    assert not passed.any()  # overturned to PASS, nothing left: all background
    kept = review_mask((30, 30), "PASS", [lab("defect", 0, 0, 4, 4, "dent")], CLASSES)
    assert kept[0, 0] == 2 and kept[20, 20] == 255  # a PASS with a small confirmed defect
    with pytest.raises(ReviewError, match="not a defect class"):
        review_mask((30, 30), "FAIL", [lab("defect", 0, 0, 4, 4, "rust")], CLASSES)


# -- the export ----------------------------------------------------------------------------


@pytest.fixture
def reviewed(sqlite_url, tmp_path):
    """Five reviewed inspections over three days and two stations, one pending."""
    engine = make_engine(sqlite_url)
    files = tmp_path / "archive"
    ids = {}
    with Recorder(engine=engine) as rec:
        two = [box_region("scratch", 5, 5, 10, 6), box_region("dent", 30, 20, 8, 8)]
        ids["fail"] = record_item(rec, files, 1, verdict="FAIL", regions=two, at=at(27))
        ids["pass"] = record_item(rec, files, 2, verdict="REVIEW", at=at(28))
        ids["l2"] = record_item(rec, files, 3, verdict="FAIL", at=at(28), station="line 2")
        ids["late"] = record_item(rec, files, 4, verdict="REVIEW", at=at(29))
        ids["late2"] = record_item(rec, files, 5, verdict="FAIL", at=at(29, 12))
        ids["pending"] = record_item(rec, files, 6, verdict="REVIEW", at=at(29))
    user = add_user(engine, "olga", "operator", HASH)
    forms = {
        "fail": ("FAIL", {1: "not_defect", 2: "class:scratch"}),
        "pass": ("PASS", {}),
        "l2": ("FAIL", {}),
        "late": ("FAIL", {1: "unsure"}),
        "late2": ("FAIL", {}),
    }
    for key, (verdict, choices) in forms.items():
        with connect(engine) as conn:
            view = item(conn, ids[key])
        form = {f"region-{r.id}": choices[r.number] for r in view.regions if r.number in choices}
        labels = resolve(view, verdict, form, CLASSES)
        record_decision(engine, DecisionIn(view.id, user.id, verdict, labels))
    yield engine, ids, tmp_path
    engine.dispose()


def masks_by_id(out, split="train") -> dict[int, np.ndarray]:
    rows = list(csv.DictReader((out / "reviewed.csv").open()))
    return {
        int(r["inspection_id"]): cv2.imread(
            str(out / r["file"]).replace("/images/", "/masks/").rsplit(".", 1)[0] + ".png", 0
        )
        for r in rows
        if r["split"] == split
    }


def test_export_writes_a_dataset_that_training_reads(reviewed):
    engine, ids, tmp = reviewed
    out = tmp / "dataset"
    summary = export_dataset(engine, out, ExportFilters())
    assert summary.images == 5 and summary.splits == {"train": 5} and not summary.skipped
    meta = json.loads((out / "classes.json").read_text())
    assert meta["classes"] == CLASSES and meta["ignore_index"] == 255
    ds = open_dataset(out, "train")  # what `inspect train --data` opens
    assert len(ds) == 5 and ds.classes == CLASSES
    assert sorted(set(group_names(ds))) == [
        "line-1_20261127",
        "line-1_20261128",
        "line-1_20261129",
        "line-2_20261128",
    ]
    for i in range(len(ds)):
        image, mask = ds.load(i)  # every mask within the class list, image and mask one size
        assert image.shape[:2] == mask.shape == (48, 64)
    m = masks_by_id(out)
    fail = m[ids["fail"]]  # scratch was no defect, the dent was a scratch; the rest unjudged
    assert fail[7, 10] == 0 and fail[24, 34] == 1 and fail[40, 5] == 255
    assert set(np.unique(fail)) == {0, 1, 255}
    assert not m[ids["pass"]].any()  # overturned to PASS: all background
    assert set(np.unique(m[ids["late"]])) == {255}  # its one region unsure
    assert set(np.unique(m[ids["l2"]])) == {1, 255}  # confirmed as predicted
    # the image is the archived file, byte for byte
    row = next(r for r in csv.DictReader((out / "reviewed.csv").open()) if r["verdict"] == "PASS")
    assert (out / row["file"]).read_bytes() == (tmp / "archive" / "img0002.png").read_bytes()
    assert row["model_verdict"] == "REVIEW" and row["reviewer"] == "olga"
    assert row["group"] == "line-1_20261128"


def test_val_share_holds_out_the_newest_whole_days(reviewed):
    engine, ids, tmp = reviewed
    out = tmp / "split"
    summary = export_dataset(engine, out, ExportFilters(), val_share=0.4)
    assert summary.val_groups == ["line-1_20261129"] and summary.splits == {"train": 3, "val": 2}
    assert sorted(masks_by_id(out, "val")) == sorted([ids["late"], ids["late2"]])
    assert len(open_dataset(out, "val")) == 2


def test_export_filters_and_refusals(reviewed):
    engine, ids, tmp = reviewed
    one = export_dataset(engine, tmp / "one", ExportFilters(station="line 2"))
    assert one.images == 1
    (tmp / "taken").mkdir()
    (tmp / "taken" / "x").write_text("")
    with pytest.raises(ReviewError, match="not an empty folder"):
        export_dataset(engine, tmp / "taken", ExportFilters())
    with pytest.raises(ReviewError, match="not in the database"):
        export_dataset(engine, tmp / "nowhere", ExportFilters(station="line-9"))
    with pytest.raises(ReviewError, match="no reviewed image"):
        export_dataset(engine, tmp / "later", ExportFilters.parse(since="2999-01-01"))
    assert not (tmp / "nowhere").exists() and not (tmp / "later").exists()
    (tmp / "archive" / "img0003.png").unlink()  # the archive lost a file: skipped, listed
    gone = export_dataset(engine, tmp / "gone", ExportFilters())
    assert gone.images == 4 and [s["inspection_id"] for s in gone.skipped] == [ids["l2"]]
    assert json.loads((tmp / "gone" / "export.json").read_text())["skipped"][0]["why"]


def test_images_of_different_class_lists_are_not_mixed(reviewed):
    engine, ids, tmp = reviewed
    other = {"classes": ["background", "crack"], "sha256": "cd" * 32}
    with Recorder(engine=engine) as rec:
        iid = record_item(
            rec,
            tmp / "archive",
            9,
            verdict="FAIL",
            recipe="tile",
            card=None,
            regions=[box_region("scratch", 1, 1, 3, 3)],
        )
        rec.register_model("cd" * 32, card=other)
    with engine.begin() as c:
        import sqlalchemy as sa

        c.execute(
            sa.text(
                "UPDATE inspection SET model_id = (SELECT id FROM model WHERE "
                "sha256 = :s) WHERE id = :i"
            ),
            {"s": "cd" * 32, "i": iid},
        )
    from inspect_review.storage.store import get_user

    with connect(engine) as conn:
        view = item(conn, iid)
    user = get_user(engine, "olga")
    record_decision(
        engine, DecisionIn(iid, user.id, "PASS", (RegionLabel(view.regions[0].id, "not_defect"),))
    )
    with pytest.raises(ReviewError, match="one recipe at a time"):
        export_dataset(engine, tmp / "mixed", ExportFilters())
    assert (
        export_dataset(engine, tmp / "tile", ExportFilters(recipe="tile")).classes
        == other["classes"]
    )


def test_a_resized_frame_exports_the_image_at_the_regions_size(sqlite_url, tmp_path):
    """When the recipe resized the image, regions and overlay are in the smaller frame: the
    image is written at that size, so image and mask agree."""
    engine = make_engine(sqlite_url)
    with Recorder(engine=engine) as rec:
        iid = record_item(
            rec, tmp_path, 1, verdict="FAIL", regions=[box_region("dent", 2, 2, 4, 4)]
        )
    with connect(engine) as conn:
        view = item(conn, iid)
    big = cv2.resize(cv2.imread(view.source, 0), (128, 96))
    cv2.imwrite(view.source, big)  # the archived file is twice the frame the model saw
    with engine.begin() as c:  # ... and is the recorded image
        import hashlib

        import sqlalchemy as sa

        sha = hashlib.sha256(open(view.source, "rb").read()).hexdigest()
        c.execute(
            sa.text("UPDATE inspection SET image_sha256 = :s WHERE id = :i"), {"s": sha, "i": iid}
        )
    user = add_user(engine, "olga", "operator", HASH)
    record_decision(engine, DecisionIn(iid, user.id, "FAIL", resolve(view, "FAIL", {}, CLASSES)))
    export_dataset(engine, tmp_path / "out", ExportFilters())
    image, mask = open_dataset(tmp_path / "out", "train").load(0)
    assert image.shape == mask.shape == (48, 64) and mask[3, 3] == 2
    engine.dispose()


def test_export_command(reviewed, monkeypatch, capsys):
    engine, _, tmp = reviewed
    url = str(engine.url)
    r = CliRunner().invoke(
        review_group, ["export", "--db", url, "--out", str(tmp / "cli"), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["images"] == 5
    r = CliRunner().invoke(review_group, ["export", "--db", url, "--out", str(tmp / "cli2")])
    assert r.exit_code == 0 and "wrote 5 reviewed images" in r.output
    assert "inspect train --data" in r.output
    for args, words in (
        (["--since", "sometime"], "not a time"),
        (["--station", ""], "empty"),
        (["--station", "line-9"], "not in the database"),
        (["--val-share", "2"], "0.9"),
    ):
        code, _, err = main_exit(
            monkeypatch, capsys, "review", "export", "--db", url, "--out", tmp / "x", *args
        )
        assert code == 2 and words in err, (args, err)
        assert not (tmp / "x").exists()


def test_inspect_train_trains_on_the_export(reviewed):
    """Two steps of a tiny network on the export (held out by its station-day groups)."""
    torch = pytest.importorskip("torch")
    from functools import partial

    import inspect_core.training.export as export_mod
    from inspect_core.training.config import AugmentConfig, TrainConfig
    from inspect_core.training.trainer import train

    engine, _, tmp = reviewed
    export_dataset(engine, tmp / "data", ExportFilters())
    n = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_mod, "export_onnx", partial(export_mod.export_onnx, dynamo=False))
        card = train(
            TrainConfig(
                data=str(tmp / "data"),
                out=str(tmp / "run"),
                epochs=1,
                batch=2,
                size=32,
                width=4,
                depth=2,
                workers=0,
                steps_per_epoch=2,
                threads=1,
                bf16="off",
                seed=0,
                augment=AugmentConfig(crop=32),
            ),
            log=lambda _m: None,
        )
    torch.set_num_threads(n)
    assert card["classes"] == CLASSES and (tmp / "run" / "model.onnx").is_file()
    held = card["validation_split"]
    assert held["groups"] and all("_2026112" in g for g in held["groups"])  # whole station-days
