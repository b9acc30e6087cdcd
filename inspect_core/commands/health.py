"""``inspect health``: input health (issue 25). ``inspect health fit`` fits a recipe's quality
limits from a dataset's training images, prints them as a ``[health.quality]`` table and, with
``--write``, writes them into a recipe TOML."""

from __future__ import annotations

from pathlib import Path

import click

from inspect_core.text import terminal_text


@click.group("health")
def health_group() -> None:
    """Input health: is an image fit to be judged (quality limits)?"""


@health_group.command("fit")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder; its train/ images are measured.",
)
@click.option(
    "--plugin",
    help="Plugin (or domain): the images are measured after its recipe's "
    "preprocessing, as the model sees them.",
)
@click.option("--recipe", "recipe_name", help="Recipe of the plugin.")
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
