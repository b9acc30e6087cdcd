"""``--plugin industrial:steel`` (PLUGIN:RECIPE in one option) works wherever ``--plugin`` and
``--recipe`` do, as ``--plugin industrial --recipe steel`` (issue 27, item 4); forms that
disagree, or a PLUGIN:RECIPE with a part missing, are a usage error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from conftest import main_exit
from db_support import make_inspection

from inspect_core.commands.plugin_option import split_plugin_recipe
from inspect_core.errors import InspectError

ROOT = Path(__file__).resolve().parents[2]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"
SAMPLE = next((ROOT / "plugins" / "inspect_plugins" / "industrial" / "samples").glob("steel_*"))


@pytest.fixture
def records(tmp_path) -> str:
    """A records database with inspections of industrial:steel and of industrial:tile."""
    from inspect_db import Recorder

    url = f"sqlite:///{tmp_path / 'line1.db'}"
    with Recorder(url) as rec:
        for i in range(5):
            rec.record(make_inspection(i, recipe="steel" if i < 3 else "tile", verdict="PASS"))
    return url


# every command with --plugin and --recipe: its other arguments ({db}, {tmp} filled in)
COMMANDS = {
    "predict": ["predict", str(SAMPLE), "--no-overlay", "--json"],
    "health fit": ["health", "fit", "--data", "{tmp}"],
    "model list": ["model", "list", "--db", "{db}", "--json"],
    "model add": ["model", "add", str(STEEL), "--db", "{db}", "--store", "{tmp}/store"],
    "model promote": ["model", "promote", "recipe", "--db", "{db}"],
    "model rollback": ["model", "rollback", "--db", "{db}"],
    "report": ["report", "--db", "{db}", "--json"],
    "backtest": ["backtest", "--candidate", str(STEEL), "--db", "{db}", "--json"],
}
# commands whose first use of the recipe is find_recipe: there the names are caught
FINDS_RECIPE = ["predict", "health fit", "model add", "backtest"]


def _args(name: str, db: str, tmp: Path) -> list[str]:
    return [a.replace("{db}", db).replace("{tmp}", str(tmp)) for a in COMMANDS[name]]


@pytest.mark.parametrize(
    ("plugin", "recipe", "want"),
    [
        ("industrial:steel", None, ("industrial", "steel")),
        ("industrial", "steel", ("industrial", "steel")),
        ("industrial:steel", "steel", ("industrial", "steel")),  # the same twice: fine
        (None, "industrial:steel", ("industrial", "steel")),
        ("industrial", "industrial:steel", ("industrial", "steel")),
        (None, None, (None, None)),
        ("industrial", None, ("industrial", None)),  # the command says what is missing
    ],
)
def test_the_forms_that_name_one_recipe(plugin, recipe, want):
    assert split_plugin_recipe(plugin, recipe) == want


@pytest.mark.parametrize(
    ("plugin", "recipe", "words"),
    [
        ("industrial:steel", "tile", "name different recipes"),
        ("aerial", "industrial:steel", "name different recipes"),
        ("industrial:steel", "industrial:tile", "name different recipes"),
        ("industrial:", None, "is not PLUGIN:RECIPE"),
        (":steel", None, "is not PLUGIN:RECIPE"),
        ("industrial:steel:x", None, "is not PLUGIN:RECIPE"),
    ],
)
def test_the_forms_that_disagree_are_usage_errors(plugin, recipe, words):
    with pytest.raises(click.UsageError, match=words) as e:
        split_plugin_recipe(plugin, recipe)
    assert "--plugin PLUGIN:RECIPE" in e.value.message  # and the right forms


@pytest.mark.parametrize("name", FINDS_RECIPE)
def test_plugin_colon_recipe_reaches_the_recipe_lookup(
    monkeypatch, capsys, tmp_path, records, name
):
    """Both forms look up the same recipe (the lookup is stopped there: what follows is each
    command's own test)."""
    import inspect_core.plugin_api.resolve as resolve

    asked: list[tuple[str, str]] = []

    def find_recipe(plugin: str, recipe: str) -> None:
        asked.append((plugin, recipe))
        raise InspectError("stopped at the recipe lookup")

    monkeypatch.setattr(resolve, "find_recipe", find_recipe)
    args = _args(name, records, tmp_path)
    for form in (["--plugin", "industrial:steel"], ["--plugin", "industrial", "--recipe", "steel"]):
        code, _, err = main_exit(monkeypatch, capsys, *args, *form)
        assert code == 2 and "stopped at the recipe lookup" in err, err
    assert asked == [("industrial", "steel")] * 2


def test_model_list_takes_plugin_colon_recipe(monkeypatch, capsys, tmp_path, records):
    args = _args("model list", records, tmp_path)
    split = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial", "--recipe", "steel")
    joined = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial:steel")
    assert split[0] == joined[0] == 0, joined
    assert json.loads(joined[1]) == json.loads(split[1])
    assert json.loads(joined[1])["recipe"] == "steel"


def test_promote_and_rollback_take_plugin_colon_recipe(monkeypatch, capsys, tmp_path, records):
    for name in ("model promote", "model rollback"):
        code, out, err = main_exit(
            monkeypatch, capsys, *_args(name, records, tmp_path), "--plugin", "industrial:steel"
        )
        assert code == 0 and out.startswith("industrial:steel: "), (name, out, err)


def test_report_filters_by_plugin_colon_recipe(monkeypatch, capsys, tmp_path, records):
    args = _args("report", records, tmp_path)
    split = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial", "--recipe", "steel")
    joined = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial:steel")
    assert split[0] == joined[0] == 0, joined[2]
    data = json.loads(joined[1])
    assert data["filters"] == json.loads(split[1])["filters"]
    assert (data["filters"]["plugin"], data["filters"]["recipe"]) == ("industrial", "steel")
    assert data["total"] == 3  # the two tile inspections are left out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_conflicting_forms_are_a_usage_error_on_every_command(
    monkeypatch, capsys, tmp_path, records, name
):
    args = _args(name, records, tmp_path)
    code, out, err = main_exit(
        monkeypatch, capsys, *args, "--plugin", "industrial:steel", "--recipe", "tile"
    )
    assert code == 2 and "name different recipes" in err, (code, out, err)
    code, _, err = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial:")
    assert code == 2 and "'industrial:' is not PLUGIN:RECIPE" in err, err
    code, out, _ = main_exit(monkeypatch, capsys, *args, "--help")
    assert code == 0 and "PLUGIN[:RECIPE]" in out


@pytest.mark.parametrize("name", ["model list", "model add", "backtest"])
def test_a_command_that_needs_a_recipe_says_both_forms(
    monkeypatch, capsys, tmp_path, records, name
):
    args = _args(name, records, tmp_path)
    code, _, err = main_exit(monkeypatch, capsys, *args, "--plugin", "industrial")
    assert code == 2 and "Missing option '--recipe'" in err and "PLUGIN:RECIPE" in err, err
    code, _, err = main_exit(monkeypatch, capsys, *args)
    assert code == 2 and "Missing option '--plugin'" in err, err
