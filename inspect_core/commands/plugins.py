"""``inspect plugins`` (what is installed) and ``inspect plugin new`` (scaffold a plugin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from inspect_core.cards import sha256_file, verify_model
from inspect_core.errors import ModelError
from inspect_core.plugin_api.manager import get_registry
from inspect_core.text import rich_text, terminal_text


def plugin_listing() -> list[dict]:
    """One entry per plugin: what it registered, and ``failures`` (reasons, empty when it loaded
    cleanly). A plugin that failed to import is listed too, with its failures only."""
    reg = get_registry()
    out = []
    failed = {}
    for f in reg.failures:
        failed.setdefault(f.plugin, []).append(f.reason)
    for name, info in reg.plugins.items():
        domains = []
        for dname, plugin in reg.domain_plugin.items():
            if plugin != name:
                continue
            recipes = []
            for r in reg.domains[dname].recipes:
                try:  # a model that does not match its card is listed, and is a failure
                    sha = verify_model(r.model, r.card).sha256
                except ModelError as e:
                    failed.setdefault(name, []).append(f"{dname}/{r.name}: {e}")
                    sha = sha256_file(r.model)
                recipes.append(
                    {
                        "name": r.name,
                        "model": str(r.model.resolve()),
                        "sha256": sha,
                        "classes": _classes(r),
                    }
                )
            domains.append({"name": dname, "recipes": recipes})
        out.append(
            {
                "plugin": name,
                "version": info.version,
                "module": info.module,
                "domains": domains,
                "rules": reg.registered_by(name, "rules"),
                "sources": reg.registered_by(name, "sources"),
                "sinks": reg.registered_by(name, "sinks"),
                "failures": failed.pop(name, []),
            }
        )
    for name, reasons in failed.items():  # failed to import: nothing registered
        out.append(
            {
                "plugin": name,
                "version": "",
                "module": "",
                "domains": [],
                "rules": [],
                "sources": [],
                "sinks": [],
                "failures": reasons,
            }
        )
    return out


def _classes(recipe) -> list[str]:
    card = recipe.load_card()
    if card is not None:
        return card.get("classes", [])
    from inspect_core.runtime.onnx_model import OnnxModel

    return OnnxModel(recipe.model).classes


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins_cmd(as_json):
    """List installed plugins: version, domains, recipes, classes, model and its sha256.

    Exit code 1 when a plugin failed to load or registered something invalid (the others are
    listed all the same; with --json each entry's "failures" says why).
    """
    reg = get_registry()
    listing = plugin_listing()
    if as_json:
        click.echo(json.dumps(listing, indent=2))
    else:
        _print_table(listing)
    for f in reg.failures:
        click.secho(
            f"plugin {terminal_text(f.plugin)}: {terminal_text(f.reason)}", fg="red", err=True
        )
    if reg.failures:
        sys.exit(1)


def _print_table(listing: list[dict]) -> None:
    """The listing as a rich table; every name is printed literally (no markup, no escapes)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="inspect plugins")
    for col in ("plugin", "version", "domain", "recipe", "classes", "model", "sha256"):
        t.add_column(col)
    for p in listing:
        if p["failures"] and not p["module"]:
            continue  # failed to import: reported below
        if not p["domains"]:
            extras = ", ".join(
                f"{k}: {', '.join(p[k])}" for k in ("rules", "sources", "sinks") if p[k]
            )
            t.add_row(*map(rich_text, (p["plugin"], p["version"], "-", "-", extras, "", "")))
        for d in p["domains"]:
            for r in d["recipes"]:
                t.add_row(
                    *map(
                        rich_text,
                        (
                            p["plugin"],
                            p["version"],
                            d["name"],
                            r["name"],
                            ", ".join(r["classes"]),
                            _short(r["model"]),
                            r["sha256"][:12],
                        ),
                    )
                )
    Console().print(t)


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@click.group("plugin")
def plugin_group():
    """Write new domain plugins."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder in which the package folder is created.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="ONNX model to ship (default: a copy of the industrial steel model).",
)
def plugin_new(name, directory, model_path):
    """Write an installable plugin package NAME (pyproject with the entry point, hooks, recipe,
    README, a test). Then: pip install -e DIR/inspect-NAME && inspect plugins."""
    from inspect_core.plugin_api.scaffold import scaffold

    root = scaffold(name, Path(directory), Path(model_path) if model_path else None)
    click.echo(f"wrote {root}\nnext: pip install -e {root} && inspect plugins && pytest {root}")
