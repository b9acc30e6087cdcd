"""``inspect backtest``: re-judge a window of the line's history with a candidate model, on
Dask, and compare with what was recorded (and what operators decided)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from inspect_core.anomaly.named import GOOD_ONLY_CLASSES, NAMED_HINT, names_defects
from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_core.errors import InspectError
from inspect_stations.config.limits_defaults import MAX_BYTES, MAX_PIXELS, SIXTEEN_BIT

SIXTEEN_BIT_READS = [s for s in SIXTEEN_BIT if s != "refuse"]  # what a backtest can read

DB_HELP = "Database URL (default $INSPECT_DATABASE_URL or sqlite:///inspect.db in this folder)."


class CandidateRefused(InspectError):
    """The candidate cannot stand in for the recipe's model (exit code 2)."""


def check_candidate(plugin: str, recipe: str, path: Path) -> tuple[str, list[str]]:
    """The candidate's sha256 and classes, once its card vouches for it and its classes are
    the recipe's (or, for a good-only recipe, name its defects:
    :mod:`inspect_core.anomaly.named`); :class:`CandidateRefused` saying what is wrong
    otherwise."""
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.onnx_model import OnnxModel

    if not path.is_file():
        raise CandidateRefused(f"--candidate {path}: no such model file")
    card = path.with_suffix(".json")
    if not card.is_file():
        raise CandidateRefused(
            f"--candidate {path}: no model card {card.name} beside it; a candidate needs the "
            "card training wrote with it (model.json, renamed with the model), so that what "
            "it is and how it scored is known"
        )
    model = OnnxModel(path, card=card, threads=1)  # refused if the card names another file
    r = find_recipe(plugin, recipe)
    active = OnnxModel(r.model, card=r.card_path, threads=1)
    if model.classes != active.classes and not names_defects(active.classes, model.classes):
        raise CandidateRefused(
            f"--candidate {path}: its classes {model.classes} are not those of "
            f"{plugin}:{recipe}'s model {active.classes}; a candidate must segment the same "
            "classes in the same order (retrain with the recipe's dataset)"
            + (f"; {NAMED_HINT}" if active.classes == GOOD_ONLY_CLASSES else "")
        )
    problems = r.class_problems(model.classes)  # a good-only recipe that names "anomaly"
    if problems:
        raise CandidateRefused(
            f"--candidate {path}: recipe {plugin}:{recipe} cannot judge its classes "
            f"{model.classes}: " + "; ".join(problems)
        )
    sha = model.check.sha256 if model.check else ""
    return sha, model.classes


def check_records(url: str | None) -> None:
    """The records database exists and has inspect's schema (a backtest only reads it):
    :class:`~inspect_db.errors.DatabaseMissing` naming a file that is not there, one line for
    a server that refuses, and nothing created or migrated."""
    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema

    engine = make_engine(url, existing=True)
    try:
        ensure_schema(engine, migrate_empty=False)
    finally:
        engine.dispose()


