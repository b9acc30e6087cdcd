"""Rendering a report dict (from :func:`inspect_db.report_query.build_report`) for a terminal
or CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from inspect_core.text import markup_safe, rich_text
from inspect_core.types import VERDICTS
from inspect_db.errors import RecordsError

VERDICT_STYLE = {"PASS": "green", "REVIEW": "yellow", "FAIL": "red", "ERROR": "magenta"}


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def render_terminal(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the report as rich tables. Recorded text (sources, station, class names...) is
    printed literally: never read as markup, control characters as visible escapes."""
    con = console or Console()
    f = report["filters"]
    scope = ", ".join(f"{k}={v}" for k, v in f.items() if v) or "everything"
    con.print(
        f"[bold]Inspection report[/bold] {markup_safe(report['database'])}  ({markup_safe(scope)})"
    )
    con.print(f"{report['total']:,} inspections, yield {pct(report['yield'])}")
    for table in terminal_tables(report):
        con.print(table)


def count_cells(row: dict[str, Any]) -> list[str]:
    """A station's or a time bucket's total, its count of each verdict and its yield."""
    return [f"{row['total']:,}", *(f"{row[v]:,}" for v in VERDICTS), pct(row["yield"])]


def terminal_tables(report: dict[str, Any]) -> list[Table]:
    """The report's sections as rich tables (verdicts, stations, Pareto, worst, latency,
    timeline, operator review)."""
    return [
        _verdicts(report),
        _stations(report["stations"]),
        _pareto(report["pareto"]),
        _worst(report["worst"]),
        _latency(report),
        _timeline(report["timeline"]),
        *review_tables(report.get("review")),
    ]


# the outcome columns of the review figures: (key, heading)
OUTCOMES = (
    ("reviewed", "reviewed"),
    ("fail_confirmed", "FAIL confirmed"),
    ("fail_overturned", "FAIL->PASS"),
    ("review_to_pass", "REVIEW->PASS"),
    ("review_to_fail", "REVIEW->FAIL"),
)
# the region columns of the per-class agreement: (key, heading)
REGION_LABELS = (
    ("regions", "regions"),
    ("confirmed", "confirmed"),
    ("reclassed", "other class"),
    ("not_defect", "not a defect"),
    ("unsure", "unsure"),
)


def review_tables(review: dict[str, Any] | None) -> list[Table]:
    """The review figures: the queue always; per station, class and day where decided."""
    if not review:
        return []
    q = review["queue"]
    t = _table("Operator review", ("model verdict", "reviewed", "pending"), ("model verdict",))
    for v, c in q.items():
        t.add_row(rich_text(v, VERDICT_STYLE.get(v, "")), f"{c['reviewed']:,}", f"{c['pending']:,}")
    out = [t]
    for title, key, first, cols in (
        ("Model and operator per station", "stations", "station", OUTCOMES),
        ("Model and operator per class (regions)", "classes", "class", REGION_LABELS),
        ("Overturned verdicts per day (UTC)", "days", "day", OUTCOMES),
    ):
        rows = review[key]
        if not rows:
            continue
        heads = (first, *(h for _, h in cols), *(("agreement",) if key != "days" else ()))
        t = _table(title, heads, (first,))
        for r in rows:
            cells = [f"{r[k]:,}" for k, _ in cols]
            agree = [pct(r["agreement"])] if key != "days" else []
            t.add_row(rich_text(r[first]), *cells, *agree)
        out.append(t)
    return out


def _table(title: str, columns: Iterable[str], left: Iterable[str] = ()) -> Table:
    """A table of ``columns``: those named in ``left`` left-aligned, the others (numbers)
    right-aligned."""
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c in left else "right")
    return t


def _verdicts(report: dict[str, Any]) -> Table:
    t = Table(title="Verdicts")
    for v in VERDICTS:
        t.add_column(v, justify="right", style=VERDICT_STYLE[v])
    t.add_column("yield", justify="right")
    t.add_row(*(f"{report['verdicts'][v]:,}" for v in VERDICTS), pct(report["yield"]))
    return t


