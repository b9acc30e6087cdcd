"""Writing inspections: :class:`Recorder` (the Python API) and :class:`SqlSink` (the ``sql`` sink).

Recording is idempotent: ``INSERT ... ON CONFLICT DO NOTHING`` on the record's key, (station,
image sha256) for a file and (station, capture id) for a triggered capture, so recording the
same image twice at one station leaves one inspection, a station that retries after a timeout
never duplicates, and two triggered parts whose frames are identical are two records. Each
inspection and its regions are written in one transaction. Stations and models are
get-or-create (by name / by sha256), safe with several writer processes at once.

Every row is cleaned before the database sees it (:mod:`db.sanitize`: no NUL, valid UTF-8,
text cut to its column, no NaN in JSON). A row the database still refuses for its content raises
:class:`RecordRefused` (``dead_letter = True``): a station sets it aside and goes on.

A station daemon uses it like this::

    rec = Recorder(url)               # does not connect yet
    try:
        rec.record(inspection)        # True: new row; False: was already recorded
    except DatabaseUnavailable:
        journal.append(inspection)    # keep it locally, replay later (rec.has() skips dupes)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from inspect_core.types import Inspection
from inspect_db.engine import connect, make_engine, safe_url
from inspect_db.errors import RecordsError
from inspect_db.migrate import ensure_schema
from inspect_db.models import CONTENT_KEY, InspectionRecord, Model, RegionRecord, Station
from inspect_db.sanitize import clean_row, clean_text

INSP = InspectionRecord.__table__
REGION = RegionRecord.__table__
STATION = Station.__table__
MODEL = Model.__table__
_REGION_INSERT = sa.insert(REGION)


class RecordRefused(RecordsError):
    """The database refuses this one record for its content (a value it cannot store, a
    constraint it violates); others go on. ``dead_letter`` tells a station's writer to set the
    result aside (and replay it later) instead of holding every later result behind it."""

    dead_letter = True


def utc(ts: float | None) -> datetime | None:
    """Unix seconds -> naive UTC datetime (how times are stored)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def config_hash(inspection: Inspection) -> str:
    """What a station ran with: plugin, recipe, model and thresholds, hashed."""
    blob = json.dumps(
        {
            "plugin": inspection.plugin,
            "recipe": inspection.recipe,
            "model": inspection.model_sha256,
            "thresholds": inspection.thresholds,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@lru_cache(maxsize=64)
def _insert_ignore_stmt(
    dialect: str,
    table: sa.Table,
    keys: tuple[str, ...],
    returning: sa.Column | None,
    where: Any = None,
) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) [WHERE where] DO NOTHING [RETURNING col]``, built once per
    dialect and executed with parameters (building a statement per row costs more than running
    it). ``where`` names a partial unique index."""
    ins = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    stmt = ins.on_conflict_do_nothing(index_elements=list(keys), index_where=where)
    return stmt if returning is None else stmt.returning(returning)


def insert_ignore(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    keys: list[str],
    returning: sa.Column | None = None,
    where: Any = None,
) -> Any:
    """INSERT that does nothing when ``keys`` already exist (in the partial unique index of
    ``where``, if given); returns ``returning`` or None."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        stmt = _insert_ignore_stmt(name, table, tuple(keys), returning, where)
        res = conn.execute(stmt, values)
        return None if returning is None else res.scalar_one_or_none()
    try:  # any other dialect: a savepoint around a plain INSERT
        with conn.begin_nested():
            res = conn.execute(sa.insert(table), values)
    except IntegrityError:
        return None
    return res.inserted_primary_key[0] if returning is not None else None


def read_card(path: str | None, sha256: str) -> dict[str, Any] | None:
    """The model card at ``path`` if it names the model with ``sha256``; None when there is
    no path, the file is gone or unreadable, or it names another model (a stale card must not
    be stored as this model's; recording never fails because of a card)."""
    if not path:
        return None
    try:
        card = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or card.get("sha256") != sha256:
        return None
    return card


def card_version(card: dict[str, Any] | None) -> str | None:
    """A model's version: the card's ``version``, else the first 12 hex digits of its sha256."""
    if not card:
        return None
    return str(card.get("version") or str(card.get("sha256") or "")[:12] or "") or None


def inspection_values(insp: Inspection, station_id: int, model_id: int | None) -> dict[str, Any]:
    """The ``inspection`` row of an :class:`Inspection`."""
    v = insp.verdict
    at = insp.inspected_at if insp.inspected_at is not None else time.time()
    return clean_row(
        INSP,
        dict(
            station_id=station_id,
            model_id=model_id,
            plugin=insp.plugin or "",
            recipe=insp.recipe or "",
            source=insp.source,
            image_sha256=insp.image_sha256,
            width=int(insp.width),
            height=int(insp.height),
            captured_at=utc(insp.captured_at),
            inspected_at=utc(at),
            inspected_hour=int(at // 3600),
            latency_ms=float(insp.latency_ms),
            verdict=v.decision.value,
            fired=[h.to_dict() for h in v.hits],
            thresholds=insp.thresholds,
            part_id=insp.part_id,
            lot=insp.lot,
            error=insp.error,
            overlay_path=insp.overlay_path,
            capture_id=insp.capture_id,
            n_regions=len(v.regions),
            defect_area_px=int(sum(r.area_px for r in v.regions)),
        ),
    )


def region_values(
    insp: Inspection, inspection_id: int, station_id: int, inspected_at: datetime
) -> list[dict[str, Any]]:
    """The ``region`` rows of an :class:`Inspection`."""
    out = []
    verdict = insp.verdict.decision.value
    for r in insp.verdict.regions:
        x, y, w, h = (int(c) for c in r.bbox)
        out.append(
            dict(
                inspection_id=inspection_id,
                station_id=station_id,
                inspected_at=inspected_at,
                verdict=verdict,
                plugin=insp.plugin or "",
                recipe=insp.recipe or "",
                class_id=int(r.class_id),
                class_name=r.class_name,
                bbox_x=x,
                bbox_y=y,
                bbox_w=w,
                bbox_h=h,
                area_px=int(r.area_px),
                area_mm2=None if r.area_mm2 is None else float(r.area_mm2),
                centroid_x=float(r.centroid[0]),
                centroid_y=float(r.centroid[1]),
                max_prob=float(r.max_prob),
                mean_prob=float(r.mean_prob),
                polygon=[[int(p[0]), int(p[1])] for p in r.polygon],
            )
        )
        clean_row(REGION, out[-1], json_too=False)  # the polygon is integers only
    return out


class Recorder:
    """Records :class:`~inspect_core.types.Inspection` objects in the database at ``url``.

    Connects lazily (first :meth:`record`, :meth:`has` or :meth:`connect`); an empty
    database is migrated then. Thread-safe: each call uses its own pooled connection.
    Raises :class:`~db.errors.DatabaseUnavailable` when the database cannot be reached (try
    again later: nothing is half-written) and :class:`~db.errors.SchemaOutdated` when it needs
    ``inspect db upgrade``.
    """

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, migrate: bool = True
    ):
        self.engine = engine or make_engine(url)
        self._owns_engine = engine is None
        self._migrate = migrate
        self._ready = False
        self._lock = threading.Lock()
        self._stations: dict[str, tuple[int, str, str, str]] = {}  # name -> id, plugin, ...
        self._models: dict[str, int] = {}  # sha256 -> id
        self._tls = threading.local()  # ids created by the transaction in flight, per thread

    # -- setup ---------------------------------------------------------------------------
    def connect(self) -> Recorder:
        """Connect and check (or create) the schema now rather than on the first write."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    ensure_schema(self.engine, migrate_empty=self._migrate)
                    self._ready = True
        return self

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def record(
        self,
        inspection: Inspection,
        *,
        config_hash: str | None = None,
        model_card: dict[str, Any] | None = None,
    ) -> bool:
        """Write one inspection and its regions in one transaction.

        Returns True if it was new, False if this station had already recorded it (the same
        image, or for a triggered capture the same ``capture_id``; then nothing is written).
        ``config_hash`` identifies the station's configuration (default: a hash of plugin,
        recipe, model and thresholds); ``model_card`` (default: the card file
        ``inspection.model_card`` names) is stored with a model the database has no card for
        yet. Raises :class:`RecordRefused` when the database refuses this record's content.
        """
        self.connect()
        try:
            try:
                return self._record_once(inspection, config_hash, model_card)
            except IntegrityError:  # a cached station or model row deleted meanwhile? once more
                return self._record_once(inspection, config_hash, model_card)
        except (DataError, IntegrityError) as e:  # this record's content: others go on
            raise self._refused(inspection, e) from e
        except DBAPIError as e:  # not a connection problem: connect() converted those
            raise RecordsError(
                f"cannot record {inspection.source} in "
                f"{self.engine.url.render_as_string(hide_password=True)}: "
                f"{type(e.orig).__name__}: {e.orig}"
            ) from e

    def _record_once(
        self, inspection: Inspection, chash: str | None, card: dict[str, Any] | None
    ) -> bool:
        try:
            self._pending = {}
            with connect(self.engine, write=True) as conn:
                new = self._write(conn, inspection, chash, card)
            # only ids of committed rows are cached: another thread must never reference a
            # station or model row that this transaction might still roll back
            self._stations.update(self._pending.get("stations", {}))
            self._models.update(self._pending.get("models", {}))
            return new
        except BaseException:
            self._forget()
            raise

    def _refused(self, insp: Inspection, e: DBAPIError) -> RecordRefused:
        what = insp.source + (f" (part {insp.part_id})" if insp.part_id else "")
        kind, orig = type(e).__name__, type(e.orig).__name__
        label = kind if kind == orig else f"{kind} ({orig})"  # e.g. DataError (StringDataRight...)
        reason = " ".join(f"{label}: {e.orig}".split())[:400]
        return RecordRefused(
            f"{safe_url(self.engine.url)} refuses the record of {clean_text(what, 300)}: "
            f"{reason}. Only this record is affected; fix what the database objects to (a "
            "constraint or column changed by hand?), then record it again"
        )

    @property
    def _pending(self) -> dict:
        return self._tls.__dict__.setdefault("pending", {})

    @_pending.setter
    def _pending(self, value: dict) -> None:
        self._tls.pending = value

    def _forget(self) -> None:
        """Drop cached ids: ones cached in a rolled-back transaction may not exist."""
        self._stations.clear()
        self._models.clear()

    def record_many(self, inspections: Iterable[Inspection]) -> int:
        """Record several inspections, one transaction each; returns how many were new."""
        return sum(self.record(i) for i in inspections)

    def _write(
        self, conn: Connection, insp: Inspection, chash: str | None, card: dict[str, Any] | None
    ) -> bool:
        sid = self._station_id(conn, insp, chash or config_hash(insp))
        mid = self._model_id(conn, insp, card) if insp.model_sha256 else None
        values = inspection_values(insp, sid, mid)
        if values["capture_id"] is None:  # a file: its content is the key
            iid = insert_ignore(
                conn,
                INSP,
                values,
                ["station_id", "image_sha256"],
                returning=INSP.c.id,
                where=CONTENT_KEY,
            )
        else:  # a triggered capture: its capture id is the key
            iid = insert_ignore(
                conn, INSP, values, ["station_id", "capture_id"], returning=INSP.c.id
            )
        if iid is None:
            return False
        rows = region_values(insp, iid, sid, values["inspected_at"])
        if rows:
            conn.execute(_REGION_INSERT, rows)
        return True

    def _station_id(self, conn: Connection, insp: Inspection, chash: str) -> int:
        want = (clean_text(insp.plugin or "", 128), clean_text(insp.recipe or "", 128), chash)
        cached = self._stations.get(insp.station)
        if cached is not None and cached[1:] == want:
            return cached[0]
        name = clean_text(insp.station, 128)
        insert_ignore(
            conn,
            STATION,
            dict(
                name=name, plugin=want[0], recipe=want[1], config_hash=chash, created_at=now_utc()
            ),
            ["name"],
        )
        row = conn.execute(
            sa.select(
                STATION.c.id, STATION.c.plugin, STATION.c.recipe, STATION.c.config_hash
            ).where(STATION.c.name == name)
        ).one()
        if tuple(row[1:]) != want:  # the station now runs another recipe or configuration
            conn.execute(
                sa.update(STATION)
                .where(STATION.c.id == row.id)
                .values(plugin=want[0], recipe=want[1], config_hash=chash)
            )
        self._pending.setdefault("stations", {})[insp.station] = (row.id, *want)
        return row.id

    def _model_id(self, conn: Connection, insp: Inspection, card: dict[str, Any] | None) -> int:
        """Get-or-create the model row; its card (given, or read from ``insp.model_card``) is
        stored with it, also onto a row created earlier without one."""
        sha = insp.model_sha256
        if sha in self._models:
            return self._models[sha]
        if card is None:
            card = read_card(insp.model_card, sha)
        version = card_version(card)
        values = clean_row(
            MODEL,
            dict(
                sha256=sha,
                plugin=insp.plugin or "",
                recipe=insp.recipe or "",
                version=version,
                card=card,
                created_at=now_utc(),
            ),
        )
        insert_ignore(conn, MODEL, values, ["sha256"])
        row = conn.execute(sa.select(MODEL.c.id, MODEL.c.card).where(MODEL.c.sha256 == sha)).one()
        if row.card is None and card is not None:
            conn.execute(
                sa.update(MODEL)
                .where(MODEL.c.id == row.id)
                .values(card=values["card"], version=values["version"])
            )
        self._pending.setdefault("models", {})[sha] = row.id
        return row.id

    def register_model(
        self,
        sha256: str,
        *,
        plugin: str = "",
        recipe: str = "",
        version: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> int:
        """Get-or-create a model row with its details; returns its id."""
        self.connect()
        with connect(self.engine, write=True) as conn:
            insert_ignore(
                conn,
                MODEL,
                clean_row(
                    MODEL,
                    dict(
                        sha256=sha256,
                        plugin=plugin,
                        recipe=recipe,
                        version=version,
                        card=card,
                        created_at=now_utc(),
                    ),
                ),
                ["sha256"],
            )
            mid = conn.execute(sa.select(MODEL.c.id).where(MODEL.c.sha256 == sha256)).scalar_one()
        self._models[sha256] = mid
        return mid

    # -- reading -------------------------------------------------------------------------
    def has(self, station: str, image_sha256: str, capture_id: str | None = None) -> bool:
        """Whether ``station`` holds this record: the file with this image sha256 (``capture_id``
        None), or the triggered capture with this ``capture_id`` (the same key as
        :meth:`record`)."""
        self.connect()
        key = (
            INSP.c.capture_id.is_(None) & (INSP.c.image_sha256 == image_sha256)
            if capture_id is None
            else INSP.c.capture_id == clean_text(capture_id, 128)
        )
        stmt = (
            sa.select(INSP.c.id)
            .join(STATION, STATION.c.id == INSP.c.station_id)
            .where(STATION.c.name == clean_text(station, 128), key)
            .limit(1)
        )
        with connect(self.engine) as conn:
            return conn.execute(stmt).first() is not None

    def count(self) -> int:
        """How many inspections the database holds (all stations)."""
        self.connect()
        with connect(self.engine) as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(INSP)).scalar_one()


class SqlSink:
    """The ``sql`` sink: ``write(inspection)`` records it, ``close()`` lets go of the pool.

    Config keys: ``url`` (default ``INSPECT_DATABASE_URL`` or ``sqlite:///inspect.db``).
    Connects (and migrates an empty database) when created, so a wrong URL fails early.
    """

    def __init__(self, config: dict[str, Any] | None = None):
        config = dict(config or {})
        self.recorder = Recorder(config.get("url"))
        self.recorder.connect()
        self.written = 0
        self.duplicates = 0

    def write(self, inspection: Inspection) -> None:
        if self.recorder.record(inspection):
            self.written += 1
        else:
            self.duplicates += 1

    def close(self) -> None:
        self.recorder.close()
