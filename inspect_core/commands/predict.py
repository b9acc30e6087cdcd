"""``inspect predict``: regions, verdicts and overlays for images."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_core.commands.progress import item_progress
from inspect_core.errors import InspectError
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.overlay import render_result, save_overlay
from inspect_core.runtime.recipe import Recipe
from inspect_core.text import terminal_text
from inspect_core.types import Decision, Inspection

if TYPE_CHECKING:
    from inspect_core.cards import ModelCheck
    from inspect_core.plugin_api.interfaces import Sink
    from inspect_core.plugin_api.manager import Registry

# exit codes a script can act on
EXIT_PASS, EXIT_REVIEW, EXIT_FAIL, EXIT_ERROR = 0, 3, 4, 5


def warn_unverified(check: ModelCheck | None) -> None:
    """Say on stderr that a model has no card to verify it against (``verify_model``)."""
    if check is not None and check.status == "no_card":
        click.secho(f"warning: {terminal_text(check.note)}", fg="yellow", err=True)


def bare_recipe(model: Path) -> Recipe:
    """A model without a plugin: every region of a non-background class makes the image FAIL.
    Its card is the ``.json`` beside the model (what ``inspect train`` writes): a model that
    does not match it is refused; one without a card runs, with a warning."""
    return Recipe(
        name=model.stem,
        model=model,
        rules=[{"type": "min_area", "min": 1}],
        card=model.with_suffix(".json"),
    )


def _expand(images: tuple[str, ...]) -> list[Path]:
    from inspect_core.data.datasets import IMAGE_EXTS

    out: list[Path] = []
    for s in images:
        p = Path(s)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS)
            if not found:
                raise InspectError(
                    f"folder {p} holds no images ({', '.join(IMAGE_EXTS)}); nothing was inspected"
                )
            out.extend(found)
        else:
            out.append(p)
    return out


def overlay_path(out: Path, image: Path, sha256: str, taken: set[Path]) -> Path:
    """``OUT/<stem>.png``, unless that path is ``taken`` (the run's input images, and the
    overlays written so far: same stem in two folders, a.png and a.jpg, --out = the input
    folder): then ``OUT/<stem>-<sha256[:8]>.png``. No overlay overwrites another or an input."""
    path = out / f"{image.stem}.png"
    if path.resolve() in taken:
        path = out / f"{image.stem}-{sha256[:8]}.png"
    taken.add(path.resolve())
    return path


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="A bare ONNX model.")
@plugin_recipe_options(
    recipe_param="recipe_name",
    plugin_help="Plugin (or domain) name; with --recipe runs the full chain.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="predictions",
    show_default=True,
    help="Folder for overlay PNGs.",
)
@click.option("--no-overlay", is_flag=True, help="Do not write overlays.")
@click.option(
    "--pixel-size",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="mm per pixel of the image the model sees (areas in mm²).",
)
@click.option("--record", is_flag=True, help="Record every inspection in the database.")
@click.option(
    "--db",
    default=None,
    help="Database URL for --record (default INSPECT_DATABASE_URL or sqlite:///inspect.db).",
)
@click.option("--threads", default=0, help="ONNX Runtime threads (0 = all cores).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object per image, one a line."
)
def predict(
    images: tuple[str, ...],
    model_path: str | None,
    plugin: str | None,
    recipe_name: str | None,
    out: str,
    no_overlay: bool,
    pixel_size: float | None,
    record: bool,
    db: str | None,
    threads: int,
    as_json: bool,
) -> None:
    """Inspect IMAGES (files or folders): verdict, fired rules, regions and an overlay each.

    Exit code: 0 all PASS, 3 some REVIEW, 4 some FAIL, 5 some image could not be read.
    """
    from inspect_core.plugin_api.manager import get_registry

    if db and not record:
        raise click.UsageError("--db goes with --record (where to record the inspections)")
    reg = get_registry()
    recipe = _recipe(model_path, plugin, recipe_name)
    if pixel_size:
        recipe = recipe.with_overrides({"pixel_size_mm": pixel_size})
    paths = _expand(images)
    inspector = Inspector(recipe, reg.rules, threads=threads)
    warn_unverified(inspector.model_check)
    sink = _sql_sink(reg, db) if record else None
    taken = {p.resolve() for p in paths}
    worst = Decision.PASS
    try:
        with item_progress(len(paths), "inspecting") as advance:
            for path in paths:
                insp, result = inspector.inspect_file(path, plugin=plugin or "")
                if result is not None and not no_overlay:
                    ov = render_result(result, insp.verdict, inspector)
                    dest = overlay_path(Path(out), path, insp.image_sha256, taken)
                    insp.overlay_path = str(save_overlay(dest, ov))
                if sink is not None:
                    sink.write(insp)
                d = insp.verdict.decision
                worst = d if d.severity > worst.severity else worst
                if as_json:
                    sys.stdout.write(json.dumps(insp.to_dict()) + "\n")
                else:
                    _print(insp)
                advance()
    finally:
        if sink is not None:
            sink.close()
    if not as_json and not no_overlay:
        click.echo(f"overlays in {terminal_text(Path(out).resolve())}")
    sys.exit(EXIT_CODES[worst])


EXIT_CODES = {
    Decision.PASS: EXIT_PASS,
    Decision.REVIEW: EXIT_REVIEW,
    Decision.FAIL: EXIT_FAIL,
    Decision.ERROR: EXIT_ERROR,
}


def _recipe(model_path: str | None, plugin: str | None, recipe_name: str | None) -> Recipe:
    """The plugin's recipe (--plugin, --recipe), or a bare model's (--model)."""
    if plugin or recipe_name:
        if not (plugin and recipe_name):
            raise click.UsageError("--plugin and --recipe go together")
        from inspect_core.plugin_api.resolve import find_recipe

        return find_recipe(plugin, recipe_name)
    if model_path:
        return bare_recipe(Path(model_path))
    raise click.UsageError("give --model MODEL.onnx, or --plugin P --recipe R")


def _sql_sink(reg: Registry, db: str | None) -> Sink:
    """The records plugin's ``sql`` sink, for --record."""
    if "sql" not in reg.sinks:
        raise InspectError(
            "--record needs the records plugin (db), which is not loaded; see `inspect plugins`"
        )
    return reg.sinks["sql"]({"url": db} if db else {})


def _print(insp: Inspection) -> None:
    """One image's verdict for a person; names (files, classes, rules) cannot steer the
    terminal (:func:`~inspect_core.text.terminal_text`)."""
    v = insp.verdict
    colour = {"PASS": "green", "REVIEW": "yellow", "FAIL": "red", "ERROR": "magenta"}[
        v.decision.value
    ]
    click.secho(f"{v.decision.value:6} {terminal_text(insp.source)}", fg=colour, bold=True)
    if insp.error:
        click.echo(f"       {terminal_text(insp.error)}")
    shown = {h.message for h in v.hits}  # a broken quality limit is a hit, named `quality`
    for m in insp.health.messages if insp.health is not None else []:
        if m not in shown:  # on_problem = "record": named, the verdict is the model's
            click.echo(f"       image: {terminal_text(m)} (recorded; the verdict is the model's)")
    for h in v.hits:
        click.echo(f"       {terminal_text(h.rule)}: {terminal_text(h.message)}")
    for r in v.regions[:10]:
        click.echo(
            f"       - {terminal_text(r.class_name):12} area {r.area_px:6d} px  bbox "
            f"{list(r.bbox)}  p {r.mean_prob:.2f}/{r.max_prob:.2f}"
        )
    if len(v.regions) > 10:
        click.echo(f"       ... {len(v.regions) - 10} more regions")