def _stations(rows: list[dict[str, Any]]) -> Table:
    names = ("station", "plugin", "recipe")
    t = _table("Yield per station", (*names, "total", *VERDICTS, "yield"), names)
    for r in rows:
        t.add_row(*(rich_text(r[k]) for k in names), *count_cells(r))
    return t


def _pareto(rows: list[dict[str, Any]]) -> Table:
    t = _table(
        "Defect Pareto by class", ("class", "regions", "share", "cumulative", "area px"), ("class",)
    )
    for r in rows:
        t.add_row(
            rich_text(r["class"]),
            f"{r['regions']:,}",
            pct(r["share"]),
            pct(r["cumulative"]),
            f"{r['area_px']:,}",
        )
    return t


def _worst(rows: list[dict[str, Any]]) -> Table:
    text = ("verdict", "station", "inspected", "source")
    t = _table("Worst images (largest defect area)", ("area px", "regions", *text), text)
    for r in rows:
        t.add_row(
            f"{r['defect_area_px']:,}",
            str(r["n_regions"]),
            rich_text(r["verdict"], VERDICT_STYLE.get(r["verdict"], "")),
            rich_text(r["station"]),
            rich_text(r["inspected_at"]),
            rich_text(r["source"]),
        )
    return t


# the rows of the time-per-image table: (report key, label); inspection (on the image itself)
# + queue wait (behind other images) = latency (taken up to recorded), where both are recorded
TIMES = (
    ("latency_ms", "latency"),
    ("inspect_ms", "inspection"),
    ("queue_ms", "queue wait"),
)
CAPTION = "latency = inspection + queue wait (behind other images), where recorded"


def _latency(report: dict[str, Any]) -> Table:
    """The latency, and its two parts where recorded (records before revision 0006 and
    ``inspect predict`` runs without a station count in the latency only)."""
    t = _table("Time per image (ms)", ("", "count", "p50", "p95", "mean", "max"), ("",))
    t.caption = CAPTION
    for key, label in TIMES:
        lat = report.get(key)
        if lat is None:
            continue
        t.add_row(
            label,
            f"{lat['count']:,}",
            *(num(lat[k]) for k in ("p50", "p95", "mean", "max")),
        )
    return t


def _timeline(tl: dict[str, Any]) -> Table:
    t = _table(
        f"Inspections per {tl['bucket']}",
        ("start (UTC)", "total", *VERDICTS, "yield"),
        ("start (UTC)",),
    )
    for r in tl["rows"]:
        t.add_row(r["start"], *count_cells(r))
    return t


def cannot_write(path: str | Path, e: OSError) -> RecordsError:
    return RecordsError(
        f"{path}: cannot write it ({e.strerror or e}); check that the folder "
        "exists and is writable, or give another file name"
    )


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run (OWASP, CSV injection): text from the records that
    starts with ``= + - @``, tab or carriage return gets a ``'`` in front, and so does text
    that starts with ``'`` (taking one leading ``'`` off any cell gives the recorded text
    back). Numbers stay numbers, negative ones included."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(
    path: str | Path, fields: Iterable[str], rows: Iterable[dict[str, Any]], bom: bool = False
) -> int:
    """Write ``rows`` under a header of ``fields``, every cell quoted and text neutralised by
    :func:`csv_cell`; returns how many rows. ``-`` is stdout. ``bom``: a file (not stdout)
    starts with a UTF-8 byte order mark, for a person opening it in Excel."""
    import sys

    n = 0
    try:
        # without a byte order mark Excel on Windows reads UTF-8 as ANSI (umlauts garbled)
        enc = "utf-8-sig" if bom else "utf-8"
        fh = sys.stdout if str(path) == "-" else open(path, "w", newline="", encoding=enc)
    except OSError as e:
        raise cannot_write(path, e) from e
    try:
        writer = csv.DictWriter(fh, fieldnames=list(fields), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
            n += 1
    finally:
        if fh is not sys.stdout:
            fh.close()
    return n
