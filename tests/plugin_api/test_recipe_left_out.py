"""A plugin's model with changed weights is refused whatever is done to its card (issue 10,
second attack round): with the card deleted, its sha256 a number, the card path a directory or a
truncated card, the recipe is left out as the plugin loads, and asking for it (`inspect
predict`, `inspect station check`) says why, naming the card file; the plugin's other recipes
keep working."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspect_core.plugin_api import manager as plugins
from inspect_core.plugin_api.hookspecs import hookimpl
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.recipe import Domain, Recipe

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models"
SAMPLE = ROOT / "plugins" / "inspect_plugins" / "industrial" / "samples" / "steel_fail_003169.png"
RULES = '[[rules]]\ntype = "min_area"\nmin = 1\n'


def tamper(model: Path) -> None:
    """Bias the 4-class head towards background, so the failing sample would PASS (the attack:
    repro 15); the file still loads and runs."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.ndim == 1 and arr.shape[0] == 4:
            biased = arr.copy()
            biased[0] += 50.0
            init.CopyFrom(numpy_helper.from_array(biased, init.name))
    onnx.save(proto, str(model))


def _sha_one(card: Path) -> None:
    card.write_text(json.dumps({**json.loads(card.read_text()), "sha256": 1}))


def _directory(card: Path) -> None:
    card.unlink()
    card.mkdir()


DAMAGE = {
    "card deleted": (lambda c: c.unlink(), "steel.json is missing"),
    "sha256 = 1": (_sha_one, '"sha256": 1'),
    "card is a directory": (_directory, "a directory"),
    "card truncated": (lambda c: c.write_bytes(c.read_bytes()[:300]), "not valid JSON"),
}


@pytest.fixture
def line_plugin(tmp_path) -> tuple[types.ModuleType, Path]:
    """A plugin "line" shipping two recipes, steel and other, each a model with its card."""
    (tmp_path / "models").mkdir()
    for name in ("steel", "other"):
        shutil.copy(MODELS / "steel.onnx", tmp_path / "models" / f"{name}.onnx")
        shutil.copy(MODELS / "steel.json", tmp_path / "models" / f"{name}.json")
        (tmp_path / f"{name}.toml").write_text(
            f'name = "{name}"\nmodel = "models/{name}.onnx"\n{RULES}'
        )
    mod = types.ModuleType("line")

    @hookimpl
    def register_domains(register):
        recipes = [Recipe.from_toml(tmp_path / f"{n}.toml") for n in ("steel", "other")]
        register(Domain("line", recipes))

    mod.register_domains = register_domains
    return mod, tmp_path / "models" / "steel.json"


def registry_with(mod, monkeypatch) -> plugins.Registry:
    reg = plugins.load_plugins(extra=[("line", mod)])
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    return reg


def test_a_plugins_recipes_need_their_cards(line_plugin, monkeypatch):
    reg = registry_with(line_plugin[0], monkeypatch)
    assert all(r.card_required for r in reg.domains["line"].recipes)
    assert find_recipe("line", "steel").check_model().status == "verified"


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_tampered_model_with_a_broken_card_is_left_out_saying_why(
    line_plugin, monkeypatch, damage
):
    mod, card = line_plugin
    tamper(card.with_suffix(".onnx"))
    how, words = DAMAGE[damage]
    how(card)
    reg = registry_with(mod, monkeypatch)
    assert [r.name for r in reg.domains["line"].recipes] == ["other"]  # its sibling works
    failure = reg.left_out("line", "steel")
    assert failure is not None and str(card) in failure.reason and words in failure.reason
    with pytest.raises(Exception) as e:
        find_recipe("line", "steel")
    msg = str(e.value)
    assert "has no recipe 'steel': it was left out" in msg and str(card) in msg and words in msg
    assert "reinstall" in msg and "its other recipes: other" in msg


def main_exit(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from inspect_core import cli as cli_mod

    monkeypatch.setattr(sys, "argv", ["inspect", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("damage", ["card deleted", "card truncated"])
def test_predict_says_the_recipe_was_left_out_because_of_its_card(
    line_plugin, monkeypatch, capsys, damage
):
    mod, card = line_plugin
    DAMAGE[damage][0](card)
    registry_with(mod, monkeypatch)
    args = ("predict", "--plugin", "line", "--recipe", "steel", SAMPLE, "--json", "--no-overlay")
    code, out, err = main_exit(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert "left out" in err and str(card) in err and DAMAGE[damage][1] in err
    code, out, _ = main_exit(monkeypatch, capsys, *args[:4], "other", *args[5:])
    assert code == 4 and json.loads(out)["source"] == str(SAMPLE)  # the sibling still runs (FAIL)


@pytest.mark.parametrize("damage", ["card deleted", "sha256 = 1", "card is a directory"])
def test_station_check_refuses_the_plugins_recipe(line_plugin, monkeypatch, tmp_path, damage):
    from inspect_core.cli import cli

    mod, card = line_plugin
    tamper(card.with_suffix(".onnx"))
    DAMAGE[damage][0](card)
    reg = registry_with(mod, monkeypatch)
    plugins.load_cli_plugins(cli)
    station = tmp_path / "station"
    (station / "inbox").mkdir(parents=True)
    (station / "s.toml").write_text(
        '[station]\nname = "s"\nplugin = "line"\nrecipe = "steel"\n'
        '[source]\npath = "inbox"\n[database]\nenabled = false\n'
    )
    assert "station" in cli.commands, reg.failures
    res = CliRunner().invoke(cli, ["station", "check", str(station / "s.toml"), "--json"])
    assert res.exit_code == 2, res.output
    problems = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
    msg = problems["station.recipe"]
    assert "left out" in msg and str(card) in msg and DAMAGE[damage][1] in msg
