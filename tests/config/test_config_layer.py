"""One typed configuration layer (issue 23, item 2): every key declared once as a pydantic
model, every problem at once with its key path and a "did you mean", a plugin's rule checked
the same way, and the configuration reference generated from the models."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import pytest
from pydantic import Field

from inspect_core.config import Range, Settings, lenient, problems_of, validate
from inspect_core.config.reference import OUT, all_sections, render
from inspect_core.rules.base import RuleConfigError, RuleContext
from inspect_core.rules.engine import BUILTIN_RULES, build_rules
from inspect_core.rules.params import RuleParams
from inspect_core.types import RuleHit


class Table(Settings):
    size: Annotated[int, Range(1, 51, "px", whole=True)] = 3
    name: str = Field(json_schema_extra={"hint": 'e.g. name = "a"'})
    ratio: float = Field(0.5, gt=0, allow_inf_nan=False)


def test_every_problem_at_once_with_its_key_and_did_you_mean():
    _, problems = validate(Table, {"sise": 3, "size": 0, "ratio": "x"}, prefix="steps[2]")
    got = dict(problems)
    assert got["steps[2].sise"] == "unknown key; did you mean 'size'?"
    assert got["steps[2].size"] == "must be a whole number in 1..51 px, got 0"
    assert got["steps[2].name"] == 'required (e.g. name = "a")'
    assert got["steps[2].ratio"] == "must be a number, got string 'x'"


def test_lenient_keeps_the_defaults_where_values_are_wrong():
    t, problems = lenient(Table, {"size": 1e9, "ratio": float("inf")}, "t", {}, {"name": "?"})
    assert (t.size, t.ratio, t.name) == (3, 0.5, "?")
    assert {k for k, _ in problems} == {"t.size", "t.ratio", "t.name"}
    assert dict(problems)["t.ratio"].startswith("must be a finite number")


def test_the_station_file_names_the_file_and_every_key(tmp_path):
    from inspect_stations.config.station import ConfigError, load_config

    path = tmp_path / "s.toml"
    path.write_text('[station]\nnme = "x"\n[source]\npath = "in"\npoll_s = 0\n[limit]\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ")
    for words in (
        "station.nme: unknown key; did you mean 'name'?",
        "station.name: required",
        "source.poll_s: must be greater than 0, got 0",
        "limit: unknown key; did you mean 'limits'?",
    ):
        assert words in text, text


class Bright(RuleParams):
    """A plugin's rule: declares its parameters as a model, gets the same checks."""

    min_level: Annotated[float, Range(0, 255)] = 200
    name: str = "bright"

    def __call__(self, ctx: RuleContext) -> list[RuleHit]:
        return []


def test_a_plugin_rule_with_its_own_model_is_checked_like_the_built_in_ones():
    factories = {**BUILTIN_RULES, "bright": Bright}
    (rule,) = build_rules([{"type": "bright", "min_level": 90}], factories)
    assert isinstance(rule, Bright) and rule.min_level == 90 and rule.name == "bright"
    with pytest.raises(RuleConfigError) as e:
        build_rules([{"type": "bright", "min_levl": 1, "name": 3}], factories)
    msg = str(e.value)
    assert msg.startswith("rules[0] (bright")
    assert "min_levl: unknown key; did you mean 'min_level'?" in msg
    assert "name must be a string" in msg


def test_built_in_rule_problems_come_together():
    with pytest.raises(RuleConfigError) as e:
        build_rules(
            [{"type": "min_area", "min": -1, "unit": "mm", "decison": "FAIL"}], BUILTIN_RULES
        )
    msg = str(e.value)
    assert "min must be a number in 0..1e+08" in msg and "unit must be one of" in msg
    assert "did you mean 'decision'" in msg


def test_rule_contracts_import_nothing_above_them():
    code = (
        "import sys; import inspect_core.rules.base, inspect_core.config.settings; "
        "bad = [m for m in sys.modules if m.startswith(('inspect_core.rules.engine', "
        "'inspect_core.runtime', 'inspect_core.plugin_api', 'inspect_stations', 'numpy'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_configuration_reference_is_made_from_the_models():
    """docs/reference/configuration.md is the generator's output: edit a model, run
    `python -m inspect_core.config.reference`, commit both."""
    assert OUT.read_text(encoding="utf-8") == render(all_sections()), (
        "docs/reference/configuration.md is stale: run python -m inspect_core.config.reference"
    )
    text = OUT.read_text(encoding="utf-8")
    for words in ("### `[limits]`", "`sixteen_bit`", '### `[[rules]] type = "roi"`', "1..51 px"):
        assert words in text


def test_problems_of_names_nested_keys():
    from pydantic import ValidationError

    from inspect_stations.config.types import StationConfig

    try:
        StationConfig.model_validate({"name": "s", "limits": {"max_pixels": "many"}})
    except ValidationError as e:
        assert problems_of(e, StationConfig) == [
            ("limits.max_pixels", "must be an integer, got string 'many'")
        ]


def test_an_unregistered_name_is_refused_with_the_closest_known_one():
    from inspect_core.config import not_registered

    assert not_registered("source", "foldr", ["folder", "camera"]) == (
        "no source named 'foldr' is registered; did you mean 'folder'? Known: camera, folder"
    )
    assert not_registered("sink", "kafka", []) == "no sink named 'kafka' is registered; known: none"
    assert not_registered("sink", None, ["sql"]).endswith("; known: sql")


def test_a_recipe_file_reports_every_problem_of_its_keys_at_once(tmp_path):
    from inspect_core.runtime.recipe import Recipe, RecipeError

    path = tmp_path / "r.toml"
    path.write_text(
        'name = "r"\nmodel = "m.onnx"\ntile_overlpa = 0.3\ntile = 5\nregion_classes = "scratch"\n'
        '[[samples]]\nimage = "a.png"\nexpected = "maybe"\nnote = "after the last sample"\n'
    )
    with pytest.raises(RecipeError) as err:
        Recipe.from_toml(path)
    text = str(err.value)
    assert text.startswith(f"{path}: 5 problems:")
    assert "tile_overlpa: unknown key; did you mean 'tile_overlap'?" in text
    assert "tile: must be a whole number in 64..4096 px (or 0), got 5" in text
    assert "region_classes: " in text
    assert "samples[0].expected: " in text and "'PASS'" in text
    assert "samples[0].note: unknown key" in text and "move it above" in text


def test_a_recipe_file_takes_lower_case_verdicts_and_its_own_keys(tmp_path):
    from inspect_core.runtime.recipe import Recipe

    path = tmp_path / "r.toml"
    path.write_text(
        'name = "r"\nmodel = "m.onnx"\ntile = 256\n'
        '[[samples]]\nimage = "a.png"\nexpected = "fail"\n'
    )
    recipe = Recipe.from_toml(path)
    assert recipe.tile == 256 and recipe.samples[0].expected == "FAIL"
    assert recipe.samples[0].image == (tmp_path / "a.png").resolve()
