"""``inspect plugins`` (what is installed) and ``inspect plugin new`` (scaffold a plugin)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from inspect_core.plugin_api.manager import get_registry
from inspect_core.text import rich_text, terminal_text

if TYPE_CHECKING:
    from rich.text import Text

    from inspect_core.runtime.recipe import Recipe


def plugin_listing() -> list[dict[str, Any]]:
    """One entry per plugin: what it registered, and ``failures`` (reasons, empty when it loaded
    cleanly). A plugin that failed to import is listed too, with its failures only."""
    from inspect_core.cards import sha256_file
    from inspect_core.errors import ModelError

    reg = get_registry()
    out: list[dict[str, Any]] = []
    failed: dict[str, list[str]] = {}
    for f in reg.failures:
        failed.setdefault(f.plugin, []).append(f.reason)
    for name, info in reg.plugins.items():
        domains: list[dict[str, Any]] = []
        for dname, plugin in reg.domain_plugin.items():
            if plugin != name:
                continue
            recipes: list[dict[str, Any]] = []
            for r in reg.domains[dname].recipes:
                try:  # a model that does not match its card is listed, and is a failure
                    sha = r.check_model().sha256
                except ModelError as e:
                    failed.setdefault(name, []).append(f"{dname}/{r.name}: {e}")
                    sha = sha256_file(r.model)
                recipes.append(
                    {
                        "name": r.name,
                        "model": str(r.model.resolve()),
                        "sha256": sha,
                        "classes": _classes(r),
                        "variant": _variant(r, sha),
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
                "version_sources": reg.registered_by(name, "version_sources"),
                "commands": reg.registered_by(name, "commands"),
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
                "version_sources": [],
                "commands": [],
                "failures": reasons,
            }
        )
    return out


def _variant(recipe: Recipe, sha: str) -> dict[str, Any] | None:
    """What would run here and why the others would not (:meth:`Plan.to_dict`): planned from
    this machine's kept measurement where there is one (``measured``), else from the card and
    the CPU flags; None for a model without a card."""

    from inspect_core.cards import Card, CardError, read_card
    from inspect_core.errors import ModelError
    from inspect_core.runtime import tuning, variants
    from inspect_core.runtime.machine import run_threads, this_machine

    path = recipe.card_path
    if not path.is_file():
        return None
    try:
        card = Card(path, read_card(path))
        requested = variants.requested_variant()
        threads = run_threads()
        measured = None
        if requested == "auto" and tuning.tuning_enabled():
            measured = tuning.cached(sha, this_machine(threads))
        plan = variants.plan_card(Path(recipe.model), card, sha, requested, measured=measured)
    except (CardError, ModelError) as e:
        return {"error": str(e)}
    return plan.to_dict() | {"measured": measured is not None}


def _classes(recipe: Recipe) -> list[str]:
    card = recipe.load_card()
    if card is not None:
        classes: list[str] = card.get("classes", [])
        return classes
    from inspect_core.runtime.onnx_model import OnnxModel

    return OnnxModel(recipe.model).classes


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins: version, domains, recipes, classes, model and its sha256.

    Exit code 1 when a plugin failed to load or registered something invalid (the others are
    listed all the same; with --json each entry's "failures" says why).
    """
    _load_plugin_commands()  # each plugin's "commands" are listed
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


def _load_plugin_commands() -> None:
    """The plugins' commands on the root command, when it loads them on demand (``inspect``
    does: :class:`inspect_core.cli.InspectGroup`)."""
    ctx = click.get_current_context(silent=True)
    load = getattr(ctx.find_root().command, "load_plugin_commands", None) if ctx else None
    if callable(load):
        load()


KINDS = ("rules", "sources", "sinks", "version_sources", "commands")  # besides domains


