"""Writing CSV that a spreadsheet opens safely: every cell quoted, no text read as a formula
(:func:`csv_cell`), a byte order mark for Excel in a file; the report's tables as CSV
(:func:`write_tables`)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from inspect_db.errors import RecordsError
from inspect_db.reports.layout import ReportTable


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


def write_tables(tables: Iterable[ReportTable], out: TextIO) -> None:
    """The report's tables as one CSV: per table a row with its title, its header, its rows
    and an empty row; text neutralised by :func:`csv_cell`."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for t in tables:
        writer.writerow([csv_cell(t.title)])
        writer.writerow([csv_cell(c.title) for c in t.columns])
        writer.writerows([csv_cell(v) for v in row] for row in t.rows)
        writer.writerow([])
