"""``inspect model list | add | promote | rollback``: the model registry from the command line
(:mod:`inspect_db.registry.versions`). Every change is recorded with who made it and when."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from inspect_core.anomaly.named import GOOD_ONLY_CLASSES, names_defects
from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_core.commands.tune import tune_cmd
from inspect_db.commands import DB_HELP

if TYPE_CHECKING:  # SQLAlchemy loads when a command runs, not at `inspect --help`
    import sqlalchemy as sa

STORE_ENV = "INSPECT_MODEL_STORE"
NAMED_HINT = (
    "a version of a good-only recipe is a model of background and the classes operators "
    "named (never anomaly), as `inspect train` makes from `inspect review export`"
)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container)
        return os.environ.get("USER", "unknown")


def _engine(url: str | None, *, create: bool = False) -> sa.Engine:
    """The registry's database. ``create`` (``model add``, a writer's first use) may create
    and migrate a new one; list, promote and rollback need an existing one with inspect's
    schema (a mistyped --db is one line naming the file, and creates nothing)."""
    from inspect_db.engine import make_engine
    from inspect_db.migrate import ensure_schema

    engine = make_engine(url, existing=not create)
    try:
        ensure_schema(engine, migrate_empty=create)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _recipe_model(plugin: str, recipe: str) -> tuple[Any, Any]:
    """The recipe ``plugin:recipe`` and its own model (what a version must fit)."""
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.onnx_model import OnnxModel

    r = find_recipe(plugin, recipe)
    return r, OnnxModel(r.model, card=r.card_path, threads=1)


def check_model_file(plugin: str, recipe: str, path: Path) -> tuple[str, dict[str, Any]]:
    """The sha256 and card of a model file that may become a version of ``plugin:recipe``:
    its card beside it vouches for it, its classes are the recipe's (a good-only recipe's:
    or ``background`` and the defects operators named, :func:`names_defects`), and its
    network (the shapes its graph really takes and gives) and metadata fit the recipe
    (:func:`inspect_core.runtime.recipe_checks.model_fit_problems`); RegistryError
    otherwise."""
    from inspect_core.errors import InspectError
    from inspect_core.runtime.model_file import read_graph
    from inspect_core.runtime.onnx_model import OnnxModel
    from inspect_core.runtime.recipe_checks import model_fit_problems
    from inspect_db.registry.versions import RegistryError

    card = path.with_suffix(".json")
    if not path.is_file():
        raise RegistryError(f"{path}: no such model file")
    if not card.is_file():
        raise RegistryError(
            f"{path}: no model card {card.name} beside it; a version needs the card training "
            "wrote with it (model.json, renamed with the model)"
        )
    try:
        model = OnnxModel(path, card=card, threads=1)
        graph = read_graph(path, model.meta.channels, model.meta.stride)
    except InspectError as e:
        raise RegistryError(str(e)) from None
    r, own = _recipe_model(plugin, recipe)
    want = own.meta
    if names_defects(own.classes, model.classes):  # a good-only recipe's named version
        want = replace(own.meta, classes=list(model.classes))
    elif model.classes != own.classes:
        raise RegistryError(
            f"{path}: its classes {model.classes} are not those of {plugin}:{recipe} "
            f"{own.classes}; a version must segment the same classes in the same order"
            + (f"; {NAMED_HINT}" if own.classes == GOOD_ONLY_CLASSES else "")
        )
    problems = model_fit_problems(recipe, want, model.meta, graph, r.tile)
    problems += r.class_problems(model.classes)  # a good-only recipe that names "anomaly"
    if problems:
        raise RegistryError(
            f"{path} does not fit recipe {plugin}:{recipe}, refused: "
            + "; ".join(problems)
            + ". A version must be a network trained and exported for this recipe (inspect "
            "train writes one); export it again to fit, then add it again"
        )
    read = model.loaded.card  # the card as the load read it: not read a second time
    data = dict(read.data) if read is not None else json.loads(card.read_text())
    return (model.check.sha256 if model.check else ""), data


def _store(store: str | None, url: str | None) -> Path:
    from inspect_db.engine import parse_url
    from inspect_db.registry.versions import RegistryError

    if store or os.environ.get(STORE_ENV):
        return Path(store or os.environ[STORE_ENV]).resolve()
    u = parse_url(url)
    if u.get_backend_name() == "sqlite" and u.database:
        return Path(u.database).resolve().parent / "model-store"
    raise RegistryError(
        f"where should the model files go? give --store DIR (or ${STORE_ENV}): a folder every "
        "station can read (a share), since stations load versions from there"
    )


@click.group("model")
def model_group() -> None:
    """The model registry: each recipe's versions, which is active, promote and roll back;
    and which variant of a model runs fastest on this machine (tune)."""


model_group.add_command(tune_cmd)  # measuring a model on this machine needs no registry


@model_group.command("list")
@plugin_recipe_options(required=True)
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(plugin: str, recipe: str, url: str | None, as_json: bool) -> None:
    """The recipe's versions, which is active where, and every promote and rollback."""
    from inspect_db.registry.versions import activations, active_id, versions

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            vs = versions(conn, plugin, recipe)
            acts = activations(conn, plugin, recipe)
            everywhere = active_id(conn, plugin, recipe, None)
            stations = sorted({a.station for a in acts if a.station})
            per_station = {s: active_id(conn, plugin, recipe, s) for s in stations}
    finally:
        engine.dispose()
    label = {v.id: v.label for v in vs}
    out = {
        "plugin": plugin,
        "recipe": recipe,
        "active": {
            "all": label.get(everywhere, "recipe file") if everywhere else "recipe file",
            **{
                s: label.get(m, "recipe file") if m else "recipe file"
                for s, m in per_station.items()
            },
        },
        "versions": [
            {
                "label": v.label,
                "sha256": v.sha256,
                "origin": v.origin,
                "added_by": v.added_by,
                "added_at": v.added_at.isoformat(timespec="seconds"),
                "path": v.path,
                "file_present": bool(v.path and Path(v.path).is_file()),
                "note": v.note,
            }
            for v in vs
        ],
        "history": [
            {
                "at": a.at.isoformat(timespec="seconds"),
                "by": a.by,
                "action": a.action,
                "station": a.station or "all",
                "version": "all-stations choice"
                if a.inherit
                else (label.get(a.model_id, "?") if a.model_id else "recipe file"),
                "note": a.note,
            }
            for a in acts
        ],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    _print_list(out)


def _print_list(out: dict[str, Any]) -> None:
    from inspect_core.text import terminal_text as t

    click.echo(f"{t(out['plugin'])}:{t(out['recipe'])}")
    for where, v in out["active"].items():
        click.echo(f"  active for {t(where)}: {t(v)}")
    for v in out["versions"]:
        gone = "" if v["file_present"] else "  (FILE MISSING)"
        click.echo(
            f"  {t(v['label']):8s} {v['sha256'][:12]}  {t(v['origin'] or ''):8s} "
            f"{v['added_at']} by {t(v['added_by'] or '?')}  {t(v['path'] or '')}{gone}"
        )
    for h in out["history"]:
        click.echo(
            f"  {h['at']} {t(h['by'])}: {h['action']} {t(h['version'])} for {t(h['station'])}"
            + (f" ({t(h['note'])})" if h["note"] else "")
        )


@model_group.command("add")
@click.argument("model", type=click.Path(path_type=Path))
@plugin_recipe_options(required=True)
@click.option(
    "--origin",
    default="trained",
    show_default=True,
    type=click.Choice(["shipped", "trained", "imported"]),
)
@click.option("--note", default=None, help="What it is (e.g. the data it was trained on).")
@click.option("--by", default=None, help="Who adds it (default: this user).")
@click.option("--store", default=None, help=f"Folder of the versions' files (${STORE_ENV}).")
@click.option("--db", "url", default=None, help=DB_HELP)
def add_cmd(
    model: Path,
    plugin: str,
    recipe: str,
    origin: str,
    note: str | None,
    by: str | None,
    store: str | None,
    url: str | None,
) -> None:
    """Register MODEL (with its card beside it) as the recipe's next version; its file and
    card are copied into the store folder, which stations read. Not active until promoted."""
    from inspect_db.engine import created_note, will_create
    from inspect_db.registry.versions import add_version, store_copy

    sha, card = check_model_file(plugin, recipe, model)
    folder = _store(store, url)
    fresh = will_create(url)
    engine = _engine(url, create=True)
    try:
        dest = store_copy(folder, plugin, recipe, sha, model, model.with_suffix(".json"))
        v = add_version(
            engine,
            plugin=plugin,
            recipe=recipe,
            sha256=sha,
            path=dest,
            card=card,
            origin=origin,
            by=_who(by),
            note=note,
        )
    finally:
        engine.dispose()
    click.echo(f"added {plugin}:{recipe} {v.label} ({sha[:12]}) -> {dest}")
    if fresh is not None:
        click.echo(created_note(fresh), err=True)


@model_group.command("promote")
@click.argument("version")
@plugin_recipe_options(required=True)
@click.option("--station", default=None, help="Only this station (default: every station).")
@click.option("--note", default=None, help="Why (kept in the history).")
@click.option("--by", default=None, help="Who promotes it (default: this user).")
@click.option("--db", "url", default=None, help=DB_HELP)
def promote_cmd(
    version: str,
    plugin: str,
    recipe: str,
    station: str | None,
    note: str | None,
    by: str | None,
    url: str | None,
) -> None:
    """Make VERSION (a label such as v3, or 8+ digits of its sha256; `recipe` for the recipe's
    own file) the active one; stations switch to it between two images."""
    from inspect_db.registry.versions import RegistryError, find_version, record

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            v = None if version == "recipe" else find_version(conn, plugin, recipe, version)
            known = _station_known(conn, station)
        if v is not None and not (v.path and Path(v.path).is_file()):
            raise RegistryError(
                f"{plugin}:{recipe} {v.label}: its file {v.path} is missing; stations could not "
                "load it. Restore it, or add the model again"
            )
        record(
            engine,
            plugin=plugin,
            recipe=recipe,
            station=station,
            model_id=v.id if v else None,
            action="promote",
            by=_who(by),
            note=note,
        )
    finally:
        engine.dispose()
    what = f"{v.label} ({v.sha256[:12]})" if v else "the recipe's own file"
    click.echo(f"{plugin}:{recipe}: {what} is active for {station or 'all stations'}")
    if not known:  # a station still being set up is fine; a typo would promote for nobody
        click.echo(
            f"note: no station named {station!r} has recorded anything in this database yet; "
            "check the name if that station is running",
            err=True,
        )


def _station_known(conn: Any, station: str | None) -> bool:
    """Whether ``station`` (None: every station) names a station with records."""
    if station is None:
        return True
    import sqlalchemy as sa

    from inspect_db.models import Station

    t = Station.__table__
    return conn.execute(sa.select(t.c.id).where(t.c.name == station)).first() is not None


@model_group.command("rollback")
@plugin_recipe_options(required=True)
@click.option("--station", default=None, help="Only this station (default: every station).")
@click.option("--note", default=None, help="Why (kept in the history).")
@click.option("--by", default=None, help="Who rolls back (default: this user).")
@click.option("--db", "url", default=None, help=DB_HELP)
def rollback_cmd(
    plugin: str,
    recipe: str,
    station: str | None,
    note: str | None,
    by: str | None,
    url: str | None,
) -> None:
    """Go back to the version active before the last promote (for all stations, or one)."""
    from inspect_db.registry.versions import record, rollback_target, versions

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            mid, inherit = rollback_target(conn, plugin, recipe, station)
            label = {v.id: v.label for v in versions(conn, plugin, recipe)}
        record(
            engine,
            plugin=plugin,
            recipe=recipe,
            station=station,
            model_id=mid,
            action="rollback",
            by=_who(by),
            note=note,
            inherit=inherit,
        )
    finally:
        engine.dispose()
    what = (
        "the all-stations choice"
        if inherit
        else (label.get(mid, "?") if mid else "the recipe's own file")
    )
    click.echo(f"{plugin}:{recipe}: rolled back to {what} for {station or 'all stations'}")
