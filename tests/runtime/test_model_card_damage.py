"""Breaking a model's card never gets a changed model past the check (issue 10, second attack
round): with the card deleted, its sha256 not 64 hex characters, the card path a directory, a
truncated or non-JSON card, the model is refused wherever a card is needed (a plugin's recipe,
a recipe that names its card) and wherever a card file is there but damaged; only a bare model
with no card file at all runs, with a warning."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_model_integrity import STEEL, swap_head_filters

from inspect_core import cards as card_mod
from inspect_core.cards import ALLOW_UNVERIFIED_ENV, read_card, sha256_file, verify_model
from inspect_core.errors import ModelError
from inspect_core.runtime.recipe import Recipe, RecipeError


def _set(key: str, value) -> Callable[[Path], None]:
    def damage(card: Path) -> None:
        data = json.loads(card.read_text())
        data[key] = value
        card.write_text(json.dumps(data))

    return damage


def _drop_sha(card: Path) -> None:
    data = json.loads(card.read_text())
    del data["sha256"]
    card.write_text(json.dumps(data))


def _directory(card: Path) -> None:
    card.unlink()
    card.mkdir()


def _fifo(card: Path) -> None:
    card.unlink()
    os.mkfifo(card)


# (what is wrong, how to do it to the card, words the message must hold)
DAMAGE = [
    ("sha256 = 1", _set("sha256", 1), '"sha256": 1'),
    ("sha256 = null", _set("sha256", None), '"sha256": null'),
    ('sha256 = ""', _set("sha256", ""), '"sha256": ""'),
    ("sha256 too short", _set("sha256", "ab" * 31), "64 hexadecimal"),
    ("sha256 not hex", _set("sha256", "g" * 64), "64 hexadecimal"),
    ("no sha256", _drop_sha, "has no sha256"),
    ("truncated", lambda c: c.write_bytes(c.read_bytes()[:300]), "not valid JSON"),
    ("a JSON list", lambda c: c.write_text("[1, 2]"), "not a JSON object"),
    ("not UTF-8", lambda c: c.write_bytes(b"\xff\xfe{"), "not UTF-8"),
    ("a directory", _directory, "a directory"),
    ("a FIFO", _fifo, "FIFO"),
    ("over 1 MB", lambda c: c.write_text(" " * (2 << 20) + "{}"), "over the"),
]


@pytest.fixture
def tampered(tmp_path) -> Path:
    """A copy of the shipped steel model with changed weights, beside its intact card."""
    model = tmp_path / "steel.onnx"
    shutil.copy(STEEL, model)
    shutil.copy(STEEL.with_suffix(".json"), tmp_path / "steel.json")
    swap_head_filters(model)
    return model


@pytest.mark.parametrize("what,damage,words", DAMAGE, ids=[d[0] for d in DAMAGE])
@pytest.mark.parametrize("required", [True, False], ids=["required", "bare"])
def test_a_damaged_card_refuses_the_model_naming_the_card(tampered, what, damage, words, required):
    card = tampered.with_suffix(".json")
    damage(card)
    with pytest.raises(ModelError) as e:
        verify_model(tampered, required=required)
    msg = str(e.value)
    assert str(card) in msg and words in msg and str(tampered) in msg
    assert "reinstall" in msg and ALLOW_UNVERIFIED_ENV in msg


def test_a_missing_card_refuses_a_model_that_needs_one_and_warns_for_a_bare_one(tampered):
    card = tampered.with_suffix(".json")
    card.unlink()
    with pytest.raises(ModelError, match="steel.json is missing") as e:
        verify_model(tampered, required=True)
    assert "reinstall" in str(e.value) and ALLOW_UNVERIFIED_ENV in str(e.value)
    check = verify_model(tampered)  # a bare model without a card file: a warning, as before
    assert check.status == "no_card" and check.card is None and "no model card" in check.note


def test_a_dangling_link_at_the_card_path_is_a_damaged_card(tampered):
    card = tampered.with_suffix(".json")
    card.unlink()
    card.symlink_to(card.parent / "gone.json")
    with pytest.raises(ModelError, match="steel.json cannot be read"):
        verify_model(tampered)


def test_an_upper_case_sha256_of_the_genuine_model_is_accepted(tmp_path):
    model = tmp_path / "steel.onnx"
    shutil.copy(STEEL, model)
    card = tmp_path / "steel.json"
    card.write_text(json.dumps({"sha256": sha256_file(model).upper()}))
    assert verify_model(model, required=True).status == "verified"
    assert read_card(card)["sha256"] == sha256_file(model)


def test_the_override_loads_it_with_a_logged_warning(tampered, monkeypatch, caplog):
    card = tampered.with_suffix(".json")
    card.unlink()
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    monkeypatch.setattr(card_mod, "_LOGGED", set())
    with caplog.at_level(logging.WARNING, logger="inspect.models"):
        check = verify_model(tampered, required=True)
    assert check.status == "card_problem_allowed" and check.card is None
    (rec,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(card) in rec.getMessage() and ALLOW_UNVERIFIED_ENV in rec.getMessage()


def recipe_toml(model: Path, card: str | None = None) -> Recipe:
    path = model.parent / "r.toml"
    lines = ['name = "steel"', f'model = "{model.name}"', *([f'card = "{card}"'] if card else [])]
    path.write_text("\n".join(lines + ["[[rules]]", 'type = "min_area"', "min = 1"]) + "\n")
    return Recipe.from_toml(path)


def test_a_recipe_that_names_its_card_needs_it(tampered):
    card = tampered.with_suffix(".json")
    named = recipe_toml(tampered, card="steel.json")
    assert named.card_required and not recipe_toml(tampered).card_required
    card.unlink()
    (problem,) = named.problems()
    assert "steel.json is missing" in problem and "r.toml" in problem
    with pytest.raises(ModelError, match="steel.json is missing"):
        named.check_model()
    assert recipe_toml(tampered).problems() == []  # no card named, none there: runs, warned


@pytest.mark.parametrize("what,damage,words", DAMAGE[:3] + DAMAGE[-3:], ids=lambda x: "")
def test_recipe_problems_name_a_damaged_card(tampered, what, damage, words):
    damage(tampered.with_suffix(".json"))
    (problem,) = recipe_toml(tampered).problems()
    assert "steel.json" in problem and words in problem and "r.toml" in problem
    with pytest.raises(RecipeError, match="steel.json"):
        recipe_toml(tampered).load_card()


def test_recipe_file_card_must_be_a_path(tmp_path):
    (tmp_path / "r.toml").write_text('name = "r"\nmodel = "m.onnx"\ncard = 1\n')
    with pytest.raises(RecipeError, match="r.toml.*card"):
        Recipe.from_toml(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text('name = "r"\nmodel = "m.onnx"\ncard_required = false\n')
    with pytest.raises(RecipeError, match="card_required: unknown key"):
        Recipe.from_toml(tmp_path / "r.toml")


def test_the_inspector_refuses_a_model_whose_required_card_went_missing(tampered):
    """A plugin's recipe registered with its card, which is deleted before the station builds
    its Inspector: refused there too (needs Inspector to check with ``recipe.check_model()``)."""
    from inspect_core.runtime.inspector import Inspector

    recipe = recipe_toml(tampered, card="steel.json")
    tampered.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="steel.json is missing"):
        Inspector(recipe)
