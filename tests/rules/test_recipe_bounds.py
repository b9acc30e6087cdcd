"""Every numeric parameter of a recipe has a sane range, checked when the recipe loads (issue 10,
item 16): an `open` kernel of 1e9 is refused by the recipe, its station overrides and
`inspect station check`, not found by OpenCV running out of memory on every image."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspect_core.rules.engine import BUILTIN_RULES
from inspect_core.runtime.postprocess import STEP_TYPES
from inspect_core.runtime.preprocess import PREPROCESS_TYPES
from inspect_core.runtime.recipe import Recipe, RecipeError

HUGE = 1_000_000_000


def write_recipe(tmp_path: Path, model: Path, body: str = "") -> Path:
    path = tmp_path / "part.toml"
    path.write_text(f'name = "part"\nmodel = "{model}"\n' + body)
    return path


@pytest.mark.parametrize(
    "body,key,allowed",
    [
        (
            '[[postprocess]]\ntype = "open"\nsize = 1000000000\n',
            "postprocess[0] (open): size",
            "1..51",
        ),
        ('[[postprocess]]\ntype = "close"\nsize = 0\n', "postprocess[0] (close): size", "1..51"),
        ('[[postprocess]]\ntype = "open"\nsize = 3.5\n', "size", "whole number"),
        ('[[postprocess]]\ntype = "open"\nsize = 3.0\n', "size", "whole number"),
        ("tile = 256.0\n", "tile", "whole number"),
        ('[[postprocess]]\ntype = "fill_holes"\nmax_area = 1e12\n', "max_area", "0..1e+08"),
        ('[[postprocess]]\ntype = "min_area"\nmin_px = {scratch = -1}\n', "min_px", "0..1e+08"),
        ('[[postprocess]]\ntype = "min_area"\ndefault_px = nan\n', "default_px", "0..1e+08"),
        ('[[rules]]\ntype = "min_area"\nmin = inf\n', "rules[0] (min_area): min", "0..1e+08"),
        ('[[rules]]\ntype = "max_count"\nmax = 1e12\n', "rules[0] (max_count): max", "0..1e+06"),
        ('[[rules]]\ntype = "roi"\npolygon = [[0, 0], [1e12, 0], [0, 5]]\n', "polygon", "-1e+06"),
        ('[[rules]]\ntype = "review_band"\nlow = -1\n', "low", "0..1"),
        ("tile = 1000000000\n", "tile", "64..4096"),
        ("tile = 8\n", "tile", "or 0"),
        ("tile_overlap = 0.99\n", "tile_overlap", "0..0.75"),
        ("pixel_size_mm = 0.0\n", "pixel_size_mm", "1e-05..100000"),
        ('preprocess = [{type = "resize", width = 1000000000}]\n', "width", "16..4096"),
        ('preprocess = [{type = "clahe", grid = 100000}]\n', "grid", "1..64"),
    ],
)
def test_out_of_range_values_are_refused_naming_file_key_and_range(
    tiny_model, tmp_path, body, key, allowed
):
    path = write_recipe(tmp_path, tiny_model, body)
    with pytest.raises(RecipeError) as e:
        Recipe.from_toml(path)
    msg = str(e.value)
    assert str(path) in msg and key in msg and allowed in msg, msg


def test_station_overrides_are_checked_as_the_recipe_is(tiny_model, tmp_path):
    recipe = Recipe.from_toml(
        write_recipe(tmp_path, tiny_model, '[[rules]]\ntype = "min_area"\nmin = 5\n')
    )
    with pytest.raises(RecipeError, match=r"postprocess\[0\] \(open\): size"):
        recipe.with_overrides({"postprocess": [{"type": "open", "size": HUGE}]})
    with pytest.raises(RecipeError, match=r"rules\[0\] \(min_area\): min"):
        recipe.with_overrides({"rule_params": {"min_area": {"min": math.inf}}})
    with pytest.raises(RecipeError, match="tile_overlap"):
        recipe.with_overrides({"tile_overlap": 1.0})
    ok = recipe.with_overrides({"postprocess": [{"type": "open", "size": 5}], "tile": 512})
    assert ok.tile == 512


def test_station_check_refuses_an_open_kernel_of_1e9(tiny_model, tmp_path):
    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins

    if "station" not in cli.commands:
        load_cli_plugins(cli)
    write_recipe(tmp_path, tiny_model, '[[rules]]\ntype = "min_area"\nmin = 1\n')
    (tmp_path / "inbox").mkdir()
    (tmp_path / "s.toml").write_text(
        '[station]\nname = "s"\nrecipe_file = "part.toml"\n'
        '[[overrides.postprocess]]\ntype = "open"\nsize = 1000000000\n'
        '[source]\npath = "inbox"\n[database]\nenabled = false\n'
    )
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "s.toml"), "--json"])
    assert res.exit_code == 2, res.output
    problems = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
    assert "size" in problems["overrides"] and "1..51" in problems["overrides"]


def test_every_numeric_parameter_of_every_built_in_type_has_a_range():
    """Each built-in step's and rule's parameters are one pydantic model (issue 23): every
    numeric field of it carries a Range, and the step or rule takes exactly those keys."""
    from inspect_core.config.settings import Range
    from inspect_core.params import PARAMS

    def ranged(field) -> bool:
        return any(isinstance(m, Range) for m in _metadata(field.annotation) + field.metadata)

    for section, types in (
        ("postprocess", STEP_TYPES),
        ("rules", BUILTIN_RULES),
        ("preprocess", PREPROCESS_TYPES),
    ):
        for kind, cls in types.items():
            model = PARAMS[section][kind]
            for name, field in model.model_fields.items():
                numeric = any(t in str(field.annotation) for t in ("int", "float"))
                if numeric and name not in ("classes", "polygon", "min_px", "min_mm2"):
                    assert ranged(field), (section, kind, name)
            keys = (
                set(cls.model_fields)
                if hasattr(cls, "model_fields")
                else {f.name for f in dataclasses.fields(cls)}
            )
            assert keys == set(model.model_fields), (section, kind)
    assert set(PARAMS["recipe"][""].model_fields) == {"pixel_size_mm", "tile", "tile_overlap"}


def _metadata(annotation) -> list:
    """Every Annotated metadata item inside ``annotation`` (through unions)."""
    import typing

    out = list(getattr(annotation, "__metadata__", ()))
    for arg in typing.get_args(annotation):
        out += _metadata(arg)
    return out


def test_shipped_recipes_are_within_the_ranges():
    from inspect_core.plugin_api.manager import load_plugins

    reg = load_plugins()
    assert not [f for f in reg.failures if f.plugin in ("industrial", "aerial", "robotics")]
    assert sum(len(d.recipes) for d in reg.domains.values()) >= 5
