"""The model registry: each recipe's model versions (the ``model`` table: sha256, file, card,
how it was made, who added it) and which one is active, for all stations or for one
(``model_activation``: append-only, one row per promote or rollback, with who and when).

Stations follow it through :class:`SqlVersions` (the ``sql`` version source): the active
version of a recipe for a station is its station's latest activation, else the latest one for
all stations, else the recipe's own model file (``None``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inspect_core.cards import read_card
from inspect_core.plugin_api.interfaces import ModelVersion
from inspect_core.runtime.variants import VariantSet
from inspect_db.engine import connect, make_engine
from inspect_db.errors import RecordsError
from inspect_db.migrate import ensure_schema
from inspect_db.models import Model, ModelActivation, table_of, utcnow

M = table_of(Model)
A = table_of(ModelActivation)
ORIGINS = ("shipped", "trained", "imported")


class RegistryError(RecordsError):
    """A registry change that cannot be made (exit code 2): the message says why and what to
    do."""


@dataclass(frozen=True)
class VersionRow:
    """One version of a recipe's model, as ``inspect model list`` shows it."""

    id: int
    label: str
    sha256: str
    path: str | None
    origin: str | None
    added_by: str | None
    added_at: datetime
    note: str | None
    card: dict[str, Any] | None


@dataclass(frozen=True)
class Activation:
    """One promote or rollback: which version (None: the recipe's own file; ``inherit``: the
    station follows the all-stations choice again), where, who, when."""

    id: int
    station: str | None  # None: every station
    model_id: int | None
    action: str  # promote | rollback
    inherit: bool
    by: str
    at: datetime
    note: str | None


def versions(conn: Connection, plugin: str, recipe: str) -> list[VersionRow]:
    """The recipe's registered versions, oldest first."""
    rows = conn.execute(
        sa.select(M)
        .where(M.c.plugin == plugin, M.c.recipe == recipe, M.c.path.is_not(None))
        .order_by(M.c.id)
    )
    return [
        VersionRow(
            r.id,
            r.version or "",
            r.sha256,
            r.path,
            r.origin,
            r.added_by,
            r.created_at,
            r.note,
            r.card,
        )
        for r in rows
    ]


def activations(conn: Connection, plugin: str, recipe: str) -> list[Activation]:
    """Every promote and rollback of the recipe, oldest first (the audit trail)."""
    rows = conn.execute(
        sa.select(A).where(A.c.plugin == plugin, A.c.recipe == recipe).order_by(A.c.id)
    )
    return [
        Activation(r.id, r.station, r.model_id, r.action, r.inherit, r.by, r.at, r.note)
        for r in rows
    ]


def _latest(conn: Connection, plugin: str, recipe: str, station: str | None) -> Any:
    scope = A.c.station.is_(None) if station is None else A.c.station == station
    return conn.execute(
        sa.select(A)
        .where(A.c.plugin == plugin, A.c.recipe == recipe, scope)
        .order_by(A.c.id.desc())
        .limit(1)
    ).first()


def active_id(conn: Connection, plugin: str, recipe: str, station: str | None) -> int | None:
    """The id of the version active for ``station`` (None: for all stations); None for the
    recipe's own model file."""
    if station is not None:
        row = _latest(conn, plugin, recipe, station)
        if row is not None and not row.inherit:
            return row.model_id  # type: ignore[no-any-return]
    row = _latest(conn, plugin, recipe, None)
    return None if row is None else row.model_id


def active(conn: Connection, plugin: str, recipe: str, station: str) -> ModelVersion | None:
    """What a station should run (see the module docstring)."""
    mid = active_id(conn, plugin, recipe, station)
    if mid is None:
        return None
    r = conn.execute(sa.select(M).where(M.c.id == mid)).one()
    return ModelVersion(r.sha256, r.path, r.version or "")


def _one_adder(conn: Connection, plugin: str, recipe: str) -> None:
    """Serialise adding versions of one recipe: the next label is counted from the versions
    there, so two `inspect model add` at once must not both count the same. SQLite's write
    transaction (BEGIN IMMEDIATE) already does; on PostgreSQL a transaction-scoped advisory lock
    per recipe."""
    if conn.dialect.name == "postgresql":
        key = f"inspect model add {plugin}:{recipe}"
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def add_version(
    engine: Engine,
    *,
    plugin: str,
    recipe: str,
    sha256: str,
    path: Path,
    card: dict[str, Any],
    origin: str,
    by: str,
    note: str | None = None,
) -> VersionRow:
    """Register a checked model file (the caller checked its card and classes) as the
    recipe's next version (v1, v2, ...; the shipped file is ``shipped``)."""
    if origin not in ORIGINS:
        raise RegistryError(f"--origin {origin!r}: use one of {', '.join(ORIGINS)}")
    with connect(engine, write=True) as conn:
        _one_adder(conn, plugin, recipe)
        row = conn.execute(sa.select(M).where(M.c.sha256 == sha256)).first()
        if row is not None and row.path is not None:
            raise RegistryError(
                f"{path}: this model (sha256 {sha256[:12]}) is registered already as "
                f"{row.plugin}:{row.recipe} {row.version}; promote that version"
            )
        n = len(versions(conn, plugin, recipe))
        label = (
            "shipped"
            if origin == "shipped"
            else f"v{n + (0 if _has_shipped(conn, plugin, recipe) else 1)}"
        )
        values = dict(
            plugin=plugin,
            recipe=recipe,
            version=label,
            card=card,
            path=str(path),
            origin=origin,
            added_by=by,
            note=note,
        )
        if row is None:
            conn.execute(sa.insert(M).values(sha256=sha256, created_at=utcnow(), **values))
        else:  # recorded before (an inspection named it): now it is a version too
            conn.execute(sa.update(M).where(M.c.id == row.id).values(**values))
        return next(v for v in versions(conn, plugin, recipe) if v.sha256 == sha256)


