"""Inspection records in SQL: models, migrations, the recorder and ``inspect report``.

Python API::

    from inspect_db import Recorder, build_report, ReportFilters
    with Recorder("sqlite:///inspect.db") as rec:
        rec.record(inspection)            # idempotent per (station, sha256 or capture id)
        rec.has("line-3", sha256)
    build_report(rec.engine, ReportFilters.parse(since="24h"))

The database URL defaults to ``$INSPECT_DATABASE_URL`` or ``sqlite:///inspect.db``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Recorder",
    "SqlSink",
    "ReportFilters",
    "build_report",
    "make_engine",
    "DatabaseUnavailable",
    "SchemaOutdated",
    "UnknownStation",
    "BadFilter",
    "DatabaseUnreadable",
    "RecordsError",
]

from inspect_db.errors import (
    BadFilter,
    DatabaseUnavailable,
    DatabaseUnreadable,
    RecordsError,
    SchemaOutdated,
    UnknownStation,
)

#: the lazily loaded names of the Python API: name -> the module that defines it
_LAZY = {
    "Recorder": "inspect_db.records.recorder",
    "SqlSink": "inspect_db.records.recorder",
    "ReportFilters": "inspect_db.reports.filters",
    "build_report": "inspect_db.reports.query",
    "make_engine": "inspect_db.engine",
}


def __getattr__(name: str) -> Any:  # lazy: keep `import inspect_db` (and the plugin) cheap
    if name not in _LAZY:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(_LAZY[name]), name)
