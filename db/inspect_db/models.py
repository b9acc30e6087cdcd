"""SQLAlchemy 2.0 models of the inspection records.

Four tables of records: ``station`` and ``model`` (get-or-create by name / by sha256),
``inspection`` (one row per inspected image: unique per station and image sha256 for files, per
station and capture id for triggered captures, so a retried write never duplicates and two parts
whose frames are identical are still two records) and ``region`` (the connected components that
the rules judged). Four of operator review: ``review_user``, ``review`` (one row per decision,
append-only) and ``review_region`` (the label of each region in a decision), revision 0004, and
``review_mark`` (the regions an operator drew in a decision), revision 0007.

Times are stored as naive UTC datetimes. A few columns are denormalised for the report's
aggregate queries: ``inspection.inspected_hour`` (hours since 1970, so counts per hour and day
are a GROUP BY over an index in order, with no sort), ``inspection.n_regions`` /
``inspection.defect_area_px`` (the sum over the image's regions, for "worst images" without a
join), and ``region.station_id`` / ``region.inspected_at`` / ``region.verdict`` /
``region.plugin`` / ``region.recipe`` (so the defect Pareto over a time range, station,
verdict, plugin or recipe reads one covering index, never a join).
The Alembic migrations in ``db/inspect_db/migrations`` create exactly this schema; a test
checks that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from inspect_core.types import VERDICTS

#: a 64-bit id that still auto-increments on SQLite (where only INTEGER PRIMARY KEY does)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now as a naive UTC datetime (how times are stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc(ts: float | None) -> datetime | None:
    """Unix seconds -> naive UTC datetime (how times are stored)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Station(Base):
    """A place that inspects: ``inspect predict`` records as station ``cli`` by default."""

    __tablename__ = "station"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    plugin: Mapped[str] = mapped_column(sa.String(128), default="")
    recipe: Mapped[str] = mapped_column(sa.String(128), default="")
    config_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)

    inspections: Mapped[list[InspectionRecord]] = relationship(back_populates="station")


class Model(Base):
    """An ONNX model, identified by the sha256 of its file. A registered version of a recipe's
    model (``inspect model add``, revision 0005) also has its ``path`` (in the registry's
    store), ``origin`` (shipped, trained, imported), who added it and a note; ``version`` is
    its label (v1, v2, ...)."""

    __tablename__ = "model"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    plugin: Mapped[str] = mapped_column(sa.String(128), default="")
    recipe: Mapped[str] = mapped_column(sa.String(128), default="")
    version: Mapped[str | None] = mapped_column(sa.String(64))
    card: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    path: Mapped[str | None] = mapped_column(sa.Text)
    origin: Mapped[str | None] = mapped_column(sa.String(16))
    added_by: Mapped[str | None] = mapped_column(sa.String(128))
    note: Mapped[str | None] = mapped_column(sa.Text)


