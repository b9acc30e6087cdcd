"""The good-only loop, end to end, on small generated images (issue 24 item 7).

A line starts with a good-only model and ends on a segmentation model trained from what its
operators named, each step through the product's own commands and storage:

1. ``inspect train --kind anomaly --features synthetic`` learns the good parts alone; a plugin
   recipe runs it, and ``inspect model add`` / ``promote`` make it v1;
2. two stations record a batch (good parts, bright blobs, dark lines, and one part with a
   blob and a faint line) in a SQLite database: the defects are REVIEW, class anomaly;
3. an operator decides every image through the review storage API (what the review page
   records): names each anomaly region ("blob", "line"), draws the faint line the model
   missed as a polygon, passes the good parts;
4. ``inspect review export`` writes the dataset: background and the named classes, the drawn
   line in its mask;
5. ``inspect train --init-from`` the good-only model trains a segmentation candidate on it;
6. ``inspect backtest`` re-judges the recorded history with it: the REVIEWs become FAIL (and
   agree with the operators), on a Dask LocalCluster;
7. ``inspect model add`` / ``promote`` make it v2, and the next station run records with it.

How the pieces are made to fit a test:

- The plugin is a real installed one: a package and its ``loopplug-0.1.dist-info`` (METADATA
  and ``entry_points.txt`` with ``[inspect.plugins]``) written to a folder that is put on
  ``sys.path`` (this process: the CLI, the stations, the registry) and on ``PYTHONPATH`` (the
  Dask workers of the backtest are other processes, which find the recipe by plugin name
  through the entry point as an installed plugin's). Its recipe names no class, as the
  shipped ``tile-anomaly`` does, so the named model runs it unchanged.
- ``--features synthetic`` trains 191 steps (``--steps-per-epoch``), so the model is the same
  wherever it runs (on a busy 2-core machine a time budget of 0.1 minutes gave 80 to 230
  steps, and at 80-90 steps the model missed most lines).
- The segmentation run is exported with the TorchScript exporter (10x faster; the training
  tests cover the default one).

About 20 s of wall time on a shared 2-core machine, most of it the two trainings and the
backtest's Dask worker starting.
"""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from loop_kit import (
    NAMES,
    Part,
    forget_plugins,
    good_dataset,
    install_plugin,
    recipe_text,
    records,
    review_all,
    run_station,
    use_plugin,
    write_parts,
)

import inspect_core.training.export
from inspect_core.cards import sha256_file
from inspect_core.cli import cli

PLUGIN, RECIPE = "loopplug", "texture"
IGNORE = 255  # the masks' "no one judged this pixel"


@pytest.fixture
def loop_plugin(tmp_path, monkeypatch):
    """Install the plugin once the good-only model exists (call it with the model); the
    registry forgets it afterwards."""
    site = tmp_path / "site"

    def install(model: Path) -> None:
        install_plugin(site, PLUGIN, {RECIPE: recipe_text(RECIPE, model)})
        use_plugin(monkeypatch, site)

    yield install
    forget_plugins(monkeypatch, PLUGIN)


@pytest.fixture
def fast(monkeypatch):
    """The fast exporter for the segmentation run, and torch's thread count put back
    (training sets it)."""
    threads = torch.get_num_threads()
    monkeypatch.setattr(
        inspect_core.training.export,
        "export_onnx",
        partial(inspect_core.training.export.export_onnx, dynamo=False),
    )
    yield
    torch.set_num_threads(threads)


def inspect(*args: object) -> Result:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, f"inspect {args[0]}: {res.output}{res.exception!r}"
    return res