def _has_shipped(conn: Connection, plugin: str, recipe: str) -> bool:
    return any(v.origin == "shipped" for v in versions(conn, plugin, recipe))


def find_version(conn: Connection, plugin: str, recipe: str, spec: str) -> VersionRow:
    """A version by label (``v3``, ``shipped``) or by the start of its sha256 (8+ digits)."""
    found = versions(conn, plugin, recipe)
    hits = [v for v in found if v.label == spec] or (
        [v for v in found if v.sha256.startswith(spec.lower())] if len(spec) >= 8 else []
    )
    if len(hits) != 1:
        known = ", ".join(f"{v.label} ({v.sha256[:12]})" for v in found) or "none registered"
        what = "matches several versions" if hits else "is no version"
        raise RegistryError(
            f"{spec!r} {what} of {plugin}:{recipe}; its versions: {known} (`inspect model "
            "list` shows them; `inspect model add` registers one)"
        )
    return hits[0]


def record(
    engine: Engine,
    *,
    plugin: str,
    recipe: str,
    station: str | None,
    model_id: int | None,
    action: str,
    by: str,
    note: str | None = None,
    inherit: bool = False,
) -> None:
    """Append one activation (promote or rollback)."""
    with connect(engine, write=True) as conn:
        conn.execute(
            sa.insert(A).values(
                plugin=plugin,
                recipe=recipe,
                station=station,
                model_id=model_id,
                action=action,
                inherit=inherit,
                by=by,
                at=utcnow(),
                note=note,
            )
        )


def rollback_target(
    conn: Connection, plugin: str, recipe: str, station: str | None
) -> tuple[int | None, bool]:
    """What a rollback of ``station``'s scope goes back to: (model id, inherit). The scope's
    promotions form a stack and each rollback takes the top one off, so a second rollback goes
    back one more promotion, never forward to the version the first rollback left; below the
    first promotion is the recipe's file (for a station, the all-stations choice).
    RegistryError when nothing promoted there is left to take off."""
    scope = A.c.station.is_(None) if station is None else A.c.station == station
    rows = conn.execute(
        sa.select(A.c.model_id, A.c.inherit, A.c.action)
        .where(A.c.plugin == plugin, A.c.recipe == recipe, scope)
        .order_by(A.c.id)
    ).all()
    stack: list[tuple[int | None, bool]] = []
    for r in rows:
        if r.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append((r.model_id, bool(r.inherit)))
    where = f"station {station}" if station else "all stations"
    if not stack:
        runs = "the all-stations choice" if station else "the recipe's own model file"
        why = "was ever promoted" if not rows else "is left that a rollback has not undone"
        raise RegistryError(
            f"nothing to roll back: no promotion of {plugin}:{recipe} for {where} {why}; "
            f"it runs {runs}. Promote the version it should run instead"
        )
    if len(stack) == 1:
        return None, station is not None
    return stack[-2]


def store_copy(store: Path, plugin: str, recipe: str, sha256: str, model: Path, card: Path) -> Path:
    """Copy a model, its card and the files of its shipped variants (``steel.int8.onnx``:
    without them a station runs the fp32 file, at half the speed) into the registry's store
    folder (one set per version, named by its sha256, read by every station); the stored
    model's path."""
    folder = store / plugin / recipe
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{sha256[:16]}.onnx"
    pairs = [(model, dest), (card, dest.with_suffix(".json"))]
    vset = VariantSet.from_card(read_card(card), card)
    for v in vset.variants if vset else ():
        if v.shipped and v.suffix != ".onnx" and v.file(model).is_file():
            pairs.append((v.file(model), v.file(dest)))
    for src, dst in dict(pairs).items():  # variants sharing one file: copied once
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    return dest


class SqlVersions:
    """The ``sql`` version source: the station's database's registry."""

    def __init__(self, config: dict[str, Any]):
        self.engine = make_engine(config.get("url"), pool_size=1)
        self._schema_checked = False  # once per source: a poll every few seconds stays cheap

    def active(self, plugin: str, recipe: str, station: str) -> ModelVersion | None:
        if not self._schema_checked:
            ensure_schema(self.engine)
            self._schema_checked = True
        with connect(self.engine) as conn:
            return active(conn, plugin, recipe, station)

    def close(self) -> None:
        self.engine.dispose()