class ModelActivation(Base):
    """One promote or rollback of a recipe's model (append-only: the registry's history). The
    active version for a station is its latest row, else the latest for all stations (``station``
    NULL), else the recipe's own file (``model_id`` NULL); ``inherit`` sends one station back to
    the all-stations choice."""

    __tablename__ = "model_activation"
    __table_args__ = (sa.Index("ix_model_activation_scope", "plugin", "recipe", "station", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plugin: Mapped[str] = mapped_column(sa.String(128))
    recipe: Mapped[str] = mapped_column(sa.String(128))
    station: Mapped[str | None] = mapped_column(sa.String(128))
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model.id"))
    action: Mapped[str] = mapped_column(sa.String(16))
    inherit: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    by: Mapped[str] = mapped_column(sa.String(128))
    at: Mapped[datetime] = mapped_column(sa.DateTime())
    note: Mapped[str | None] = mapped_column(sa.Text)


#: rows keyed by their image's content (files); triggered captures are keyed by capture_id
CONTENT_KEY = sa.text("capture_id IS NULL")


# the columns after the leading one of the timing indexes (a report's filters need nothing else)
COVER_TAIL = ("inspected_at", "station_id", "verdict", "plugin", "recipe")


class InspectionRecord(Base):
    """One inspected image: its verdict, what fired, what was in force, how long it took."""

    __tablename__ = "inspection"
    __table_args__ = (
        # the key of a record (revision 0003): a file's content once per station, a triggered
        # capture once per capture id (its pixels may equal an earlier frame's)
        sa.Index(
            "uq_inspection_content",
            "station_id",
            "image_sha256",
            unique=True,
            sqlite_where=CONTENT_KEY,
            postgresql_where=CONTENT_KEY,
        ),
        sa.UniqueConstraint("station_id", "capture_id"),
        sa.CheckConstraint(f"verdict IN ({', '.join(map(repr, VERDICTS))})", name="verdict"),
        sa.Index("ix_inspection_time", "inspected_at"),
        # covers the counts per (hour, station, verdict), streamed in index order: no sort
        sa.Index(
            "ix_inspection_hour_cover",
            "inspected_hour",
            "station_id",
            "verdict",
            "inspected_at",
            "latency_ms",
            "plugin",
            "recipe",
        ),
        # covers the latency percentiles: ORDER BY latency_ms LIMIT 1 OFFSET k walks it
        sa.Index(
            "ix_inspection_latency_cover",
            "latency_ms",
            "inspected_at",
            "station_id",
            "verdict",
            "plugin",
            "recipe",
        ),
        # the same for the inspection time and the queue wait (revision 0006)
        *(sa.Index(f"ix_inspection_{c}_cover", c, *COVER_TAIL) for c in ("inspect_ms", "queue_ms")),
        sa.Index("ix_inspection_station_time", "station_id", "inspected_at"),
        sa.Index("ix_inspection_defect_area", "defect_area_px"),  # worst images
        sa.Index("ix_inspection_verdict_time", "verdict", "inspected_at"),  # FAIL/REVIEW gallery
        sa.Index("ix_inspection_plugin_recipe_time", "plugin", "recipe", "inspected_at"),
        sa.Index("ix_inspection_part_id", "part_id"),  # traceability look-ups
        sa.Index("ix_inspection_lot", "lot"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(sa.ForeignKey("station.id"))
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model.id"))
    plugin: Mapped[str] = mapped_column(sa.String(128), default="")
    recipe: Mapped[str] = mapped_column(sa.String(128), default="")
    source: Mapped[str] = mapped_column(sa.Text)
    image_sha256: Mapped[str] = mapped_column(sa.String(64))
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    captured_at: Mapped[datetime | None] = mapped_column(sa.DateTime())
    inspected_at: Mapped[datetime] = mapped_column(sa.DateTime())
    inspected_hour: Mapped[int] = mapped_column(sa.Integer)  # hours since 1970 (UTC)
    latency_ms: Mapped[float] = mapped_column(sa.Float)  # from taken up to recorded
    # latency_ms split (revision 0006; NULL before, and where not measured): the time spent on
    # the image itself, and the time it waited for the station's threads
    inspect_ms: Mapped[float | None] = mapped_column(sa.Float)
    queue_ms: Mapped[float | None] = mapped_column(sa.Float)
    verdict: Mapped[str] = mapped_column(sa.String(6))
    fired: Mapped[list[Any]] = mapped_column(sa.JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    part_id: Mapped[str | None] = mapped_column(sa.String(128))
    lot: Mapped[str | None] = mapped_column(sa.String(128))
    error: Mapped[str | None] = mapped_column(sa.Text)
    overlay_path: Mapped[str | None] = mapped_column(sa.Text)
    capture_id: Mapped[str | None] = mapped_column(sa.String(128))  # None: keyed by content
    n_regions: Mapped[int] = mapped_column(sa.Integer, default=0)
    defect_area_px: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # the image's health (revision 0008; NULL before, and where not measured): the quality
    # figures of the frame the model saw, its familiarity, and ok / quality / unfamiliar
    focus: Mapped[float | None] = mapped_column(sa.Float)
    mean_level: Mapped[float | None] = mapped_column(sa.Float)
    highlights: Mapped[float | None] = mapped_column(sa.Float)
    clipped_dark: Mapped[float | None] = mapped_column(sa.Float)
    clipped_bright: Mapped[float | None] = mapped_column(sa.Float)
    contrast: Mapped[float | None] = mapped_column(sa.Float)
    familiarity: Mapped[float | None] = mapped_column(sa.Float)
    health_flag: Mapped[str | None] = mapped_column(sa.String(12))

    station: Mapped[Station] = relationship(back_populates="inspections")
    model: Mapped[Model | None] = relationship()
    regions: Mapped[list[RegionRecord]] = relationship(
        back_populates="inspection", cascade="all, delete-orphan"
    )


class RegionRecord(Base):
    """One connected component of one class in an inspection's predicted mask."""

    __tablename__ = "region"
    __table_args__ = (
        # an inspection's regions (region CSV export, deleting them with their inspection)
        sa.Index("ix_region_inspection", "inspection_id", "class_name", "area_px"),
        # covers the defect Pareto: streams GROUP BY class_name, filters time, station,
        # verdict, plugin and recipe in the index (revision 0002 added plugin and recipe)
        sa.Index(
            "ix_region_pareto",
            "class_name",
            "inspected_at",
            "station_id",
            "verdict",
            "plugin",
            "recipe",
            "area_px",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection.id", ondelete="CASCADE"))
    station_id: Mapped[int] = mapped_column(sa.Integer)  # copy of inspection.station_id
    inspected_at: Mapped[datetime] = mapped_column(sa.DateTime())  # copy of inspection's
    verdict: Mapped[str] = mapped_column(sa.String(6))  # copy of inspection's
    plugin: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")  # copy
    recipe: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")  # copy
    class_id: Mapped[int] = mapped_column(sa.Integer)
    class_name: Mapped[str] = mapped_column(sa.String(64))
    bbox_x: Mapped[int] = mapped_column(sa.Integer)
    bbox_y: Mapped[int] = mapped_column(sa.Integer)
    bbox_w: Mapped[int] = mapped_column(sa.Integer)
    bbox_h: Mapped[int] = mapped_column(sa.Integer)
    area_px: Mapped[int] = mapped_column(sa.Integer)
    area_mm2: Mapped[float | None] = mapped_column(sa.Float)
    centroid_x: Mapped[float] = mapped_column(sa.Float)
    centroid_y: Mapped[float] = mapped_column(sa.Float)
    max_prob: Mapped[float] = mapped_column(sa.Float)
    mean_prob: Mapped[float] = mapped_column(sa.Float)
    polygon: Mapped[list[Any]] = mapped_column(sa.JSON)

    inspection: Mapped[InspectionRecord] = relationship(back_populates="regions")


def table_of(model: type[Base]) -> sa.Table:
    """The table of a mapped class, typed as a table (SQLAlchemy types ``__table__`` as any
    FROM clause)."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


#: the roles of a review user: operators decide, engineers also export
ROLES = ("operator", "engineer")
#: what an operator says of one region: its class (possibly corrected), no defect, or unsure
LABELS = ("defect", "not_defect", "unsure")
#: the verdicts an operator can decide
DECIDED = ("PASS", "FAIL")
#: the ``model_verdict`` of a ``review`` row that undoes the decision it supersedes (an undo is
#: a new row: the table is append-only). Its ``verdict`` repeats the undone one's (the column
#: takes PASS or FAIL only); it labels no region and draws nothing. While an item's latest row
#: is an undo, the item has no decision in force: it is pending again, and no report, export
#: or backtest counts it as reviewed. No model verdict is ever "UNDO"; only
#: ``inspect_review.storage.undo.record_undo`` writes it, and everything imports it from here.
UNDO = "UNDO"
#: what an operator draws: a closed polygon, or a brush stroke (a polyline with a width)
MARK_KINDS = ("polygon", "stroke")


class ReviewUser(Base):
    """Who may use the review page (revision 0004). Never deleted: decisions name their
    reviewer, so a user who leaves is disabled instead."""

    __tablename__ = "review_user"
    __table_args__ = (sa.CheckConstraint(f"role IN ({', '.join(map(repr, ROLES))})", name="role"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(256))  # argon2id, with its parameters
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime())


class Review(Base):
    """One operator's decision on one inspection (revision 0004). Append-only: a later
    decision on the same inspection is a new row that names the one it ``supersedes``; the
    inspection row (the model's verdict) is never edited. ``station_id``, ``inspected_at`` and
    ``model_verdict`` are copies of the inspection's, for the report's review figures."""

    __tablename__ = "review"
    __table_args__ = (
        sa.CheckConstraint(f"verdict IN ({', '.join(map(repr, DECIDED))})", name="verdict"),
        sa.Index("ix_review_inspection", "inspection_id", "id"),  # an item's latest decision
        sa.Index("ix_review_time", "inspected_at", "station_id"),  # report figures
        sa.Index("ix_review_decided", "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(sa.ForeignKey("inspection.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("review_user.id"))
    decided_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    verdict: Mapped[str] = mapped_column(sa.String(6))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    supersedes_id: Mapped[int | None] = mapped_column(sa.ForeignKey("review.id"))
    station_id: Mapped[int] = mapped_column(sa.Integer)  # copy of inspection.station_id
    inspected_at: Mapped[datetime] = mapped_column(sa.DateTime())  # copy of inspection's
    model_verdict: Mapped[str] = mapped_column(sa.String(6))  # copy of inspection.verdict

    labels: Mapped[list[ReviewRegion]] = relationship(
        back_populates="review", cascade="all, delete-orphan"
    )


class ReviewRegion(Base):
    """What one decision says of one region of its inspection: ``defect`` (of ``class_name``,
    the model's or the operator's correction), ``not_defect`` or ``unsure``."""

    __tablename__ = "review_region"
    __table_args__ = (
        sa.CheckConstraint(f"label IN ({', '.join(map(repr, LABELS))})", name="label"),
        sa.UniqueConstraint("review_id", "region_id"),
        sa.Index("ix_review_region_region", "region_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    review_id: Mapped[int] = mapped_column(sa.ForeignKey("review.id", ondelete="CASCADE"))
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("region.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(sa.String(12))
    class_id: Mapped[int | None] = mapped_column(sa.Integer)  # for a defect: its class
    class_name: Mapped[str | None] = mapped_column(sa.String(64))

    review: Mapped[Review] = relationship(back_populates="labels")


class ReviewMark(Base):
    """A region one decision drew (revision 0007): a closed ``polygon``, or a brush ``stroke``
    (a polyline ``width`` pixels wide). ``points`` is JSON text, ``[[x, y], ...]`` in the
    pixels of the recorded image (``inspection.width`` by ``height``), checked on the way in:
    inside the image, a bounded count, a bounded width. Labelled as a region is (``defect`` of
    ``class_name``, a recipe's class or a name the operator gave, ``not_defect`` or
    ``unsure``); ``replaces_region_id``: the region whose outline this one corrects, in this
    decision only (the region and the earlier decisions stay as recorded). Written with its
    decision and never edited: who drew it and when are its decision's ``user_id`` and
    ``decided_at``."""

    __tablename__ = "review_mark"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN ({', '.join(map(repr, MARK_KINDS))})", name="kind"),
        sa.CheckConstraint(f"label IN ({', '.join(map(repr, LABELS))})", name="label"),
        sa.UniqueConstraint("review_id", "number"),
        sa.Index("ix_review_mark_region", "replaces_region_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    review_id: Mapped[int] = mapped_column(sa.ForeignKey("review.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)  # 1, 2, ... within its decision
    kind: Mapped[str] = mapped_column(sa.String(8))
    points: Mapped[str] = mapped_column(sa.Text)  # JSON [[x, y], ...], image pixels
    width: Mapped[float | None] = mapped_column(sa.Float)  # a stroke's, image pixels
    label: Mapped[str] = mapped_column(sa.String(12))
    class_id: Mapped[int | None] = mapped_column(sa.Integer)  # the recipe's index, if its class
    class_name: Mapped[str | None] = mapped_column(sa.String(64))
    replaces_region_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("region.id", ondelete="CASCADE")
    )


TABLES = (
    "station",
    "model",
    "inspection",
    "region",
    "review_user",
    "review",
    "review_region",
    "model_activation",
    "review_mark",
)
