"""Writing inspections: :class:`Recorder` (the Python API) and :class:`SqlSink` (the ``sql`` sink).

Recording is idempotent: ``INSERT ... ON CONFLICT DO NOTHING`` on the record's key, (station,
image sha256) for a file and (station, capture id) for a triggered capture, so recording the
same image twice at one station leaves one inspection, a station that retries after a timeout
never duplicates, and two triggered parts whose frames are identical are two records. One
exception: a file recorded as ERROR (refused: no verdict) and inspected again after the fault
was fixed gets its verdict in place of the ERROR record (deleted, and the verdict inserted in
the same transaction; ``Inspection.replaces`` names the ERROR of a file refused before it
could be read, whose key was its path, not its content). Each
inspection and its regions are written in one transaction. Stations and models are
get-or-create (by name / by sha256), safe with several writer processes at once.

The rows come from :mod:`inspect_db.records.rows`, every one cleaned before the database sees it. A
row the database still refuses for its content raises :class:`RecordRefused`
(``dead_letter = True``): a station sets it aside and goes on.

::

    rec = Recorder(url)               # does not connect yet
    try:
        rec.record(inspection)        # True: new row; False: was already recorded
    except DatabaseUnavailable:
        ...                           # nothing was written: keep it, record it again later

(A station journals every result before it is recorded; its writer thread calls the ``sql``
sink and tries again while the database is away.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from inspect_core.types import Inspection
from inspect_db.engine import connect, make_engine, safe_url
from inspect_db.errors import RecordsError
from inspect_db.migrate import ensure_schema
from inspect_db.models import CONTENT_KEY, utcnow
from inspect_db.records.rows import (
    INSP,
    MODEL,
    REGION,
    STATION,
    card_version,
    config_hash,
    insert_ignore,
    inspection_values,
    model_values,
    read_card,
    region_values,
)
from inspect_db.records.sanitize import clean_text

_REGION_INSERT = sa.insert(REGION)
_ERROR_ROW = (INSP.c.capture_id.is_(None)) & (INSP.c.verdict == "ERROR")
StationKey = tuple[int, str, str, str]  # id, plugin, recipe, config hash


@dataclass
class _Pending:
    """The station and model ids the transaction in flight created (cached once it commits)."""

    stations: dict[str, StationKey] = field(default_factory=dict)  # name -> id, plugin, ...
    models: dict[str, int] = field(default_factory=dict)  # sha256 -> id


class RecordRefused(RecordsError):
    """The database refuses this one record for its content (a value it cannot store, a
    constraint it violates); others go on. ``dead_letter`` tells a station's writer to set the
    result aside (and replay it later) instead of holding every later result behind it."""

    dead_letter = True


class Recorder:
    """Records :class:`~inspect_core.types.Inspection` objects in the database at ``url``.

    Connects lazily (first :meth:`record`, :meth:`has` or :meth:`connect`); an empty
    database is migrated then. Thread-safe: each call uses its own pooled connection.
    Raises :class:`~inspect_db.errors.DatabaseUnavailable` when the database cannot be reached
    (try again later: nothing is half-written) and :class:`~inspect_db.errors.SchemaOutdated`
    when it needs ``inspect db upgrade``.
    """

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, migrate: bool = True
    ):
        self.engine = engine or make_engine(url)
        self._owns_engine = engine is None
        self._migrate = migrate
        self._ready = False
        self._lock = threading.Lock()
        self._stations: dict[str, StationKey] = {}  # name -> id, plugin, ...
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

    def __exit__(self, *exc: object) -> None:
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

        Returns True if it was new (or a verdict replacing the file's ERROR record), False if
        this station had already recorded it (the same image, or for a triggered capture the
        same ``capture_id``; then nothing is written).
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
            self._pending = _Pending()
            with connect(self.engine, write=True) as conn:
                new = self._write(conn, inspection, chash, card)
            # only ids of committed rows are cached: another thread must never reference a
            # station or model row that this transaction might still roll back
            self._stations.update(self._pending.stations)
            self._models.update(self._pending.models)
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
    def _pending(self) -> _Pending:
        pending: _Pending = self._tls.__dict__.setdefault("pending", _Pending())
        return pending

    @_pending.setter
    def _pending(self, value: _Pending) -> None:
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
            if insp.replaces and values["verdict"] != "ERROR":  # refused unread, read now
                _drop_error(conn, sid, insp.replaces)
            iid = self._insert_file(conn, values)
            if iid is None and values["verdict"] != "ERROR":  # an ERROR of its content before?
                if _drop_error(conn, sid, values["image_sha256"]):
                    iid = self._insert_file(conn, values)
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

    @staticmethod
    def _insert_file(conn: Connection, values: dict[str, Any]) -> int | None:
        """Insert a file's record; None when the station has one of its content already."""
        iid: int | None = insert_ignore(
            conn,
            INSP,
            values,
            ["station_id", "image_sha256"],
            returning=INSP.c.id,
            where=CONTENT_KEY,
        )
        return iid

    def _station_id(self, conn: Connection, insp: Inspection, chash: str) -> int:
        want = (clean_text(insp.plugin or "", 128), clean_text(insp.recipe or "", 128), chash)
        cached = self._stations.get(insp.station)
        if cached is not None and cached[1:] == want:
            return cached[0]
        name = clean_text(insp.station, 128)
        insert_ignore(
            conn,
            STATION,
            dict(name=name, plugin=want[0], recipe=want[1], config_hash=chash, created_at=utcnow()),
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
        station_id: int = row.id
        self._pending.stations[insp.station] = (station_id, *want)
        return station_id

    def _model_id(self, conn: Connection, insp: Inspection, card: dict[str, Any] | None) -> int:
        """Get-or-create the model row; its card (given, or read from ``insp.model_card``) is
        stored with it, also onto a row created earlier without one."""
        sha = insp.model_sha256
        if sha in self._models:
            return self._models[sha]
        if card is None:
            card = read_card(insp.model_card, sha)
        values = model_values(sha, insp.plugin or "", insp.recipe or "", card_version(card), card)
        insert_ignore(conn, MODEL, values, ["sha256"])
        row = conn.execute(sa.select(MODEL.c.id, MODEL.c.card).where(MODEL.c.sha256 == sha)).one()
        if row.card is None and card is not None:
            conn.execute(
                sa.update(MODEL)
                .where(MODEL.c.id == row.id)
                .values(card=values["card"], version=values["version"])
            )
        model_id: int = row.id
        self._pending.models[sha] = model_id
        return model_id

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
            values = model_values(sha256, plugin, recipe, version, card)
            insert_ignore(conn, MODEL, values, ["sha256"])
            mid: int = conn.execute(
                sa.select(MODEL.c.id).where(MODEL.c.sha256 == sha256)
            ).scalar_one()
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


def _drop_error(conn: Connection, station_id: int, sha256: str) -> bool:
    """Delete the station's ERROR record of the file keyed ``sha256`` (an ERROR has no regions
    and no review); whether there was one. The verdict that replaces it is inserted as a new
    row, so ids keep rising in arrival order (the review queue polls by id)."""
    key = (INSP.c.station_id == station_id) & (INSP.c.image_sha256 == sha256) & _ERROR_ROW
    return bool(conn.execute(sa.delete(INSP).where(key)).rowcount)
