"""The report as one self-contained HTML page: tables, inline SVG charts, embedded thumbnails,
from the Jinja2 template ``templates/report.html`` with autoescape (recorded text never
becomes markup).

Nothing is fetched from the network: styles and a tiny script are inline, charts are SVG
(:mod:`inspect_db.reports.charts`) and the FAIL/REVIEW overlay thumbnails are downscaled JPEGs
in ``data:`` URIs. When the page has loaded, the script sets ``data-tables``, ``data-charts``,
``data-thumbnails`` and ``data-status="ready"`` on ``<body>`` (counts of what rendered), which
the tests read back from headless Chromium.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePath
from typing import TextIO

import cv2
import jinja2

from inspect_db.reports.charts import pareto_chart, yield_chart
from inspect_db.reports.csv_out import cannot_write
from inspect_db.reports.layout import pct, report_tables
from inspect_db.reports.model import ImageBrief, Report

THUMB_SIDE = 200
# the review tables after the queue, where there are any
REVIEW_MORE = (
    "review_stations",
    "review_classes",
    "review_days",
    "corrections",
    "correction_reasons",
)
HEALTH = ("input_health", "input_drift")  # where some inspection has its health measured


def thumbnail_data_uri(path: str | Path, side: int = THUMB_SIDE) -> str | None:
    """A downscaled JPEG of the image at ``path`` as a data URI (None if it cannot be read)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(
            img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


@dataclass(frozen=True)
class Thumb:
    """A gallery image as the page shows it."""

    id: int
    verdict: str
    station: str
    inspected_at: str
    source: str
    name: str  # the file name of the source
    thumbnail: str | None  # a data: URI, None when the overlay cannot be read

    @classmethod
    def of(cls, it: ImageBrief) -> Thumb:
        uri = thumbnail_data_uri(it.overlay_path) if it.overlay_path else None
        name = PurePath(it.source).name
        return cls(it.id, it.verdict, it.station, it.inspected_at or "", it.source, name, uri)


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inspect_db.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
    )
    env.globals["zip"] = zip
    return env.get_template("report.html")


def render_html(report: Report) -> str:
    """The whole page (thumbnails for the report's ``gallery``, built with ``gallery > 0``)."""
    tables = {t.key: t for t in report_tables(report)}
    more = [tables[k] for k in REVIEW_MORE if k in tables]
    return _template().render(
        report=report,
        scope=report.filters.describe() or "everything recorded",
        yield_text=pct(report.yield_),
        tables=tables,
        review_more=more,
        health=[tables[k] for k in HEALTH if k in tables],
        yield_chart=yield_chart(report.timeline.rows),
        pareto_chart=pareto_chart(report.pareto),
        review_url=(report.review_url or "").rstrip("/"),
        gallery=[Thumb.of(it) for it in report.gallery or []],
    )


def write_html_to(report: Report, out: TextIO) -> None:
    """The ``html`` report format: the page onto ``out``."""
    out.write(render_html(report))


def write_html(path: str | Path, report: Report) -> Path:
    path = Path(path)
    page = render_html(report)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise cannot_write(path, e) from e
    return path
