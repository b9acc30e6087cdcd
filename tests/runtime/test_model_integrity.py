"""A model whose bytes no longer match its card is refused wherever it is loaded (issue 10,
item 5): the Inspector, `inspect predict`, `inspect evaluate`, `inspect station check`; a
development override loads it with a warning; each file is hashed once per process."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from inspect_core import cards as card_mod
from inspect_core.cards import ALLOW_UNVERIFIED_ENV, sha256_file
from inspect_core.errors import ModelError
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"
SAMPLE = ROOT / "plugins" / "inspect_plugins" / "industrial" / "samples" / "steel_fail_003169.png"


def swap_head_filters(path: Path) -> None:
    """Swap two output filters of the model's last convolution, in place: the file still
    loads and runs, and two classes trade places."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    inits = {i.name: i for i in proto.graph.initializer}
    conv = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in inits][-1]
    head = inits[conv.input[1]]
    w = numpy_helper.to_array(head).copy()
    w[[1, 2]] = w[[2, 1]]
    head.CopyFrom(numpy_helper.from_array(w, head.name))
    onnx.save(proto, str(path))


@pytest.fixture(scope="module")
def steel_copies(tmp_path_factory) -> tuple[Path, Path]:
    """(intact copy, tampered copy) of the shipped steel model, each with the shipped card."""
    out = []
    for name in ("intact", "tampered"):
        d = tmp_path_factory.mktemp(name)
        shutil.copy(STEEL, d / "steel.onnx")
        shutil.copy(STEEL.with_suffix(".json"), d / "steel.json")
        if name == "tampered":
            swap_head_filters(d / "steel.onnx")
        out.append(d / "steel.onnx")
    return out[0], out[1]


def recipe_for(model: Path) -> Recipe:
    return Recipe.from_dict(
        {"name": "steel", "model": model.name, "rules": [{"type": "min_area", "min": 1}]},
        model.parent,
    )


def hashes(model: Path) -> tuple[str, str]:
    """(the card's sha256, the file's)."""
    return json.loads(model.with_suffix(".json").read_text())["sha256"], sha256_file(model)


def test_the_tampered_copy_differs_and_still_loads_without_a_card(steel_copies, tmp_path):
    _, tampered = steel_copies
    expected, actual = hashes(tampered)
    assert expected != actual
    bare = tmp_path / "bare.onnx"  # the same bytes without the card: nothing to check against
    shutil.copy(tampered, bare)
    assert OnnxModel(bare).classes[0] == "background"


def test_inspector_refuses_a_model_that_does_not_match_its_card(steel_copies):
    intact, tampered = steel_copies
    ok = Inspector(recipe_for(intact))
    assert ok.model_card == str(intact.with_suffix(".json"))
    with pytest.raises(ModelError) as e:
        Inspector(recipe_for(tampered))
    msg = str(e.value)
    expected, actual = hashes(tampered)
    assert str(tampered) in msg and expected in msg and actual in msg
    assert "reinstall" in msg and "card" in msg and ALLOW_UNVERIFIED_ENV in msg


def test_override_loads_it_with_a_warning_naming_file_and_hashes(steel_copies, monkeypatch, caplog):
    _, tampered = steel_copies
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    monkeypatch.setattr(card_mod, "_LOGGED", set())
    with caplog.at_level(logging.WARNING, logger="inspect.models"):
        insp = Inspector(recipe_for(tampered))
    expected, actual = hashes(tampered)
    assert insp.model_card is None and insp.model_sha256 == actual  # recorded as it is
    (rec,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(tampered) in rec.getMessage() and expected in rec.getMessage()
    assert actual in rec.getMessage() and ALLOW_UNVERIFIED_ENV in rec.getMessage()
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "0")  # anything but 1 is no override
    with pytest.raises(ModelError):
        Inspector(recipe_for(tampered))


