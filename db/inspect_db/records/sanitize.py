"""Values as the database can store them: the recorder cleans every row before writing it.

A value the database refuses would stop a station's ``sql`` sink (every later result waiting
behind it), so the database must never be the first to find one: NUL characters are dropped
(PostgreSQL text cannot hold them), text that is not valid UTF-8 (lone surrogates from an
undecodable file name) is written with escapes, text longer than its column is cut with a
trailing ``…`` (PostgreSQL refuses it: StringDataRightTruncation), and NaN / infinity in JSON
(which PostgreSQL's json refuses) become the strings ``"nan"`` / ``"inf"``.
"""

from __future__ import annotations

import math
import numbers
from functools import cache
from typing import Any

import sqlalchemy as sa

CUT = "\u2026"  # ends text cut to its column's length


def clean_text(value: str, limit: int | None) -> str:
    """``value`` as the database can store it: no NUL, valid UTF-8, at most ``limit``
    characters (cut with a trailing ``…``)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes of an undecodable file name
            try:
                value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + CUT
    return value


def clean_json(value: Any) -> Any:
    """JSON ``value`` with its strings cleaned and NaN / infinity as strings (not JSON)."""
    cls = value.__class__
    if cls is str:
        return value if value.isascii() and "\x00" not in value else clean_text(value, None)
    if cls is int or cls is bool or value is None:
        return value
    if cls is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {clean_json(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, str):
        return clean_text(str(value), None)
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, numbers.Integral)
        and not math.isfinite(value)
    ):  # numpy floats
        return str(float(value))
    return value  # numpy ints and arrays, paths: the JSON serialiser writes them


@cache
def _text_columns(table: sa.Table) -> tuple[tuple[str, int | None], ...]:
    return tuple(
        (c.name, getattr(c.type, "length", None))
        for c in table.columns
        if isinstance(c.type, sa.String)
    )


@cache
def _json_columns(table: sa.Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if isinstance(c.type, sa.JSON))


def clean_row(table: sa.Table, values: dict[str, Any], json_too: bool = True) -> dict[str, Any]:
    """``values`` for ``table`` with every text (and JSON) value normalised, in place."""
    for name, limit in _text_columns(table):
        v = values.get(name)
        if v is None:
            continue
        if v.__class__ is not str:  # a number, a path, a str subclass: stored as its text
            values[name] = clean_text(str(v), limit)
        elif "\x00" in v or not v.isascii() or limit is not None and len(v) > limit:
            values[name] = clean_text(v, limit)
    for name in _json_columns(table) if json_too else ():
        if name in values:
            values[name] = clean_json(values[name])
    return values