def _print_table(listing: list[dict[str, Any]]) -> None:
    """The listing in three columns that fit an 80-column terminal: the plugin and its
    version; its recipes (``DOMAIN:RECIPE``, as ``evaluate --model`` and ``train --init-from``
    take them); each recipe's classes with its model file and sha256 (12 digits; all 64 with
    --json) on a line below, or what else the plugin registers (``rules: ...``). Long cells
    wrap at spaces (a word longer than its column folds, nothing is cut); every name is
    printed literally (no markup, no escapes)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(
        title="inspect plugins",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    t.add_column("plugin", no_wrap=True)
    t.add_column("recipe", overflow="fold")
    t.add_column("classes; model file, sha256", overflow="fold", ratio=1)
    for p in listing:
        if p["failures"] and not p["module"]:
            continue  # failed to import: reported below
        kinds = [k for k in KINDS if p.get(k)]
        rows = [
            (rich_text(""), rich_text(f"{k.replace('_', ' ')}: {', '.join(p[k])}")) for k in kinds
        ]
        for d in p["domains"]:
            for r in d["recipes"]:
                rows.append((rich_text(f"{d['name']}:{r['name']}", "cyan"), _classes_cell(r)))
        head = Text().append_text(rich_text(p["plugin"], "bold"))
        head.append_text(rich_text(f" {p['version']}", "dim"))
        rows = rows or [(rich_text("-"), rich_text(""))]
        for i, (what, cell) in enumerate(rows):
            t.add_row(head if i == 0 else "", what, cell, end_section=i == len(rows) - 1)
    Console().print(t)


def _classes_cell(recipe: dict[str, Any]) -> Text:
    """A recipe's classes, then on the next line its model file and sha256 (dim)."""
    cell = rich_text(", ".join(recipe["classes"]))
    cell.append("\n")
    return cell.append_text(rich_text(f"{_short(recipe['model'])} {recipe['sha256'][:12]}", "dim"))


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@click.group("plugin")
def plugin_group() -> None:
    """Write new domain plugins and pick their sample images."""


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
    help="ONNX model to ship (default: a copy of the industrial steel model; with --data, "
    "the shipped model that suits the dataset).",
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Dataset folder (classes.json + train/ images and masks, or MVTec AD): size the "
    "recipe from its masks and choose the model to fine-tune.",
)
def plugin_new(name: str, directory: str, model_path: str | None, data: str | None) -> None:
    """Write an installable plugin package NAME (pyproject with the entry point, hooks, recipe,
    README, a test). Then: pip install -e DIR/inspect-NAME && inspect plugins.

    With --data the recipe's post-processing and rules are sized from the dataset's true
    masks (no opening for thin defects), and the `inspect train` command to run next is
    printed."""
    from inspect_core.plugin_api.scaffold import scaffold, scaffold_from_data

    model = Path(model_path) if model_path else None
    if data is None:
        root = scaffold(name, Path(directory), model)
        quoted = shlex.quote(str(root))
        click.echo(
            terminal_text(
                f"wrote {root}\nnext: pip install -e {quoted}; inspect plugins; pytest {quoted}"
            )
        )
        return
    made = scaffold_from_data(name, Path(directory), Path(data).resolve(), model)
    for line in made.survey.lines():
        click.echo(terminal_text(line))
    click.echo(f"start from {made.start.spec}: {made.start.reason}")
    for reason in made.chain.reasons:
        click.echo(f"recipe: {reason}")
    models = made.root / f"inspect_{name}" / "models"
    q = shlex.quote
    steps = [
        f"pip install -e {q(str(made.root))}",
        made.train_command,
        f"cp runs/{name}/model.onnx {q(str(models / 'default.onnx'))}",
        f"cp runs/{name}/model.json {q(str(models / 'default.json'))}",
        f"inspect plugin samples {name}:default --data {q(str(made.survey.root))} --write",
        f"pytest {q(str(made.root))}",
    ]
    click.echo(terminal_text(f"wrote {made.root}; next:"))
    for step in steps:
        click.echo(terminal_text(f"  {step}"))


@plugin_group.command("samples")
@click.argument("recipe_spec", metavar="PLUGIN:RECIPE")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The dataset the recipe's model was trained on (its folder).",
)
@click.option("--split", default="val", show_default=True, help="The split to pick from.")
@click.option("--n", default=4, show_default=True, help="About how many samples (half FAIL).")
@click.option("--scan", default=60, show_default=True, help="Images of the split to look at.")
@click.option(
    "--write", is_flag=True, help="Copy the images and write [[samples]] into the recipe."
)
def plugin_samples(recipe_spec: str, data: str, split: str, n: int, scan: int, write: bool) -> None:
    """Pick sample images with expected verdicts for a recipe: images of the dataset where
    the rules give the same verdict on the model's mask as on the true mask. Without --write,
    print what would be written."""
    from inspect_core.data.datasets import open_dataset
    from inspect_core.errors import InspectError
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.plugin_api.samples import (
        pick_samples,
        samples_block,
        samples_dir,
        write_samples,
    )
    from inspect_core.runtime.inspector import Inspector

    plugin, _, name = recipe_spec.partition(":")
    if not plugin or not name:
        raise click.BadParameter(
            "give PLUGIN:RECIPE, e.g. wood:default", param_hint="PLUGIN:RECIPE"
        )
    recipe = find_recipe(plugin, name)
    if recipe.source is None:
        raise InspectError(
            f"recipe {recipe_spec} was not read from a TOML file, so there is no file to write "
            "its samples into; run without --write and add the [[samples]] it prints by hand"
        )
    picks = pick_samples(
        Inspector(recipe, get_registry().rules), open_dataset(data, split), n, scan
    )
    if not picks:
        raise InspectError(
            f"no image of {data} ({split}, {scan} looked at) got the same verdict from the "
            f"model as from its true mask: is {recipe.model} trained on this dataset?"
        )
    for p in picks:
        crop = "" if p.crop is None else f" (crop {p.crop})"
        click.echo(
            terminal_text(f"{p.verdict:6} {p.file_name(recipe.name)}  from {p.source}{crop}")
        )
    missing = sorted({"PASS", "FAIL", "REVIEW"} - {p.verdict for p in picks})
    if missing:
        click.echo(f"none found for {', '.join(missing)} (--scan more images to find some)")
    if not write:
        rel = "../" + samples_dir(recipe.source).name
        click.echo("\n" + samples_block(picks, recipe.name, rel))
        click.echo(terminal_text(f"not written: add --write to save them into {recipe.source}"))
        return
    written = write_samples(picks, recipe.name, recipe.source)
    click.echo(
        terminal_text(
            f"wrote {len(written)} images into {samples_dir(recipe.source)} and their "
            f"[[samples]] into {recipe.source}"
        )
    )
