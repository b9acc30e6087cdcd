"""Rendering a report dict (from :func:`db.report_query.build_report`) for a terminal or CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from inspect_core.text import markup_safe, rich_text
from inspect_db.errors import RecordsError

VERDICT_STYLE = {"PASS": "green", "REVIEW": "yellow", "FAIL": "red", "ERROR": "magenta"}
VERDICTS = ("PASS", "REVIEW", "FAIL", "ERROR")


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


def terminal_tables(report: dict[str, Any]) -> list[Table]:
    """The report's sections as rich tables (verdicts, stations, Pareto, worst, latency,
    timeline)."""
    out = []
    t = Table(title="Verdicts")
    for v in VERDICTS:
        t.add_column(v, justify="right", style=VERDICT_STYLE[v])
    t.add_column("yield", justify="right")
    t.add_row(*(f"{report['verdicts'][v]:,}" for v in VERDICTS), pct(report["yield"]))
    out.append(t)

    t = Table(title="Yield per station")
    for c in ("station", "plugin", "recipe", "total", *VERDICTS, "yield"):
        t.add_column(c, justify="left" if c in ("station", "plugin", "recipe") else "right")
    for r in report["stations"]:
        t.add_row(
            rich_text(r["station"]),
            rich_text(r["plugin"]),
            rich_text(r["recipe"]),
            f"{r['total']:,}",
            *(f"{r[v]:,}" for v in VERDICTS),
            pct(r["yield"]),
        )
    out.append(t)

    t = Table(title="Defect Pareto by class")
    for c in ("class", "regions", "share", "cumulative", "area px"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for r in report["pareto"]:
        t.add_row(
            rich_text(r["class"]),
            f"{r['regions']:,}",
            pct(r["share"]),
            pct(r["cumulative"]),
            f"{r['area_px']:,}",
        )
    out.append(t)

    t = Table(title="Worst images (largest defect area)")
    for c in ("area px", "regions", "verdict", "station", "inspected", "source"):
        t.add_column(c, justify="right" if c in ("area px", "regions") else "left")
    for r in report["worst"]:
        t.add_row(
            f"{r['defect_area_px']:,}",
            str(r["n_regions"]),
            rich_text(r["verdict"], VERDICT_STYLE.get(r["verdict"], "")),
            rich_text(r["station"]),
            rich_text(r["inspected_at"]),
            rich_text(r["source"]),
        )
    out.append(t)

    lat = report["latency_ms"]
    t = Table(title="Latency (ms)")
    for c in ("count", "p50", "p95", "mean", "max"):
        t.add_column(c, justify="right")
    t.add_row(
        f"{lat['count']:,}", num(lat["p50"]), num(lat["p95"]), num(lat["mean"]), num(lat["max"])
    )
    out.append(t)

    tl = report["timeline"]
    t = Table(title=f"Inspections per {tl['bucket']}")
    for c in ("start (UTC)", "total", *VERDICTS, "yield"):
        t.add_column(c, justify="left" if c.startswith("start") else "right")
    for r in tl["rows"]:
        t.add_row(r["start"], f"{r['total']:,}", *(f"{r[v]:,}" for v in VERDICTS), pct(r["yield"]))
    out.append(t)
    return out


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


def write_csv(path: str | Path, fields: Iterable[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` under a header of ``fields``, every cell quoted and text neutralised by
    :func:`csv_cell`; returns how many rows. ``-`` is stdout."""
    import sys

    n = 0
    try:
        fh = sys.stdout if str(path) == "-" else open(path, "w", newline="", encoding="utf-8")
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
