"""A report table fitted to a terminal's width, with nothing cut (:func:`fit_table`).

A table that fits as it is stays as it is. A wider one is laid out again:

* a number (or verdict) column keeps the width of its widest cell: a number is never wrapped;
* headings wrap at their spaces and after ``->`` (``FAIL->`` over ``PASS``);
* text columns (stations, sources, model versions, times) share the cells left over, each
  at least :data:`TEXT_FLOOR` where it needs that many, and their cells wrap: after ``-``,
  ``/``, ``_``, ``.``, ``:``, ``@`` or a space where they can, else folded at the width.
  Every character stays on the screen, so the lines of a cell read back as the whole value;
* adjacent text columns may be stacked into one (``station`` over ``plugin`` over ``recipe``
  in each row) where that takes fewer lines than side by side.

Recorded text is made safe first (:func:`inspect_core.text.terminal_text`: control characters
as visible escapes); the renderer must not escape it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.cells import cell_len

from inspect_core.text import terminal_text
from inspect_db.reports.layout import Column, Kind, ReportTable

TEXT_FLOOR = 8  # a text column keeps at least this many cells (where its values need them)
PER_COLUMN = 3  # the cells a rich table adds per column (padding and a border)
EDGE = 1  # and once, its last border
_SOFT = re.compile(r"(?<=[-/_.:@,; ])")  # where a value may wrap: after these characters
_ARROW = re.compile(r"(?<=->)")  # where a heading word may wrap


@dataclass(frozen=True)
class FitColumn:
    """A column as the terminal shows it: its heading (lines joined by newlines), what it
    holds, and its width (None: as wide as rich makes it)."""

    heading: str
    kind: Kind
    verdict: str | None = None
    width: int | None = None

    @property
    def left(self) -> bool:
        return self.kind != "number"


@dataclass(frozen=True)
class Fitted:
    """A table ready for rich: its columns and its cells, each already safe for a terminal
    and wrapped (lines joined by newlines)."""

    columns: tuple[FitColumn, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def wrapped(self) -> bool:
        """Whether a row takes more than one line (the renderer rules lines between rows)."""
        return any("\n" in v for r in self.rows for v in r)

    def lines(self) -> int:
        """How many lines its headings and rows take."""
        head = max((c.heading.count("\n") + 1 for c in self.columns), default=0)
        return head + sum(max((v.count("\n") + 1 for v in r), default=1) for r in self.rows)


def fit_table(t: ReportTable, width: int | None) -> Fitted:
    """``t`` laid out for ``width`` cells (see the module docstring); ``width`` None: as it
    is."""
    cells = [[terminal_text(v) for v in row] for row in t.rows]
    natural = [
        max(cell_len(c.title), *(cell_len(r[i]) for r in cells)) if cells else cell_len(c.title)
        for i, c in enumerate(t.columns)
    ]
    if width is None or _outer(len(natural)) + sum(natural) <= width:
        cols = tuple(FitColumn(c.title, c.kind, c.verdict) for c in t.columns)
        return Fitted(cols, tuple(tuple(r) for r in cells))
    side = _arrange(t.columns, cells, width, stack=False)
    if not any(len(run) > 1 for run in _groups(t.columns, stack=True)):
        return side
    stacked = _arrange(t.columns, cells, width, stack=True)
    return stacked if _score(stacked, width) < _score(side, width) else side


def _score(f: Fitted, width: int) -> tuple[bool, int]:
    """Which layout reads better: one that fits ``width``, then the one of fewer lines."""
    used = _outer(len(f.columns)) + sum(c.width or 0 for c in f.columns)
    return used > width, f.lines()


def _outer(columns: int) -> int:
    return PER_COLUMN * columns + EDGE


def _is_text(c: Column) -> bool:
    return c.kind in ("text", "name")


def _groups(columns: tuple[Column, ...], *, stack: bool) -> list[list[int]]:
    """The columns shown together: each alone, or (``stack``) runs of adjacent text columns
    as one."""
    out: list[list[int]] = []
    for i, c in enumerate(columns):
        if stack and out and _is_text(c) and _is_text(columns[out[-1][-1]]):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _arrange(
    columns: tuple[Column, ...], cells: list[list[str]], width: int, *, stack: bool
) -> Fitted:
    """The columns grouped (:func:`_groups`), numbers at their widths, the text columns
    sharing what is left (:func:`share`), headings and cells wrapped to those widths."""
    groups = _groups(columns, stack=stack)
    need = [_need([columns[i] for i in g], [[r[i] for r in cells] for i in g]) for g in groups]
    text = [k for k, g in enumerate(groups) if _is_text(columns[g[0]])]
    fixed = sum(n for k, n in enumerate(need) if k not in text)
    room = width - _outer(len(groups)) - fixed
    for k, w in zip(text, share([need[k] for k in text], room)):
        need[k] = w
    out_cols, out_cells = [], []
    for g, w in zip(groups, need):
        first = columns[g[0]]
        heading = "\n".join(wrap_heading(columns[i].title, w) for i in g)
        kind: Kind = "text" if len(g) > 1 else first.kind
        out_cols.append(FitColumn(heading, kind, first.verdict if len(g) == 1 else None, w))
        out_cells.append(["\n".join(wrap_value(r[i], w) for i in g) for r in cells])
    rows = tuple(zip(*out_cells)) if cells else ()
    return Fitted(tuple(out_cols), rows)


def _need(members: list[Column], values: list[list[str]]) -> int:
    """The cells a column (or a stack of them) needs: its widest value, and the widest piece
    of its heading (headings wrap; values of a text column wrap later, where room is short)."""
    pieces = [cell_len(p) for c in members for p, _ in heading_pieces(c.title)]
    return max(0, *pieces, *(cell_len(v) for col in values for v in col))


def share(needs: list[int], room: int, floor: int = TEXT_FLOOR) -> list[int]:
    """``room`` cells shared among columns that need ``needs``: the narrow ones get what they
    need, the wider ones an equal share of the rest; each at least ``floor`` (or its need)."""
    out = [0] * len(needs)
    left = room
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    for k, i in enumerate(order):
        fair = left // (len(needs) - k)
        out[i] = min(needs[i], max(fair, min(floor, needs[i])))
        left -= out[i]
    return out


def heading_pieces(title: str) -> list[tuple[str, bool]]:
    """The pieces a heading wraps between: its words, and the parts of a word after ``->``;
    each with whether a space goes before it on a line."""
    out: list[tuple[str, bool]] = []
    for word in title.split():
        for j, part in enumerate(p for p in _ARROW.split(word) if p):
            out.append((part, j == 0 and bool(out)))
    return out


def wrap_heading(title: str, width: int) -> str:
    """``title`` in lines of at most ``width`` cells, broken between its pieces (a piece
    wider than that is folded)."""
    lines: list[str] = []
    for piece, spaced in heading_pieces(title):
        joined = (lines[-1] + (" " if spaced else "") + piece) if lines else piece
        if lines and cell_len(joined) <= width:
            lines[-1] = joined
        else:
            lines.extend(_fold(piece, width))
    return "\n".join(lines)


def wrap_value(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` cells, broken after ``-/_.:@,;`` or a space
    where it can be, else folded; joined, the lines are ``text`` again (but for the spaces a
    line ends with)."""
    if cell_len(text) <= width:
        return text
    lines: list[str] = []
    for piece in _SOFT.split(text):
        if lines and cell_len(lines[-1] + piece.rstrip(" ")) <= width:
            lines[-1] += piece
        else:
            word = piece.rstrip(" ")
            parts = _fold(word, width) if word else [""]
            parts[-1] += piece[len(word) :]  # the space after it: kept if a word follows
            lines.extend(parts)
    return "\n".join(ln.rstrip(" ") or ln for ln in lines)


def _fold(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells (one character at least each)."""
    lines, line, used = [], "", 0
    for ch in text:
        n = cell_len(ch)
        if line and used + n > max(width, 1):
            lines.append(line)
            line, used = "", 0
        line += ch
        used += n
    return [*lines, line] if line or not lines else lines
