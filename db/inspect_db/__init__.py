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


def __getattr__(name: str) -> Any:  # lazy: keep `import inspect_db` (and the plugin) cheap
    if name in ("Recorder", "SqlSink"):
        from inspect_db import recorder

        return getattr(recorder, name)
    if name == "ReportFilters":
        from inspect_db.report_filters import ReportFilters

        return ReportFilters
    if name == "build_report":
        from inspect_db.report_query import build_report

        return build_report
    if name == "make_engine":
        from inspect_db.engine import make_engine

        return make_engine
    raise AttributeError(name)