@click.command("backtest")
@plugin_recipe_options(
    required=True,
    plugin_help="The plugin of the recipe.",
    recipe_help="The recipe whose records are re-judged.",
)
@click.option(
    "--candidate",
    required=True,
    type=click.Path(path_type=Path),
    help="The model to try (.onnx with its card .json beside it).",
)
@click.option("--since", default=None, help="Start of the window: 7d, 24h, or an ISO date.")
@click.option("--until", default=None, help="End of the window (default: now).")
@click.option("--station", default=None, help="Only this station's records.")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--scheduler",
    default=None,
    help="A Dask scheduler's address (tcp://HOST:8786); default: a LocalCluster here.",
)
@click.option("--workers", default=0, help="LocalCluster worker processes (0: one per core).")
@click.option("--chunk", default=200, show_default=True, help="Images per Dask task.")
@click.option(
    "--path-map",
    "path_maps",
    multiple=True,
    help="OLD=NEW: read recorded paths starting with OLD at NEW (a mount or fsspec URL).",
)
@click.option(
    "--max-errors",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Images that may fail to be read or judged before the backtest exits 1 (its figures "
    "cover only the images judged).",
)
@click.option(
    "--sixteen-bit",
    default="scale",
    show_default=True,
    type=click.Choice(SIXTEEN_BIT_READS),
    help="How 16-bit images are read: as the stations' limits.sixteen_bit says (scale: value "
    "/ 257; 10, 12, 14: a camera's raw values).",
)
@click.option(
    "--max-bytes",
    default=MAX_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest image file read, as the stations' limits.max_bytes says (a larger file, "
    "or a device, pipe or folder recorded as a source, is an error, never read).",
)
@click.option(
    "--max-pixels",
    default=MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most pixels an image may have, as the stations' limits.max_pixels says (refused "
    "from its header, before decoding).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a page of the changed images, recorded and candidate overlays side by side.",
)
def backtest(
    plugin: str,
    recipe: str,
    candidate: Path,
    since: str | None,
    until: str | None,
    station: str | None,
    url: str | None,
    scheduler: str | None,
    workers: int,
    chunk: int,
    path_maps: tuple[str, ...],
    max_errors: int,
    sixteen_bit: str,
    max_bytes: int,
    max_pixels: int,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Re-judge the recorded images of a window with a candidate model and compare: the
    verdict confusion matrix (recorded -> candidate), the images whose verdict changes,
    agreement with operators' review decisions, and the candidate's latency.

    \b
    inspect backtest --plugin industrial --recipe steel --candidate runs/steel2/model.onnx \\
        --since 7d --json
    """
    from inspect_batch.run import run_backtest

    if chunk < 1:
        raise click.BadParameter("give at least 1", param_hint="--chunk")
    check_records(url)  # before the models load: a mistyped --db is one line, creates nothing
    sha, _ = check_candidate(plugin, recipe, candidate)
    result = run_backtest(
        plugin=plugin,
        recipe=recipe,
        candidate=candidate.resolve(),
        sha256=sha,
        window=(since, until, station),
        url=url,
        scheduler=scheduler,
        workers=workers,
        chunk=chunk,
        path_maps=list(path_maps),
        html=html_path,
        quiet=as_json,
        sixteen_bit=sixteen_bit,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _print(result)
    if result["errors"] > max_errors:
        click.echo(
            f"{result['errors']} of {result['errors'] + result['images']} images could not be "
            "read or judged (above --max-errors "
            f"{max_errors}): the figures cover the others only",
            err=True,
        )
        raise SystemExit(1)


def _print(s: dict[str, Any]) -> None:
    from inspect_core.text import terminal_text

    agree = "n/a" if s["agreement"] is None else f"{s['agreement']:.4f}"
    click.echo(
        f"{s['images']} images re-inspected, {s['changed']} changed verdict, agreement {agree}"
        f", {s['errors']} could not be read"
    )
    click.echo(
        "recorded -> candidate: "
        + "; ".join(
            f"{a} -> " + ", ".join(f"{b} {n}" for b, n in row.items() if n)
            for a, row in s["confusion"].items()
            if any(row.values())
        )
    )
    if len(s["recorded_by"]) > 1:  # a window across a promotion: the changes per model
        click.echo(
            "recorded by "
            + "; ".join(
                f"{terminal_text(m)}: {v['images']} images, {v['changed']} changed"
                for m, v in s["recorded_by"].items()
            )
        )
    _print_latency(s)
    _print_operators(s["reviewed"])
    if s["why_classes"]:
        click.echo(
            "classes whose regions differ in the changed images: "
            + ", ".join(f"{terminal_text(k)} {n}" for k, n in s["why_classes"].items())
        )
    for line in s.get("error_examples", [])[:5]:
        click.echo("  " + terminal_text(line), err=True)
    if s.get("html"):
        click.echo(f"page: {s['html']}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _print_latency(s: dict[str, Any]) -> None:
    """The candidate's model time per image, and the records' latency of the same images."""
    lat, rec = s["latency_ms"], s["recorded_latency_ms"]
    if lat:
        click.echo(
            f"candidate model step: median {lat['median']} ms, p95 {lat['p95']} ms, "
            f"max {lat['max']} ms"
            + (f"; recorded latency: median {rec['median']} ms, p95 {rec['p95']} ms" if rec else "")
        )


def _print_operators(r: dict[str, Any]) -> None:
    """Agreement with the operators' decisions, and the first images the candidate now
    judges otherwise than the operator."""
    from inspect_core.text import terminal_text

    if not r["images"]:
        return
    click.echo(
        f"operators decided {r['images']}: recorded verdict agrees on "
        f"{r['recorded_agrees']} ({_pct(r['recorded_share'])}), candidate on "
        f"{r['candidate_agrees']} ({_pct(r['candidate_share'])}); the candidate "
        f"disagrees on {r['candidate_disagrees']}"
    )
    for d in r["disagreements"][:5]:
        click.echo(
            terminal_text(
                f"  #{d['inspection_id']} {d['url']}: candidate {d['candidate']}, "
                f"operator {d['operator']}"
            )
        )