def main_exit(monkeypatch, capsys, *args):
    """``inspect ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_predict_refuses_it(steel_copies, monkeypatch, capsys):
    intact, tampered = steel_copies
    code, out, err = main_exit(
        monkeypatch, capsys, "predict", "--model", tampered, SAMPLE, "--json", "--no-overlay"
    )
    assert code == 2 and out == "" and str(tampered) in err and hashes(tampered)[0] in err
    code, out, err = main_exit(
        monkeypatch, capsys, "predict", "--model", intact, SAMPLE, "--json", "--no-overlay"
    )
    assert code in (0, 3, 4) and json.loads(out)["model_card"] == str(intact.with_suffix(".json"))
    assert "warning" not in err


def test_predict_warns_about_a_bare_model_without_a_card(tiny_model, monkeypatch, capsys, tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((20, 20), np.uint8))
    bare = tmp_path / "bare.onnx"  # no card file beside it at all: runs, with a warning
    shutil.copy(tiny_model, bare)
    code, out, err = main_exit(
        monkeypatch, capsys, "predict", "--model", bare, img, "--json", "--no-overlay"
    )
    assert code in (0, 4) and json.loads(out)["model_card"] is None
    assert "warning" in err and "no model card" in err and str(bare) in err


def dataset(root: Path) -> Path:
    for sub in ("images", "masks"):
        (root / "val" / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "val" / "images" / "a.png"), np.zeros((16, 16), np.uint8))
    cv2.imwrite(str(root / "val" / "masks" / "a.png"), np.zeros((16, 16), np.uint8))
    (root / "classes.json").write_text(
        json.dumps({"classes": ["background", "inclusion", "patches", "scratches"]})
    )
    return root


def test_evaluate_refuses_it(steel_copies, monkeypatch, capsys, tmp_path):
    intact, tampered = steel_copies
    data = dataset(tmp_path / "ds")
    code, out, err = main_exit(
        monkeypatch, capsys, "evaluate", "--model", tampered, "--data", data, "--json"
    )
    assert code == 2 and str(tampered) in err and hashes(tampered)[1] in err
    from inspect_core import cli as cli_mod

    monkeypatch.setattr(
        sys, "argv", ["inspect", "evaluate", "--model", str(intact), "--data", str(data), "--json"]
    )
    cli_mod.main()  # returns: exit 0
    assert json.loads(capsys.readouterr().out)["images"] == 1


def test_station_check_refuses_it(steel_copies, tmp_path):
    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins

    if "station" not in cli.commands:
        load_cli_plugins(cli)
    intact, tampered = steel_copies
    for model in (intact, tampered):
        (tmp_path / "r.toml").write_text(
            f'name = "steel"\nmodel = "{model}"\n[[rules]]\ntype = "min_area"\nmin = 1\n'
        )
        (tmp_path / "inbox").mkdir(exist_ok=True)
        (tmp_path / "s.toml").write_text(
            '[station]\nname = "s"\nrecipe_file = "r.toml"\n'
            '[source]\npath = "inbox"\n[database]\nenabled = false\n'
        )
        res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "s.toml"), "--json"])
        if model == intact:
            assert res.exit_code == 0, res.output
            continue
        assert res.exit_code == 2
        problems = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
        msg = problems["station.recipe_file"]
        assert str(tampered) in msg and all(h in msg for h in hashes(tampered))


def test_each_file_is_hashed_once_per_process(steel_copies, monkeypatch, tmp_path):
    calls = []
    real = card_mod.sha256_file
    monkeypatch.setattr(card_mod, "sha256_file", lambda p: calls.append(p) or real(p))
    model = tmp_path / "steel.onnx"
    shutil.copy(steel_copies[0], model)
    shutil.copy(steel_copies[0].with_suffix(".json"), tmp_path / "steel.json")
    inspector = Inspector(recipe_for(model))
    for _ in range(3):
        inspector.inspect_file(SAMPLE)
        Inspector(recipe_for(model), model=inspector.model)
    assert len(calls) == 1
    swap_head_filters(model)  # a new size or mtime: hashed again, and refused
    with pytest.raises(ModelError):
        Inspector(recipe_for(model))
    assert len(calls) == 2
