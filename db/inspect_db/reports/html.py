"""The report as one self-contained HTML page: tables, inline SVG charts, embedded thumbnails,
from the Jinja2 template ``templates/report.html`` with autoescape (recorded text never
becomes markup).

Nothing is fetched from the network: styles and a tiny script are inline, charts are SVG
(:mod:`inspect_db.reports.charts`, each with its legend) and the FAIL/REVIEW thumbnails are
downscaled JPEGs in ``data:`` URIs: the overlay, else the image with its regions outlined in
SVG, else a note naming the file that is gone (:mod:`inspect_db.reports.thumbs`). When the page
has loaded, the script sets ``data-tables``, ``data-charts``, ``data-thumbnails``,
``data-outlined``, ``data-legends`` and ``data-status="ready"`` on ``<body>`` (counts of what
rendered), which the tests read back from headless Chromium.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TextIO

import jinja2

from inspect_db.reports.charts import pareto_chart, yield_chart
from inspect_db.reports.csv_out import cannot_write
from inspect_db.reports.layout import pct, report_tables
from inspect_db.reports.model import Report
from inspect_db.reports.thumbs import Thumb

# the review tables after the queue, where there are any
REVIEW_MORE = (
    "review_stations",
    "review_classes",
    "review_days",
    "corrections",
    "correction_reasons",
)
HEALTH = ("input_health", "input_drift")  # where some inspection has its health measured
VERSIONS = ("versions", "version_times")  # where anything was inspected


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
        versions=[tables[k] for k in VERSIONS if k in tables],
        yield_chart=yield_chart(report.timeline.rows, report.timeline.bucket),
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
