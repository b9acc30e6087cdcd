"""Test kit for plugin authors: check a plugin's registration and run its sample images.

In a plugin's own test::

    from inspect_core.plugin_api.testing import check_plugin, assert_samples

    def test_plugin():
        check_plugin("wood")          # loads through the entry point, validates everything
        assert_samples("wood")        # every sample image still gets its expected verdict
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inspect_core.plugin_api.manager import ENV_SELECT, Registry, load_plugins
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.recipe import Recipe


@dataclass
class SampleResult:
    domain: str
    recipe: str
    image: Path
    expected: str
    got: str
    fired: list[str]

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def check_plugin(name: str, registry: Registry | None = None) -> Registry:
    """Assert that plugin ``name`` loads through its entry point, registers at least one thing,
    and that each of its recipes is valid and its model loads with the classes of its card."""
    reg = registry or load_plugins()
    failures = [f.reason for f in reg.failures if f.plugin == name]
    assert not failures, f"plugin {name} failed: {failures}"
    if name not in reg.plugins and reg.pm.is_blocked(name):
        raise AssertionError(
            f"plugin {name} is installed but left out by {ENV_SELECT}="
            f"{os.environ.get(ENV_SELECT, '')!r}: unset it, or name {name} in it"
        )
    assert name in reg.plugins, (
        f"plugin {name} is not installed (no entry point in group "
        f"'inspect.plugins'); installed: {sorted(reg.plugins)}"
    )
    domains = [d for d, p in reg.domain_plugin.items() if p == name]
    hooks = [
        h
        for h in (
            "register_rules",
            "register_sources",
            "register_sinks",
            "register_version_sources",
            "register_commands",
        )
        if any(i.plugin_name == name for i in getattr(reg.pm.hook, h).get_hookimpls())
    ]
    assert domains or hooks, f"plugin {name} registers nothing"
    for d in domains:
        for recipe in reg.domains[d].recipes:
            inspector = Inspector(recipe, reg.rules)  # builds steps and rules: config errors raise
            card = recipe.load_card()
            if card is not None:
                classes = card.get("classes")
                assert classes == inspector.classes, (
                    f"{recipe.card}: card classes {classes} != model {inspector.classes}"
                )
                assert card.get("sha256") in (None, inspector.model_sha256), (
                    f"{recipe.card}: the card describes another model file (sha256 "
                    f"{str(card.get('sha256'))[:12]}, {recipe.model.name} is "
                    f"{inspector.model_sha256[:12]}); copy the model.json written with this model"
                )
    return reg


def run_samples(
    name: str, recipe: str | None = None, registry: Registry | None = None
) -> list[SampleResult]:
    """Run every sample image of a plugin's (or domain's) recipes through ONNX Runtime."""
    reg = registry or load_plugins()
    domains = [d for d, p in reg.domain_plugin.items() if p == name or d == name]
    results = []
    for d in domains:
        recipes: list[Recipe] = reg.domains[d].recipes
        for r in recipes:
            if recipe and r.name != recipe:
                continue
            inspector = Inspector(r, reg.rules)
            for s in r.samples:
                insp, _ = inspector.inspect_file(s.image)
                results.append(
                    SampleResult(
                        d,
                        r.name,
                        s.image,
                        s.expected,
                        insp.verdict.decision.value,
                        [h.rule for h in insp.verdict.hits],
                    )
                )
    return results


def assert_samples(
    name: str, recipe: str | None = None, registry: Registry | None = None
) -> list[SampleResult]:
    results = run_samples(name, recipe, registry)
    assert results, (
        f"plugin {name} has no sample images; pick them from a dataset with "
        f"inspect plugin samples {name}:RECIPE --data DATASET --write"
    )
    bad = [r for r in results if not r.ok]
    assert not bad, "verdicts changed:\n" + "\n".join(
        f"  {r.domain}/{r.recipe} {r.image.name}: expected {r.expected}, got {r.got} {r.fired}"
        for r in bad
    )
    return results
