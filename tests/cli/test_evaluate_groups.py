"""``inspect evaluate --by-group``: each group's scores and their spread, checked against
scoring each group's images on their own."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from inspect_core.cli import cli


@pytest.fixture
def grouped(tmp_path):
    """val: lotA_0..2 and lotB_0..1, masks of 3 classes."""
    root = tmp_path / "ds"
    (root / "val" / "images").mkdir(parents=True)
    (root / "val" / "masks").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, stem in enumerate(["lotA_0", "lotA_1", "lotA_2", "lotB_0", "lotB_1"]):
        cv2.imwrite(str(root / "val/images" / f"{stem}.png"), rng.integers(0, 255, (32, 40)))
        m = np.zeros((32, 40), np.uint8)
        m[5:20, 5:25] = 1 + i % 2
        cv2.imwrite(str(root / "val/masks" / f"{stem}.png"), m)
    meta = {"classes": ["background", "scratch", "dent"], "groups": "^(lot[A-Z])_"}
    (root / "classes.json").write_text(json.dumps(meta))
    return root


def _evaluate(*args):
    return CliRunner().invoke(cli, ["evaluate", *map(str, args)], catch_exceptions=False)


def test_each_group_scored_apart_with_the_spread(tiny_model, grouped, tmp_path):
    s = json.loads(
        _evaluate("--model", tiny_model, "--data", grouped, "--by-group", "--json").stdout
    )
    assert set(s["by_group"]) == {"lotA", "lotB"}
    assert s["by_group"]["lotA"]["images"] == 3 and s["by_group"]["lotB"]["images"] == 2
    # each group's numbers are those of its images scored alone
    alone = tmp_path / "alone"
    (alone / "val" / "images").mkdir(parents=True)
    (alone / "val" / "masks").mkdir(parents=True)
    for p in (grouped / "val" / "images").glob("lotB_*"):
        (alone / "val/images" / p.name).write_bytes(p.read_bytes())
        (alone / "val/masks" / p.name).write_bytes((grouped / "val/masks" / p.name).read_bytes())
    (alone / "classes.json").write_text((grouped / "classes.json").read_text())
    b = json.loads(_evaluate("--model", tiny_model, "--data", alone, "--json").stdout)
    assert s["by_group"]["lotB"]["miou"] == pytest.approx(b["miou"])
    sp = s["group_spread"]
    mious = [g["miou"] for g in s["by_group"].values()]
    assert sp["groups"] == 2 and sp["min_miou"] == min(mious) and sp["max_miou"] == max(mious)
    assert sp["worst_group"] == min(s["by_group"], key=lambda g: s["by_group"][g]["miou"])
    assert sp["std_miou"] == pytest.approx(float(np.std(mious)))


def test_terminal_table_and_a_pattern_from_the_command_line(tiny_model, grouped):
    res = _evaluate("--model", tiny_model, "--data", grouped, "--groups", "^(lot)[AB]_")
    assert res.exit_code == 0 and "by group" not in res.output  # --groups alone: one score
    res = _evaluate("--model", tiny_model, "--data", grouped, "--by-group", "--groups", "^(lot)")
    assert "1 groups" in res.output and "lot" in res.output


def test_a_pattern_that_misses_images_is_refused_before_scoring(
    tiny_model, grouped, monkeypatch, capsys
):
    from test_cli import main_exit

    args = ["--model", tiny_model, "--data", grouped, "--by-group", "--groups", "^(lotA)_"]
    code, out, err = main_exit(monkeypatch, capsys, "evaluate", *map(str, args))
    assert code == 2 and not out
    assert "does not match 2 image(s) (lotB_0.png, lotB_1.png)" in err and "--groups" not in out


def test_a_dataset_with_the_classes_in_another_order_is_refused(
    tiny_model, grouped, monkeypatch, capsys
):
    """Mask value 1 would be scored as the model's class 1 though it means another class."""
    from test_cli import main_exit

    meta = {"classes": ["background", "dent", "scratch"]}
    (grouped / "classes.json").write_text(json.dumps(meta))
    code, out, err = main_exit(
        monkeypatch, capsys, "evaluate", "--model", tiny_model, "--data", grouped
    )
    assert code == 2 and not out
    assert "in another place" in err and "classes.json" in err
