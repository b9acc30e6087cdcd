"""training/install_check.py: train.sh never installs a model below the one it replaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _card(miou: float, images=("val/images/a.png", "val/images/b.png")) -> dict:
    split = {"source": "val split", "images": list(images)} if images is not None else None
    return {"validation": {"miou": miou}, "validation_split": split}


def _check(tmp_path, new: dict, old: dict | None, *extra: str):
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "model.json").write_text(json.dumps(new))
    installed = tmp_path / "installed.json"
    if old is not None:
        installed.write_text(json.dumps(old))
    cmd = [sys.executable, "training/install_check.py", str(tmp_path / "run" / "model.json")]
    return subprocess.run(
        [*cmd, str(installed), *extra], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_better_or_equal_model_on_the_same_images_installs(tmp_path):
    res = _check(tmp_path, _card(0.80), _card(0.79))
    assert res.returncode == 0 and "val mIoU 0.8000 against the installed 0.7900" in res.stdout
    assert _check(tmp_path, _card(0.79), _card(0.79)).returncode == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert _check(fresh, _card(0.5), None).returncode == 0  # nothing installed yet


def test_a_lower_model_is_refused_and_force_installs_it(tmp_path):
    res = _check(tmp_path, _card(0.78), _card(0.79))
    assert res.returncode == 1
    assert "lower: val mIoU 0.7800 against the installed 0.7900 on the same 2 images" in res.stderr
    assert "FORCE=1" in res.stderr and "Traceback" not in res.stderr
    forced = _check(tmp_path, _card(0.78), _card(0.79), "--force")
    assert forced.returncode == 0 and "install (forced)" in forced.stdout


def test_scores_on_other_or_unlisted_images_cannot_be_compared(tmp_path):
    res = _check(tmp_path, _card(0.9, images=("val/images/a.png",)), _card(0.5))
    assert res.returncode == 1 and "validated on other images (1 against 2" in res.stderr
    res = _check(tmp_path, _card(0.9), _card(0.5, images=None))
    assert res.returncode == 1 and "does not list its validation images" in res.stderr


def test_a_card_from_before_validation_split_is_compared_on_the_val_split(tmp_path):
    new = {**_card(0.86), "dataset": {"name": "ball-screw"}}
    new["validation_split"]["source"] = "val split"
    new["validation"]["images"] = 2
    old = {"validation": {"miou": 0.85, "images": 2}, "dataset": {"name": "ball-screw"}}
    assert _check(tmp_path, new, old).returncode == 0
    assert _check(tmp_path, {**new, "validation": {"miou": 0.8, "images": 2}}, old).returncode == 1
    other = {**old, "dataset": {"name": "neu-steel"}}
    assert _check(tmp_path, new, other).returncode == 1  # another dataset: not comparable
