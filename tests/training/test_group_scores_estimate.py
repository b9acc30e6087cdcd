"""training/group_scores.py --unseen-from: the settings run's unseen score in the form the
shipped model runs (its test-time copies and prior correction), never another's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_kit import load_script

from inspect_core.errors import InspectError


@pytest.fixture
def script(monkeypatch):
    return load_script("group_scores", monkeypatch)


def _s(miou):
    return {"miou": miou, "mean_dice": miou + 0.1, "images": 18}


def _settings(tmp_path, **extra) -> Path:
    card = {
        "dataset": {"name": "aerial"},
        "validation_split": {"unseen": True, "groups": ["tile2", "tile4"]},
        "validation": _s(0.52),
        "validation_no_tta": _s(0.50),
        "tta": ["h", "v"],
        "calibration": {"applied": False},
        **extra,
    }
    path = tmp_path / "landcover" / "model.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(card))
    return path


def test_a_model_shipped_without_copies_gets_the_score_without_copies(script, tmp_path):
    shipped = {"dataset": {"name": "aerial"}, "tta": [], "calibration": {"applied": False}}
    est = script.estimate_from(_settings(tmp_path), shipped)
    assert est["miou"] == 0.5 and est["groups"] == ["tile2", "tile4"]
    assert "test-time copies none, prior correction off" in est["what"]
    same = script.estimate_from(_settings(tmp_path), {**shipped, "tta": ["h", "v"]})
    assert same["miou"] == 0.52 and "copies h,v" in same["what"]


def test_a_correction_the_shipped_model_lacks_is_taken_out(script, tmp_path):
    settings = _settings(tmp_path, calibration={"applied": True}, validation_uncalibrated=_s(0.51))
    shipped = {"dataset": {"name": "aerial"}, "tta": ["h", "v"], "calibration": {}}
    assert script.estimate_from(settings, shipped)["miou"] == 0.51


def test_other_dataset_other_form_or_no_unseen_score_are_refused(script, tmp_path):
    shipped = {"dataset": {"name": "camvid"}, "tta": []}
    with pytest.raises(InspectError, match="a run on aerial, this model is of camvid"):
        script.estimate_from(_settings(tmp_path), shipped)
    shipped = {"dataset": {"name": "aerial"}, "tta": ["h"], "calibration": {"applied": False}}
    with pytest.raises(InspectError, match="no score of the settings run in the shipped"):
        script.estimate_from(_settings(tmp_path), shipped)
    seen = _settings(tmp_path, validation_split={"unseen": False})
    with pytest.raises(InspectError, match="no unseen-group score"):
        script.estimate_from(seen, shipped)
