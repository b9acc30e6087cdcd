"""The report's tables, laid out once for every renderer: the terminal, CSV and HTML show the
same sections, titles, columns and formatted cells (:func:`report_tables`).

A cell is text as it is shown; what is recorded (station, source, class names) stays plain text
here, and each renderer makes it safe for its medium (rich: never markup; HTML: escaped by the
template; CSV: no formula).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inspect_core.types import VERDICTS
from inspect_db.reports.model import (
    Counts,
    InputHealth,
    ModelCorrections,
    ModelVersion,
    Outcomes,
    Report,
    ReviewFigures,
    Timing,
)

Kind = Literal["text", "number", "verdict", "name"]


@dataclass(frozen=True)
class Column:
    """A column: ``text``, ``name`` and ``verdict`` columns are left-aligned, numbers right; a
    verdict cell is shown in its verdict's colour, and so is a column whose ``verdict`` is set.
    A ``name`` is text a narrow renderer may shorten in its middle, never after its last ``@``
    (a model version's label: ``steel-plate@v12``)."""

    title: str
    kind: Kind = "number"
    verdict: str | None = None

    @property
    def left(self) -> bool:
        return self.kind != "number"


@dataclass(frozen=True)
class ReportTable:
    """One section: ``key`` names it for a renderer (``verdicts``, ``stations``, ``pareto``,
    ``worst``, ``times``, ``versions``, ``version_times``, ``timeline``, ``review``,
    ``review_stations``, ``review_classes``, ``review_days``, ``corrections``,
    ``correction_reasons``, ``input_health``, ``input_drift``)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def count_cells(row: Counts) -> tuple[str, ...]:
    """A station's or a time bucket's total, its count of each verdict and its yield."""
    return (f"{row.total:,}", *(f"{row.of(v):,}" for v in VERDICTS), pct(row.yield_))


COUNT_COLUMNS = (Column("total"), *(Column(v, verdict=v) for v in VERDICTS), Column("yield"))
# the rows of the time-per-image table: (report section, label); inspection (on the image
# itself) + queue wait (behind other images) = latency (taken up to recorded), where both are
TIMES = (("latency_ms", "latency"), ("inspect_ms", "inspection"), ("queue_ms", "queue wait"))
CAPTION = "latency = inspection + queue wait (behind other images), where recorded"
# the outcome columns of the review figures: (field, heading)
OUTCOMES = (
    ("reviewed", "reviewed"),
    ("fail_confirmed", "FAIL confirmed"),
    ("fail_overturned", "FAIL->PASS"),
    ("review_to_pass", "REVIEW->PASS"),
    ("review_to_fail", "REVIEW->FAIL"),
)
# the region columns of the per-class agreement: (field, heading)
REGION_LABELS = (
    ("regions", "regions"),
    ("confirmed", "confirmed"),
    ("reclassed", "other class"),
    ("not_defect", "not a defect"),
    ("unsure", "unsure"),
)


def report_tables(report: Report) -> list[ReportTable]:
    """The report's sections as tables, in the order every renderer shows them."""
    return [
        _verdicts(report),
        _stations(report),
        _pareto(report),
        _worst(report),
        _times(report),
        *version_tables(report.model_versions),
        _timeline(report),
        *review_tables(report.review),
        *health_tables(report.input_health),
    ]


def _verdicts(r: Report) -> ReportTable:
    cells = (*(f"{r.verdicts[v]:,}" for v in VERDICTS), f"{r.total:,}", pct(r.yield_))
    cols = (*(Column(v, verdict=v) for v in VERDICTS), Column("total"), Column("yield"))
    return ReportTable("verdicts", "Verdicts", cols, (cells,))


def _stations(r: Report) -> ReportTable:
    names = tuple(Column(c, "text") for c in ("station", "plugin", "recipe"))
    rows = tuple((s.station, s.plugin, s.recipe, *count_cells(s)) for s in r.stations)
    return ReportTable("stations", "Yield per station", names + COUNT_COLUMNS, rows)


def _pareto(r: Report) -> ReportTable:
    cols = (Column("class", "text"), *map(Column, ("regions", "share", "cumulative", "area px")))
    rows = tuple(
        (p.class_name, f"{p.regions:,}", pct(p.share), pct(p.cumulative), f"{p.area_px:,}")
        for p in r.pareto
    )
    return ReportTable("pareto", "Defect Pareto by class", cols, rows)


def _worst(r: Report) -> ReportTable:
    cols = (
        Column("source", "text"),
        Column("station", "text"),
        Column("verdict", "verdict"),
        Column("inspected (UTC)", "text"),
        Column("regions"),
        Column("area px"),
    )
    rows = tuple(
        (
            w.source,
            w.station,
            w.verdict,
            w.inspected_at or "",
            f"{w.n_regions:,}",
            f"{w.defect_area_px:,}",
        )
        for w in r.worst
    )
    return ReportTable("worst", "Worst images (largest defect area)", cols, rows)


def _times(r: Report) -> ReportTable:
    """The latency and its two parts, inspection and queue wait, where recorded (records
    before revision 0006 and ``inspect predict`` runs without a station: latency only)."""
    cols = (Column("", "text"), *map(Column, ("count", "p50", "p95", "mean", "max")))
    rows = []
    for key, label in TIMES:
        t: Timing = getattr(r, key)
        if t.count:
            rows.append((label, f"{t.count:,}", num(t.p50), num(t.p95), num(t.mean), num(t.max)))
    return ReportTable("times", "Time per image (ms)", cols, tuple(rows), CAPTION if rows else "")


#: what the table per model version shows, in one line
VERSIONS = "verdicts: share of the version's images; sha256: its first 12 hex digits"
SHORT_SHA = 12


def version_tables(rows: list[ModelVersion]) -> list[ReportTable]:
    """Verdicts and latency per model version (``recipe@label`` where registered), where
    anything was inspected."""
    if not rows:
        return []
    name = Column("model version", "name")
    verdicts = ReportTable(
        "versions",
        "Verdicts by model version",
        (
            name,
            Column("sha256", "text"),
            Column("images"),
            *(Column(v, verdict=v) for v in VERDICTS),
        ),
        tuple(
            (
                r.model,
                (r.sha256 or "-")[:SHORT_SHA],
                f"{r.images:,}",
                *(pct(r.shares.get(v)) for v in VERDICTS),
            )
            for r in rows
        ),
        VERSIONS,
    )
    times = ReportTable(
        "version_times",
        "Latency by model version (ms)",
        (name, Column("images"), Column("mean"), Column("max")),
        tuple(
            (r.model, f"{r.images:,}", num(r.latency_ms.mean), num(r.latency_ms.max)) for r in rows
        ),
    )
    return [verdicts, times]


def _timeline(r: Report) -> ReportTable:
    cols = (Column("start (UTC)", "text"), *COUNT_COLUMNS)
    rows = tuple((b.start, *count_cells(b)) for b in r.timeline.rows)
    return ReportTable("timeline", f"Inspections per {r.timeline.bucket}", cols, rows)


def _outcome_cells(o: Outcomes) -> tuple[str, ...]:
    return tuple(f"{getattr(o, k):,}" for k, _ in OUTCOMES)


def review_tables(review: ReviewFigures) -> list[ReportTable]:
    """The review figures: the queue always; per station, class and day where decided."""
    queue = ReportTable(
        "review",
        "Operator review",
        (Column("model verdict", "verdict"), Column("reviewed"), Column("pending")),
        tuple((v, f"{c.reviewed:,}", f"{c.pending:,}") for v, c in review.queue.items()),
    )
    heads = tuple(Column(h) for _, h in OUTCOMES)
    agree = (Column("agreement"),)
    per_station = ReportTable(
        "review_stations",
        "Model and operator per station",
        (Column("station", "text"), *heads, *agree),
        tuple((s.station, *_outcome_cells(s), pct(s.agreement)) for s in review.stations),
    )
    per_class = ReportTable(
        "review_classes",
        "Model and operator per class (regions)",
        (Column("class", "text"), *(Column(h) for _, h in REGION_LABELS), *agree),
        tuple(
            (c.class_name, *(f"{getattr(c, k):,}" for k, _ in REGION_LABELS), pct(c.agreement))
            for c in review.classes
        ),
    )
    per_day = ReportTable(
        "review_days",
        "Overturned verdicts per day (UTC)",
        (Column("day", "text"), *heads),
        tuple((d.day, *_outcome_cells(d)) for d in review.days),
    )
    more = (per_station, per_class, per_day)
    return [queue, *(t for t in more if t.rows), *correction_tables(review.corrections)]


#: what counts as corrected, in one line (:mod:`inspect_db.reports.corrections` defines it)
CORRECTED = "corrected: verdict changed (any decided REVIEW), region relabelled, defect drawn"
REASONS = (
    ("verdict", "verdict changed"),
    ("regions", "region relabelled"),
    ("drawn", "defect drawn"),
)


def correction_tables(rows: list[ModelCorrections]) -> list[ReportTable]:
    """Corrections per model version and why, once anything was reviewed."""
    if not any(r.reviewed for r in rows):
        return []
    name = Column("model version", "name")
    heads = ("inspected", "reviewed", "corrected", "of inspected", "of reviewed")
    share = ReportTable(
        "corrections",
        "Corrections per model version",
        (name, *map(Column, heads)),
        tuple(
            (
                r.model,
                f"{r.inspections:,}",
                f"{r.reviewed:,}",
                f"{r.corrected:,}",
                pct(r.share_of_inspections),
                pct(r.share_of_reviewed),
            )
            for r in rows
        ),
        CORRECTED,
    )
    why = ReportTable(
        "correction_reasons",
        "Why corrected (per model version)",
        (name, Column("corrected"), *(Column(h) for _, h in REASONS)),
        tuple(
            (r.model, f"{r.corrected:,}", *(f"{getattr(r.reasons, k):,}" for k, _ in REASONS))
            for r in rows
        ),
        "an inspection may be corrected for several reasons",
    )
    return [share, why]


#: what the input-health tables show, one line each
FLAGGED = "quality: a quality limit broken; unfamiliar: unlike the training images"
DRIFT = "training images: familiarity median {m:.2f}, p10 {p:.2f}; change: vs first day"


def _counted_share(n: int, share: float | None) -> str:
    return f"{n:,} ({pct(share)})"


def _against(value: float | None, change: str) -> str:
    return "-" if value is None else f"{value:.3g} ({change})"


def health_tables(h: InputHealth | None) -> list[ReportTable]:
    """Input health per station and day, and the drift of its figures, where measured."""
    if h is None:
        return []
    where = (Column("station", "name"), Column("day (UTC)", "text"))
    flagged = ReportTable(
        "input_health",
        "Input health per station and day",
        (*where, Column("measured"), Column("quality"), Column("unfamiliar")),
        tuple(
            (
                d.station,
                d.day,
                f"{d.measured:,}",
                _counted_share(d.quality, d.quality_share),
                _counted_share(d.unfamiliar, d.unfamiliar_share),
            )
            for d in h.days
        ),
        FLAGGED,
    )
    drift = ReportTable(
        "input_drift",
        "Familiarity and image figures per station and day",
        (*where, *map(Column, ("median", "p10", "focus (change)", "level (change)"))),
        tuple(
            (
                d.station,
                d.day,
                num(d.familiarity.median, 2),
                num(d.familiarity.p10, 2),
                _against(d.focus_mean, "-" if d.focus_change is None else f"{d.focus_change:+.0%}"),
                _against(d.level_mean, "-" if d.level_change is None else f"{d.level_change:+.1f}"),
            )
            for d in h.days
        ),
        DRIFT.format(m=h.reference_median, p=h.reference_p10),
    )
    return [flagged, drift]
