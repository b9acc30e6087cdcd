"""Resolve ``PLUGIN:RECIPE`` / ``DOMAIN:RECIPE`` names to recipes and model files."""

from __future__ import annotations

from pathlib import Path

from inspect_core.errors import InspectError
from inspect_core.plugin_api.manager import LEFT_OUT, get_registry
from inspect_core.runtime.recipe import Recipe


def find_recipe(plugin_or_domain: str, recipe: str) -> Recipe:
    """The recipe ``recipe`` of a domain, or of any domain of a plugin, by name. When it is not
    there, the error says why: the plugin or domain is not installed or failed to load, or the
    recipe was left out as the plugin loaded (a missing model, a damaged model card)."""
    reg = get_registry()
    is_domain = plugin_or_domain in reg.domains
    domains = (
        [plugin_or_domain]
        if is_domain
        else [d for d, p in reg.domain_plugin.items() if p == plugin_or_domain]
    )
    for d in domains:
        for r in reg.domains[d].recipes:
            if r.name == recipe:
                return r
    if not domains:
        failed = [f for f in reg.failures if plugin_or_domain in (f.plugin, f.domain)]
        hint = f" (it failed to load: {failed[0].reason})" if failed else ""
        raise InspectError(
            f"no plugin or domain named {plugin_or_domain!r}{hint}; "
            f"installed: {', '.join(sorted(reg.domains)) or 'none'} "
            "(see `inspect plugins`)"
        )
    what = f"domain {plugin_or_domain}" if is_domain else f"plugin {plugin_or_domain}"
    names = ", ".join(r.name for d in domains for r in reg.domains[d].recipes)
    for d in domains:
        failure = reg.left_out(d, recipe)
        if failure is not None:
            raise InspectError(
                f"{what} has no recipe {recipe!r}: it was left out when plugin "
                f"{failure.plugin} loaded, because {failure.reason.removesuffix(LEFT_OUT)}; "
                f"its other recipes: {names}"
            )
    raise InspectError(f"{what} has no recipe {recipe!r}; recipes: {names}")


def resolve_model(spec: str) -> Path:
    """``industrial:steel`` -> that recipe's .onnx path."""
    plugin, _, recipe = spec.partition(":")
    return find_recipe(plugin, recipe).model