def test_a_line_goes_from_a_good_only_model_to_a_segmentation_model(tmp_path, fast, loop_plugin):
    url = f"sqlite:///{tmp_path / 'line.db'}"
    common = ["--plugin", PLUGIN, "--recipe", RECIPE, "--db", url]
    store = tmp_path / "model-store"
    good_only = train_good_only(tmp_path)
    loop_plugin(good_only)
    inspect("model", "add", good_only, *common, "--store", store, "--by", "ana")
    inspect("model", "promote", "v1", *common)

    parts = record_history(tmp_path, url, sha256_file(good_only))
    decisions = review_all(url, parts)
    for name, d in decisions.items():  # each anomaly region lies on a defect and is named
        if parts[name].kind != "good":
            given = [lab.class_name for lab in d.labels] + [m.class_name for m in d.marks]
            assert set(given) == {NAMES[v] for v in np.unique(parts[name].mask) if v}, name
    assert [m.class_name for d in decisions.values() for m in d.marks] == ["line"]  # missed

    data = export(tmp_path, url, parts)
    candidate = train_candidate(tmp_path, data, good_only)
    backtest(url, candidate, parts)

    inspect("model", "add", candidate, *common, "--store", store, "--note", "named by olga")
    inspect("model", "promote", "v2", *common, "--note", "backtested")
    switched(tmp_path, url, candidate)


def train_good_only(tmp: Path) -> Path:
    """Step 1: a good-only model from good images alone; its weights are what the
    segmentation run starts from."""
    data = good_dataset(tmp / "good")
    out = tmp / "good-only"
    inspect(
        "train", "--data", data, "--out", out, "--kind", "anomaly", "--features", "synthetic",
        "--steps-per-epoch", "191", "--width", "4", "--size", "48",
    )  # fmt: skip
    card = json.loads((out / "model.json").read_text())
    assert card["dataset"]["defect_images_trained_on"] == 0
    assert card["architecture"]["steps"] == 191  # the step clock: the same model every time
    assert (out / "model.pt").is_file()  # what --init-from reads
    return out / "model.onnx"


def record_history(tmp: Path, url: str, v1: str) -> dict[str, Part]:
    """Step 2: stations line1 and line2 record a batch each with v1 (the registry's active
    version): the defects are REVIEW (class anomaly), the good parts PASS."""
    parts = write_parts(tmp / "line1" / "inbox", {"good": 8, "blob": 4, "line": 4, "pair": 1}, 5)
    parts += write_parts(tmp / "line2" / "inbox", {"good": 4, "blob": 2, "line": 2}, 6, "l2")
    for station in ("line1", "line2"):
        assert run_station(tmp / station, station, PLUGIN, RECIPE, url) == 0
    recs = records(url)
    by_name = {p.name: p for p in parts}
    assert len(recs) == len(parts) == 25
    assert {(r.sha256, r.version) for r in recs} == {(v1, "v1")}
    verdicts = {(by_name[r.name].kind, r.verdict) for r in recs}
    assert {v for k, v in verdicts if k != "good"} == {"REVIEW"}  # every defect to an operator
    good = [r.verdict for r in recs if by_name[r.name].kind == "good"]
    assert good.count("PASS") >= len(good) - 1
    return by_name


def export(tmp: Path, url: str, parts: dict[str, Part]) -> Path:
    """Step 4: the reviewed images as a dataset of the named classes; the line drawn on the
    pair image, which the model missed, is in its mask."""
    out = tmp / "reviewed"
    summary = json.loads(inspect("review", "export", "--db", url, "--out", out, "--json").stdout)
    assert summary["images"] == 25 and summary["unnamed"] == 0 and not summary["skipped"]
    classes = json.loads((out / "classes.json").read_text())["classes"]
    assert classes == ["background", "blob", "line"]
    with open(out / "reviewed.csv", newline="") as f:
        rows = {Path(r["source"]).name: r["file"] for r in csv.DictReader(f)}
    for name, part in parts.items():
        mask = cv2.imread(str(out / rows[name].replace("images", "masks")), cv2.IMREAD_UNCHANGED)
        if part.kind == "good":
            assert not mask.any(), name  # a part passed: all background
            continue
        # the named classes, each on the defect it names (the model's outline of it)
        named = {classes.index(NAMES[v]): v for v in np.unique(part.mask) if v}
        assert set(np.unique(mask)) - {0, IGNORE} == set(named), name
        assert all((part.mask[mask == k] == v).any() for k, v in named.items()), name
        if name == "pair_000.png":  # the line the model missed: every pixel of it, as drawn
            assert (mask[part.mask == 2] == classes.index("line")).all()
    return out


