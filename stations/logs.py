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
import time
from typing import Any

LOGGER = "inspect.station"


class JsonFormatter(logging.Formatter):
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
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%H:%M:%S", time.localtime(record.created))
        station = getattr(record, "station", None)
        head = f"{ts} {record.levelname:<7}" + (f" [{station}]" if station else "")
        text = f"{head} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(json_lines: bool = False, level: int = logging.INFO, stream=None) -> logging.Logger:
    """Configure the station logger (to stderr); safe to call more than once."""
    log = logging.getLogger(LOGGER)
    for h in list(log.handlers):
        if getattr(h, "_inspect_station", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._inspect_station = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return log


class StationLog:
    """A thin wrapper: ``log.info("inspected", "PASS a.png", verdict="PASS")``."""

    def __init__(self, station: str, logger: logging.Logger | None = None):
        self.station = station
        self.logger = logger or logging.getLogger(LOGGER)

    def _log(self, level: int, event: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self.logger.log(level, msg, exc_info=exc_info,
                        extra={"station": self.station, "event": event, "fields": fields})

    def debug(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, msg, **fields)

    def info(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, event, msg, **fields)

    def warning(self, event: str, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, msg, **fields)

    def error(self, event: str, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, event, msg, exc_info=exc_info, **fields)
