"""Resolve ``PLUGIN:RECIPE`` / ``DOMAIN:RECIPE`` names to recipes and model files."""

from __future__ import annotations

from pathlib import Path

from inspect_core.errors import InspectError
from inspect_core.plugin_api.manager import get_registry
from inspect_core.runtime.recipe import Recipe


def find_recipe(plugin_or_domain: str, recipe: str) -> Recipe:
    reg = get_registry()
    if plugin_or_domain in reg.domains:
        return reg.domains[plugin_or_domain].recipe(recipe)
    domains = [d for d, p in reg.domain_plugin.items() if p == plugin_or_domain]
    for d in domains:
        for r in reg.domains[d].recipes:
            if r.name == recipe:
                return r
    if not domains:
        failed = [f for f in reg.failures if f.plugin == plugin_or_domain]
        hint = f" (it failed to load: {failed[0].reason})" if failed else ""
        raise InspectError(
            f"no plugin or domain named {plugin_or_domain!r}{hint}; "
            f"installed: {', '.join(sorted(reg.domains)) or 'none'} "
            "(see `inspect plugins`)"
        )
    raise InspectError(
        f"plugin {plugin_or_domain} has no recipe {recipe!r}; recipes: "
        + ", ".join(r.name for d in domains for r in reg.domains[d].recipes)
    )


def resolve_model(spec: str) -> Path:
    """``industrial:steel`` -> that recipe's .onnx path."""
    plugin, _, recipe = spec.partition(":")
    return find_recipe(plugin, recipe).model
