"""``--plugin`` and ``--recipe`` as every command takes them: ``--plugin industrial --recipe
steel``, or ``--plugin industrial:steel`` (PLUGIN:RECIPE in one option, as ``--init-from`` and
``evaluate --model`` take it; ``--recipe industrial:steel`` works too). Two forms that name
different plugins or recipes, or a PLUGIN:RECIPE with a part missing, are a usage error
(exit 2) saying which options disagree."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

HINT = "PLUGIN:RECIPE gives both (then no --recipe)."
FORMS = "give --plugin PLUGIN --recipe RECIPE, or --plugin PLUGIN:RECIPE (e.g. industrial:steel)"


def _pair(option: str, value: str | None) -> tuple[str, str] | None:
    """(plugin, recipe) when ``value`` is PLUGIN:RECIPE; None for a name without a colon."""
    if value is None or ":" not in value:
        return None
    plugin, _, recipe = value.partition(":")
    if not plugin.strip() or not recipe.strip() or ":" in recipe:
        raise click.BadOptionUsage(option, f"{option} {value!r} is not PLUGIN:RECIPE; {FORMS}")
    return plugin, recipe


def split_plugin_recipe(plugin: str | None, recipe: str | None) -> tuple[str | None, str | None]:
    """The plugin and recipe that ``--plugin`` and ``--recipe`` name, either of which may be
    PLUGIN:RECIPE; :class:`click.BadOptionUsage` when the two disagree."""
    in_plugin, in_recipe = _pair("--plugin", plugin), _pair("--recipe", recipe)
    pair = in_plugin or in_recipe
    if pair is None:
        return plugin, recipe
    given = (
        in_plugin or (plugin, None),  # --plugin as given: a pair, or a plugin name alone
        in_recipe or (None, recipe),
    )
    for p, r in given:
        if (p is not None and p != pair[0]) or (r is not None and r != pair[1]):
            raise click.BadOptionUsage(
                "--plugin" if in_plugin else "--recipe",
                f"--plugin {plugin!r} and --recipe {recipe!r} name different recipes; {FORMS}",
            )
    return pair


def plugin_recipe_options(
    *,
    required: bool = False,
    recipe_param: str = "recipe",
    plugin_help: str = "Plugin (or domain) name.",
    recipe_help: str = "Recipe of the plugin.",
) -> Callable[[F], F]:
    """The ``--plugin`` and ``--recipe`` options of a command, passed on as ``plugin`` and
    ``recipe_param``, PLUGIN:RECIPE already split (:func:`split_plugin_recipe`). ``required``:
    the command needs both (in either form)."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            plugin, recipe = split_plugin_recipe(kwargs.get("plugin"), kwargs.get(recipe_param))
            if required and not (plugin and recipe):
                missing = "--recipe" if plugin else "--plugin"
                raise click.UsageError(
                    f"Missing option '{missing}': {FORMS}", ctx=click.get_current_context()
                )
            kwargs["plugin"], kwargs[recipe_param] = plugin, recipe
            return f(*args, **kwargs)

        command = click.option("--recipe", recipe_param, metavar="RECIPE", help=recipe_help)(
            command
        )
        command = click.option(
            "--plugin", "plugin", metavar="PLUGIN[:RECIPE]", help=f"{plugin_help} {HINT}"
        )(command)
        return command  # type: ignore[return-value]

    return decorate
