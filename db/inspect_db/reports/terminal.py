"""The report in a terminal: rich tables of :func:`inspect_db.reports.layout.report_tables`.
Recorded text (sources, station, class names...) is printed literally: never read as markup,
control characters as visible escapes."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from inspect_core.text import markup_safe, rich_text
from inspect_db.reports.layout import ReportTable, pct, report_tables
from inspect_db.reports.model import Report

VERDICT_STYLE = {"PASS": "green", "REVIEW": "yellow", "FAIL": "red", "ERROR": "magenta"}


def render_terminal(report: Report, console: Console | None = None) -> None:
    """Print the report as rich tables."""
    con = console or Console()
    scope = report.filters.describe() or "everything"
    con.print(
        f"[bold]Inspection report[/bold] {markup_safe(report.database)}  ({markup_safe(scope)})"
    )
    con.print(f"{report.total:,} inspections, yield {pct(report.yield_)}")
    for table in report_tables(report):
        con.print(rich_table(table))


def write_terminal(report: Report, out: TextIO) -> None:
    """The ``terminal`` report format: :func:`render_terminal` onto ``out`` (colours where
    ``out`` is a terminal)."""
    render_terminal(report, Console(file=out))


def rich_table(t: ReportTable) -> Table:
    """``t`` as a rich table: text columns left-aligned, numbers right, verdicts coloured."""
    table = Table(title=t.title, caption=t.caption or None)
    for c in t.columns:
        table.add_column(
            c.title,
            justify="left" if c.left else "right",
            style=VERDICT_STYLE.get(c.verdict or "", ""),
        )
    for row in t.rows:
        table.add_row(*(_cell(c.kind, v) for c, v in zip(t.columns, row)))
    return table


def _cell(kind: str, value: str) -> Text | str:
    if kind == "verdict":
        return rich_text(value, VERDICT_STYLE.get(value, ""))
    return rich_text(value) if kind == "text" else value
