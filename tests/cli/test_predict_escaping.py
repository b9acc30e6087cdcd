"""`inspect predict` and `inspect evaluate` print file, folder and class names literally: no
escape sequence reaches the terminal, no name is read as rich markup (issue 10)."""

from __future__ import annotations

import json

import cv2
import numpy as np
from click.testing import CliRunner

from inspect_core.cli import cli

HOSTILE = "a\x1b[2J[bold]b\u202e"


def test_predict_prints_a_hostile_file_name_literally(tiny_model, tmp_path):
    img = tmp_path / f"{HOSTILE}.png"
    cv2.imwrite(str(img), np.full((24, 24), 230, np.uint8))
    res = CliRunner().invoke(cli, ["predict", "--model", str(tiny_model), str(img), "--no-overlay"])
    assert res.exit_code in (0, 4), res.output
    assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
    assert "a\\x1b[2J[bold]b\\u202e.png" in res.stdout


def test_evaluate_prints_hostile_class_and_folder_names_literally(tiny_model, tmp_path):
    root = tmp_path / "[red]ds\x1b"
    for sub in ("images", "masks"):
        (root / "val" / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "val" / "images" / "a.png"), np.zeros((16, 16), np.uint8))
    cv2.imwrite(str(root / "val" / "masks" / "a.png"), np.zeros((16, 16), np.uint8))
    (root / "classes.json").write_text(json.dumps({"classes": ["background", HOSTILE, "[/x]"]}))
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(tiny_model), "--data", str(root)])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
    assert "[bold]b" in res.stdout and "[/x]" in res.stdout and "[red]ds\\x1b" in res.stdout
