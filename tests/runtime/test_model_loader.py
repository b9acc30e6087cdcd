"""Loading a model is one path (issue 23, item 5): the model's card is read once and the file
checked against it once per load, whoever loads it (an Inspector for a recipe, ``inspect
predict --model``, ``inspect evaluate``); the variant is planned from the card already read,
and an Inspector handed a loaded model keeps its check instead of checking again."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from test_model_integrity import SAMPLE, STEEL

from inspect_core import cards
from inspect_core.errors import ModelError
from inspect_core.runtime import loader, variants
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.recipe import Recipe


@pytest.fixture
def steel(tmp_path) -> Path:
    """A copy of the shipped steel model with its card and its int8 file beside it."""
    for name in ("steel.onnx", "steel.json", "steel.int8.onnx"):
        shutil.copy(STEEL.with_name(name), tmp_path / name)
    return tmp_path / "steel.onnx"


class Reads:
    """Counts, per file, the card reads and the model checks (a model file hashed against its
    card), with the real functions running underneath."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.cards: Counter[Path] = Counter()
        self.checks: Counter[Path] = Counter()
        real_read, real_check = cards.read_card, cards.verify_model_card

        def read_card(card):
            self.cards[Path(card).resolve()] += 1
            return real_read(card)

        def verify_model_card(model, card=None, **kw):
            self.checks[Path(model).resolve()] += 1
            return real_check(model, card, **kw)

        def verify_model(model, card=None, **kw):
            return verify_model_card(model, card, **kw)[0]

        for mod in (cards, variants):
            monkeypatch.setattr(mod, "read_card", read_card)
        monkeypatch.setattr(cards, "verify_model_card", verify_model_card)
        monkeypatch.setattr(loader, "verify_model_card", verify_model_card)
        monkeypatch.setattr(loader, "verify_model", verify_model)


def recipe(model: Path, required: bool = True) -> Recipe:
    return Recipe(
        "steel",
        model,
        rules=[{"type": "min_area", "min": 1}],
        card=model.with_suffix(".json"),
        card_required=required,
    )


@pytest.mark.parametrize("required", [True, False], ids=["plugin recipe", "bare model"])
def test_an_inspector_reads_the_card_once_and_checks_the_model_once(steel, monkeypatch, required):
    reads = Reads(monkeypatch)
    insp = Inspector(recipe(steel, required))
    card = steel.with_suffix(".json").resolve()
    assert reads.cards == {card: 1} and reads.checks == {steel.resolve(): 1}
    assert insp.model_check.status == "verified" and insp.model_card == str(card)
    loaded = insp.model.loaded
    assert loaded.check is insp.model_check and loaded.card is not None
    assert loaded.card.path == steel.with_suffix(".json") and loaded.card.classes == insp.classes
    assert loaded.variant == insp.model.variant_name and loaded.engine is insp.model.engine


def test_the_variant_is_planned_from_the_card_already_read(steel, monkeypatch):
    """The card's variants reach the plan without a second read (here the int8 file runs on a
    CPU with VNNI, or the plan says why not)."""
    monkeypatch.setattr(variants, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    reads = Reads(monkeypatch)
    m = OnnxModel(steel, variant="int8-onnxruntime")
    assert sum(reads.cards.values()) == 1 and sum(reads.checks.values()) == 1
    assert m.variant_name == "int8-onnxruntime" and m.loaded.chosen is not None
    assert m.loaded.chosen.file == steel.with_name("steel.int8.onnx")


def test_an_inspector_handed_a_loaded_model_keeps_its_check(steel, monkeypatch):
    model = OnnxModel(steel, card=steel.with_suffix(".json"), required=True)
    reads = Reads(monkeypatch)
    insp = Inspector(recipe(steel), model=model)
    assert not reads.cards and not reads.checks and insp.model_check is model.check


def test_a_model_loaded_without_its_card_is_checked_again_for_a_recipe_that_needs_one(
    steel, monkeypatch
):
    """Loaded as a bare model (a missing card only warns), then handed to a plugin's recipe
    (a missing card refuses it): checked again, and refused as that recipe refuses it."""
    steel.with_suffix(".json").unlink()
    model = OnnxModel(steel)
    assert model.check is not None and model.check.status == "no_card"
    reads = Reads(monkeypatch)
    with pytest.raises(ModelError, match="steel.json is missing"):
        Inspector(recipe(steel), model=model)
    assert reads.checks == {steel.resolve(): 1}


def test_predict_reads_the_model_card_once(steel, monkeypatch):
    from click.testing import CliRunner

    from inspect_core.commands.predict import predict

    reads = Reads(monkeypatch)
    args = ["--model", str(steel), str(SAMPLE), "--json", "--no-overlay"]
    result = CliRunner().invoke(predict, args)
    assert result.exit_code in (0, 3, 4), result.output
    assert reads.cards[steel.with_suffix(".json").resolve()] == 1
    assert reads.checks[steel.resolve()] == 1


def test_unverified_loads_check_nothing_and_run_fp32(steel, monkeypatch):
    reads = Reads(monkeypatch)
    m = OnnxModel(steel, verify=False)
    assert m.check is None and m.loaded.card is None and m.variant_name == "fp32-onnxruntime"
    assert not reads.cards and not reads.checks
