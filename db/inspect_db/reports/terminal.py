"""The report in a terminal: rich tables of :func:`inspect_db.reports.layout.report_tables`.
Recorded text (sources, station, class names...) is printed literally: never read as markup,
control characters as visible escapes.

A table with a ``name`` column (model versions) is fitted to the console's width: every
other column gets the width its cells and the longest word of its heading need (a number is
never cut or wrapped), and the names get the rest, shortened in their middle and never after
their last ``@`` (``steel-pl…ate@v12``).
"""

from __future__ import annotations

import dataclasses
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inspect_core.text import markup_safe, rich_text, terminal_text
from inspect_db.reports.layout import ReportTable, pct, report_tables
from inspect_db.reports.model import Report

VERDICT_STYLE = {"PASS": "green", "REVIEW": "yellow", "FAIL": "red", "ERROR": "magenta"}
NAME_MIN = 12  # a shortened name keeps at least this many cells
ELLIPSIS = "…"


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
    """``t`` as a rich table: text columns left-aligned, numbers right, verdicts coloured; a
    table with a ``name`` column fitted to ``width`` cells (see the module docstring)."""
    widths: list[int | None] = [None] * len(t.columns)
    least = None
    if width is not None and any(c.kind == "name" for c in t.columns):
        t, widths = fit(t, width)
        least = min(width, cell_len(t.caption))  # the caption on one line where it fits
    table = Table(title=t.title, caption=t.caption or None, min_width=least)
    for c, w in zip(t.columns, widths):
        table.add_column(
            c.title,
            justify="left" if c.left else "right",
            style=VERDICT_STYLE.get(c.verdict or "", ""),
            width=w,
            # a fitted table in a console narrower still: wrapped, never cut
            overflow="ellipsis" if w is None else "fold",
        )
    for row in t.rows:
        table.add_row(*(_cell(c.kind, v) for c, v in zip(t.columns, row)))
    return table


def fit(t: ReportTable, width: int) -> tuple[ReportTable, list[int | None]]:
    """``t`` with its names shortened so that it fits ``width`` cells, and the width of each
    column (a rich table takes 3 cells a column and one more for its borders and padding):
    headings on one line where everything fits so, else wrapped at their spaces."""
    cells = [[terminal_text(row[i]) for row in t.rows] for i in range(len(t.columns))]
    whole = [_need(c.title, col) for c, col in zip(t.columns, cells)]
    if sum(whole) + 3 * len(t.columns) + 1 <= width:
        return t, list(whole)
    need = [_need(c.title.split(), col) for c, col in zip(t.columns, cells)]
    names = [i for i, c in enumerate(t.columns) if c.kind == "name"]
    fixed = sum(n for i, n in enumerate(need) if i not in names)
    room = (width - 3 * len(t.columns) - 1 - fixed) // len(names)
    for i in names:
        need[i] = min(need[i], max(room, NAME_MIN))
        cells[i] = [shorten(v, need[i]) for v in cells[i]]
    rows = tuple(zip(*cells)) if t.rows else ()
    widths: list[int | None] = list(need)
    return dataclasses.replace(t, rows=rows), widths


def _need(heading: str | list[str], cells: list[str]) -> int:
    """The cells a column needs: its widest cell, and its heading (or its longest word)."""
    words = [heading] if isinstance(heading, str) else heading
    return max(0, *(cell_len(v) for v in cells), *(cell_len(w) for w in words))


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle of what precedes its last ``@``
    (the tag after it is kept whole, even where it alone is wider)."""
    if cell_len(text) <= width:
        return text
    at = text.rfind("@")
    head, tag = (text[:at], text[at:]) if at > 0 else (text, "")
    keep = width - cell_len(tag) - cell_len(ELLIPSIS)
    if keep <= 0:
        return ELLIPSIS + tag
    front = _take(head, (keep + 1) // 2)
    back = _take(head[::-1], keep - cell_len(front))[::-1]
    return front + ELLIPSIS + back + tag


def _take(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits ``cells`` cells."""
    out, used = [], 0
    for ch in text:
        used += cell_len(ch)
        if used > cells:
            break
        out.append(ch)
    return "".join(out)


def _cell(kind: str, value: str) -> Text | str:
    if kind == "verdict":
        return rich_text(value, VERDICT_STYLE.get(value, ""))
    return rich_text(value) if kind in ("text", "name") else value
