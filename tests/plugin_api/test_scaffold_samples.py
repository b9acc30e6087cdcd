"""`inspect plugin new` without --model copies the steel model with its samples, and must then
copy the chain those samples' verdicts were picked with (post-processing and rules)."""

import numpy as np
import pytest
from plugin_data_kit import carded_copy

from inspect_core.plugin_api import scaffold as scaffold_mod
from inspect_core.runtime.recipe import Recipe, SampleImage


@pytest.fixture(scope="module")
def carded_model(tiny_model, tmp_path_factory):
    """The tiny model with its card: a plugin's model is refused without one."""
    return carded_copy(tiny_model, tmp_path_factory.mktemp("carded"))


def test_scaffold_from_the_shipped_model_keeps_its_chain_and_samples(
    carded_model, tmp_path, monkeypatch
):
    import cv2

    sample = tmp_path / "ok.png"
    cv2.imwrite(str(sample), np.zeros((16, 16), np.uint8))
    base = Recipe(
        "steel",
        carded_model,
        region_classes=["scratch"],
        postprocess=[{"type": "open", "size": 3}, {"type": "min_area", "min_px": {"scratch": 15}}],
        rules=[
            {
                "type": "roi",
                "name": "in zone",
                "classes": ["scratch"],
                "polygon": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]],
                "min_area": 40,
            },
            {"type": "review_band", "low": 0.5, "high": 0.7, "on": "max_prob"},
        ],
        samples=[SampleImage(sample, "PASS")],
    )
    monkeypatch.setattr(scaffold_mod, "find_recipe", lambda plugin, recipe: base)
    root = scaffold_mod.scaffold("oak", tmp_path / "out")
    made = Recipe.from_toml(root / "inspect_oak" / "recipes" / "default.toml")
    assert made.postprocess == base.postprocess and made.rules == base.rules
    assert made.region_classes == ["scratch"]
    assert [(s.image.name, s.expected) for s in made.samples] == [("ok.png", "PASS")]
    assert made.model.is_file() and not made.problems()
    text = (root / "inspect_oak" / "recipes" / "default.toml").read_text()
    assert "erases defects narrower than 3 px" in text  # says when to drop steel's `open`
    assert "# --- samples (written by `inspect plugin samples`) ---" in text


def test_scaffold_with_own_model_gets_the_generic_chain(carded_model, tmp_path):
    root = scaffold_mod.scaffold("elm", tmp_path, carded_model)
    made = Recipe.from_toml(root / "inspect_elm" / "recipes" / "default.toml")
    assert made.region_classes == ["scratch", "dent"] and made.samples == []
    assert [r["type"] for r in made.rules] == ["min_area", "review_band"]
    # no opening by default: one of size 3 would erase cracks 2-3 px wide
    assert [p["type"] for p in made.postprocess] == ["remove_small"]
    assert made.rules[0]["classes"] == ["scratch", "dent"]
