"""Station logging: readable lines by default, one JSON object a line with ``--log-json``.

Every record carries the station name and an ``event`` (``start``, ``inspected``,
``quarantined``, ``sink_unavailable``, ``db_schema_outdated``, ``file_failed``...) plus optional
fields, so a log shipper can filter on them::

    {"ts": "2024-05-02T10:15:03.120Z", "level": "INFO", "station": "line1", "event": "inspected",
     "msg": "PASS inbox/p1.png", "verdict": "PASS", "ms": 41.2}
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import time
from typing import Any, TextIO

from inspect_core.text import terminal_text

LOGGER = "inspect.station"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: names with newlines or escape sequences stay inside their
    string (JSON escapes them) and come back unchanged when the line is parsed."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "station": getattr(record, "station", None),
            "event": getattr(record, "event", None),
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL [station] message``, one line per record: control characters in the
    message or the station name (a file name with a newline or an escape sequence) are written
    as visible escapes (``\\n``, ``\\x1b``), so no name can forge a line or steer the terminal.
    A traceback follows on lines of its own, escaped the same way and indented, so that only
    a record's first line starts at the left margin."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%H:%M:%S", time.localtime(record.created))
        station = getattr(record, "station", None)
        head = f"{ts} {record.levelname:<7}" + (f" [{terminal_text(station)}]" if station else "")
        text = f"{head} {terminal_text(record.getMessage())}"
        if record.exc_info:
            tb = terminal_text(self.formatException(record.exc_info), keep_newlines=True)
            text += "\n" + textwrap.indent(tb, "  ", lambda line: True)
        return text


def setup_logging(
    json_lines: bool = False, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Logger:
    """Configure the station logger (to stderr); safe to call more than once."""
    log = logging.getLogger(LOGGER)
    _remove_ours(log)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._inspect_station = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    # model-integrity warnings (inspect_core.cards) go through the same handler, so that
    # --log-json stays one JSON object a line
    models = logging.getLogger("inspect.models")
    _remove_ours(models)
    models.addHandler(handler)
    return log


def _remove_ours(logger: logging.Logger) -> None:
    """Remove the handler an earlier :func:`setup_logging` added (so it can be called again)."""
    for h in list(logger.handlers):
        if getattr(h, "_inspect_station", False):
            logger.removeHandler(h)


class StationLog:
    """A thin wrapper: ``log.info("inspected", "PASS a.png", verdict="PASS")``."""

    def __init__(self, station: str, logger: logging.Logger | None = None):
        self.station = station
        self.logger = logger or logging.getLogger(LOGGER)

    def _log(self, level: int, event: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self.logger.log(
            level,
            msg,
            exc_info=exc_info,
            extra={"station": self.station, "event": event, "fields": fields},
        )

    def debug(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, msg, **fields)

    def info(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, event, msg, **fields)

    def warning(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, msg, **fields)

    def error(self, event: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, event, msg, exc_info=exc_info, **fields)
