"""The report in a terminal: rich tables of :func:`inspect_db.reports.layout.report_tables`.
Recorded text (sources, station, class names...) is printed literally: never read as markup,
control characters as visible escapes.

Each table is fitted to the console's width (:mod:`inspect_db.reports.terminal_fit`):
numbers whole, headings wrapped at their spaces, long text wrapped (never cut: every
character of a station's name or a source's path stays on the screen).
"""

from __future__ import annotations

from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inspect_core.text import markup_safe
from inspect_db.reports.layout import ReportTable, pct, report_tables
from inspect_db.reports.model import Report
from inspect_db.reports.terminal_fit import FitColumn, fit_table

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
        con.print(rich_table(table, con.width))


def write_terminal(report: Report, out: TextIO) -> None:
    """The ``terminal`` report format: :func:`render_terminal` onto ``out`` (colours where
    ``out`` is a terminal)."""
    render_terminal(report, Console(file=out))


def rich_table(t: ReportTable, width: int | None = None) -> Table:
    """``t`` as a rich table fitted to ``width`` cells (None: as wide as it is): text
    columns left-aligned, numbers right, verdicts coloured, the caption on one line where it
    fits."""
    fitted = fit_table(t, width)
    least = min(width, cell_len(t.caption)) if width is not None and t.caption else None
    table = Table(
        title=t.title, caption=t.caption or None, min_width=least, show_lines=fitted.wrapped
    )
    for c in fitted.columns:
        table.add_column(
            Text(c.heading),
            justify="left" if c.left else "right",
            style=VERDICT_STYLE.get(c.verdict or "", ""),
            width=c.width,
            overflow="fold",  # in a console narrower still: wrapped, never cut
        )
    for row in fitted.rows:
        table.add_row(*(_cell(c, v) for c, v in zip(fitted.columns, row)))
    return table


def _cell(c: FitColumn, value: str) -> Text:
    """A cell already made safe (:func:`inspect_core.text.terminal_text`) as rich text."""
    return Text(value, style=VERDICT_STYLE.get(value, "") if c.kind == "verdict" else "")
