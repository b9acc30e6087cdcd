"""``inspect model tune``: measure a model's variants on this machine now (issue 26) and print
what was measured: each variant's time and speed-up over the fp32 file, its scores on the
model's gate sample against the fp32 file's, and the one that runs from now on (the
measurement is kept: :mod:`inspect_core.runtime.tuning`). A station or ``inspect predict``
measures by itself the first time a model meets a machine; this does it on demand (after an
upgrade of a library, or to see the table)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_core.text import terminal_text


@click.command("tune")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=Path))
@plugin_recipe_options(recipe_param="recipe_name")
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    help="Threads per model run, as the station runs it [INSPECT_THREADS, else all cores].",
)
@click.option("--json", "as_json", is_flag=True, help="The measurement as JSON.")
def tune_cmd(
    model: Path | None, plugin: str | None, recipe_name: str | None, threads: int, as_json: bool
) -> None:
    """Measure the variants of MODEL (or of a recipe's model) on this machine: time, accuracy
    on the gate sample against the fp32 file, and which one runs from now on."""

    from inspect_core.cards import verify_model_card
    from inspect_core.errors import ModelError
    from inspect_core.runtime.machine import run_threads
    from inspect_core.runtime.tuning import cache_file
    from inspect_core.runtime.tuning_run import measure

    path, card_path = _model(model, plugin, recipe_name)
    threads = run_threads(threads)
    check, card = verify_model_card(path, card_path, required=True)
    if card is None or not card.data.get("variants"):
        raise ModelError(f"{path}: its card lists no variants: the fp32 file is all there is")
    t = measure(path, card, check.sha256, threads)
    if t is None:
        raise ModelError(
            f"{path}: its card ships no gate sample to measure the variants on; make it with "
            "training/gate_sample.py (the CPU flags decide meanwhile)"
        )
    if as_json:
        click.echo(json.dumps(t.to_dict() | {"runs": t.fastest}))
        return
    click.echo(f"{terminal_text(path)} on {terminal_text(t.machine.describe())}")
    click.echo(f"gate sample: {t.images} images; fp32-onnxruntime {t.fp32_ms:.1f} ms per image")
    head = f"{'variant':<18} {'ms':>8} {'speed-up':>9} {'mIoU':>7} {'drop':>8} {'agree':>7}  gate"
    click.echo(head)
    for m in t.variants:
        click.echo(
            f"{m.name:<18} {m.ms:>8.1f} {m.speedup:>8.2f}x {m.miou:>7.4f} {m.miou_drop:>+8.4f} "
            f"{m.agreement:>7.2%}  {terminal_text(m.why)}"
        )
    click.echo(f"runs: {t.fastest}")
    click.echo(f"kept in {terminal_text(cache_file(t.model_sha256, t.machine))}", err=True)


def _model(model: Path | None, plugin: str | None, recipe: str | None) -> tuple[Path, Path]:
    """The model file and its card: MODEL, or the model of the plugin's recipe."""
    if model is not None and (plugin or recipe):
        raise click.UsageError("give MODEL or --plugin/--recipe, not both")
    if model is not None:
        return model, model.with_suffix(".json")
    if not (plugin and recipe):
        raise click.UsageError("give MODEL, or --plugin and --recipe (or --plugin PLUGIN:RECIPE)")
    from inspect_core.plugin_api.resolve import find_recipe

    r = find_recipe(plugin, recipe)
    return Path(r.model), r.card_path