def train_candidate(tmp: Path, data: Path, good_only: Path) -> Path:
    """Step 5: a segmentation model of the named classes, started from the good-only
    model's U-Net (all but the head, whose classes differ)."""
    out = tmp / "candidate"
    inspect(
        "train", "--data", data, "--out", out, "--init-from", good_only, "--epochs", "12",
        "--batch", "4", "--size", "32", "--workers", "0", "--threads", "1",
    )  # fmt: skip
    card = json.loads((out / "model.json").read_text())
    assert card["classes"] == ["background", "blob", "line"]
    init = card["init_from"]
    assert init["source"] == str(good_only) and init["weights"] == str(good_only.with_suffix(".pt"))
    assert set(init["reinitialised"]) == {"head.weight", "head.bias"}
    assert init["loaded"] == init["tensors"] - 2
    return out / "model.onnx"


def backtest(url: str, candidate: Path, parts: dict[str, Part]) -> None:
    """Step 6: the candidate re-judges the recorded history: what the good-only model sent
    to an operator it decides, as the operators did."""
    res = inspect(
        "backtest", "--plugin", PLUGIN, "--recipe", RECIPE, "--candidate", candidate,
        "--db", url, "--workers", "1", "--json",
    )  # fmt: skip
    s = json.loads(res.stdout)
    assert s["images"] == 25 and s["errors"] == 0
    assert s["candidate"]["sha256"] == sha256_file(candidate)
    conf = s["confusion"]
    recorded = {v: sum(row.values()) for v, row in conf.items()}
    defects = sum(p.kind != "good" for p in parts.values())
    assert recorded["REVIEW"] >= defects == 13  # every defect went to an operator
    assert conf["REVIEW"]["REVIEW"] == 0  # a named defect is FAIL: nothing left to decide
    assert conf["REVIEW"]["FAIL"] >= defects - 2
    assert conf["PASS"]["FAIL"] <= 1
    assert s["changed"] == sum(n for a, row in conf.items() for b, n in row.items() if a != b)
    r = s["reviewed"]  # every image was decided: the good parts PASS, the defects FAIL
    assert r["images"] == 25
    assert r["recorded_agrees"] == recorded["PASS"]  # a REVIEW is never an operator's verdict
    assert r["candidate_agrees"] >= 25 - 3


def switched(tmp: Path, url: str, candidate: Path) -> None:
    """Step 7: after the promote, the next batch is recorded with v2, its defects FAIL."""
    before = len(records(url))
    later = write_parts(tmp / "line1" / "inbox", {"good": 3, "blob": 3, "line": 3}, 9, "after")
    assert run_station(tmp / "line1", "line1", PLUGIN, RECIPE, url) == 0
    recs = records(url)[before:]
    assert len(recs) == len(later)
    assert {(r.sha256, r.version) for r in recs} == {(sha256_file(candidate), "v2")}
    kind = {p.name: p.kind for p in later}
    verdicts = [(kind[r.name], r.verdict) for r in recs]
    assert sum(v == ("FAIL" if k != "good" else "PASS") for k, v in verdicts) >= len(recs) - 1
    listed = json.loads(
        inspect(
            "model", "list", "--plugin", PLUGIN, "--recipe", RECIPE, "--db", url, "--json"
        ).stdout
    )
    assert listed["active"] == {"all": "v2"}
    assert [(h["action"], h["version"]) for h in listed["history"]] == [
        ("promote", "v1"),
        ("promote", "v2"),
    ]
