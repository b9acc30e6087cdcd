"""``inspect health``: input health (issue 25). ``inspect health fit`` fits a recipe's quality
limits from a dataset's training images, prints them as a ``[health.quality]`` table and, with
``--write``, writes them into a recipe TOML. ``inspect health familiarity`` gives a trained
model its familiarity score (:mod:`inspect_core.health.familiarity_fit`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_core.text import terminal_text

if TYPE_CHECKING:
    from inspect_core.health.familiarity_fit import Tiling


@click.group("health")
def health_group() -> None:
    """Input health: is an image fit to be judged (quality limits, familiarity)?"""


@health_group.command("fit")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder; its train/ images are measured.",
)
@plugin_recipe_options(
    recipe_param="recipe_name",
    plugin_help="Plugin (or domain): the images are measured after its recipe's "
    "preprocessing, as the model sees them.",
)
@click.option(
    "--share",
    default=0.005,
    show_default=True,
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    help="Share of the training images each limit may leave outside.",
)
@click.option(
    "--max-images",
    type=click.IntRange(min=1),
    default=None,
    help="Measure at most this many, spread over the split.",
)
@click.option(
    "--write",
    "write_to",
    type=click.Path(exists=True, dir_okay=False),
    help="Recipe TOML to write the [health.quality] table into.",
)
def fit_cmd(
    data: str,
    plugin: str | None,
    recipe_name: str | None,
    share: float,
    max_images: int | None,
    write_to: str | None,
) -> None:
    """Fit quality limits from the training images of DATA and print them as the recipe's
    [health.quality] table (with --write, into the recipe file too)."""
    from inspect_core.health.fit import fit_limits_from_dataset
    from inspect_core.health.recipe_toml import limits_toml, write_limits

    prepare = None
    if plugin or recipe_name:
        if not (plugin and recipe_name):
            raise click.UsageError("--plugin and --recipe go together")
        from inspect_core.plugin_api.resolve import find_recipe

        prepare = find_recipe(plugin, recipe_name).preprocess
    limits = fit_limits_from_dataset(data, share=share, max_images=max_images, prepare=prepare)
    where = terminal_text(Path(data) / "train")
    click.echo(
        f"# fitted from the images of {where}, at most {share:.2%} outside each limit", err=True
    )
    click.echo(limits_toml(limits), nl=False)
    if write_to:
        write_limits(write_to, limits)
        click.echo(f"written into {terminal_text(write_to)}", err=True)


@health_group.command("familiarity")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@plugin_recipe_options(recipe_param="recipe_name")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The dataset folder the model was trained on (its card names the held-out images).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the copies, their familiarity files and the card [runs/familiarity/NAME].",
)
@click.option(
    "--in-place",
    is_flag=True,
    help="Then put the copies in place of MODEL's files (and its variants'), card updated.",
)
@click.option(
    "--max-train",
    type=click.IntRange(min=0),
    default=0,
    help="Fit on at most N training images (a seeded choice) [all].",
)
@click.option("--threads", type=click.IntRange(min=0), default=0, help="ONNX Runtime threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the card's familiarity entry.")
def familiarity_cmd(
    model: Path | None,
    plugin: str | None,
    recipe_name: str | None,
    data: str,
    out: Path | None,
    in_place: bool,
    max_train: int,
    threads: int,
    as_json: bool,
) -> None:
    """Give MODEL (or a recipe's model, cut into tiles as the recipe cuts images) a familiarity
    score without retraining: a copy with a features output, fitted on its training images in
    DATA, its threshold set on the held-out images its card names to flag at most 2% of images
    like them. A station then reviews an image unlike them."""
    import json

    from inspect_core.commands.progress import item_progress
    from inspect_core.health.familiarity_fit import fit_model, images_to_fit, install, read_card

    if importlib.util.find_spec("onnx") is None:
        raise click.ClickException(
            "adding the features output needs the onnx package: pip install 'inspect-vision[train]'"
        )
    model, tiling = _model_and_tiling(model, plugin, recipe_name)
    out = out or Path("runs/familiarity") / model.stem
    total = images_to_fit(read_card(model), data, max_train, 0)
    with item_progress(total, "images") as advance:
        result = fit_model(
            model, data, out, max_train=max_train, threads=threads, advance=advance, tiling=tiling
        )
    written = install(result) if in_place else []
    if as_json:
        click.echo(json.dumps(result.card_entry()))
    else:
        for f in result.files:
            click.echo(
                f"{terminal_text(f.file)}: threshold {f.threshold:.2f}, "
                f"{f.flagged_held_out:.1%} of the {result.held_out} held-out images flagged"
            )
        two = result.flagged_held_out_two_fold
        if two is not None:
            click.echo(f"on held-out images the threshold was not set on: {two:.1%} flagged")
    click.echo(f"copies, familiarity files and card: {terminal_text(result.copy.parent)}", err=True)
    for path in written:
        click.echo(f"installed {terminal_text(path)}", err=True)


def _model_and_tiling(
    model: Path | None, plugin: str | None, recipe: str | None
) -> tuple[Path, Tiling]:
    """MODEL with the model's own tiles, or the recipe's model with the recipe's tiles."""
    from inspect_core.health.familiarity_fit import Tiling

    if model is not None and (plugin or recipe):
        raise click.UsageError("give MODEL or --plugin/--recipe, not both")
    if model is not None:
        if not model.is_file():
            raise click.BadParameter(f"{terminal_text(model)}: no such file", param_hint="MODEL")
        return model, Tiling()
    if not (plugin and recipe):
        raise click.UsageError("give MODEL, or --plugin and --recipe (or --plugin PLUGIN:RECIPE)")
    from inspect_core.plugin_api.resolve import find_recipe

    r = find_recipe(plugin, recipe)
    return Path(r.model), Tiling(r.tile or None, r.tile_overlap)
