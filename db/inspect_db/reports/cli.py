"""``inspect report``: the typed report (:func:`inspect_db.reports.query.build_report`) in the
terminal, as JSON, CSV or HTML, or in a format a plugin adds (:mod:`inspect_db.reports.formats`);
``--csv`` writes one row per inspection (or region) instead."""

from __future__ import annotations

import difflib
import sys
from typing import TYPE_CHECKING, Any

import click

from inspect_core.commands.plugin_option import plugin_recipe_options
from inspect_db.commands import DB_HELP

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from inspect_db.reports.filters import ReportFilters
    from inspect_db.reports.formats import ReportFormat
    from inspect_db.reports.model import Report

MAX_ROWS = 1_000_000  # --top/--thumbnails; more would not fit a SQL LIMIT (or a screen)
REVIEW_URL_ENV = "INSPECT_REVIEW_URL"


@click.command("report")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--since",
    default=None,
    help="Start: 24h, 7d, 30m, 2w ago, or an ISO date/time (UTC unless it has an offset).",
)
@click.option("--until", default=None, help="End (exclusive), same forms as --since.")
@click.option("--station", default=None, help="Only this station.")
@plugin_recipe_options(plugin_help="Only this plugin.", recipe_help="Only this recipe.")
@click.option("--verdict", default=None, help="Only these verdicts, e.g. FAIL or FAIL,REVIEW.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="NAME",
    help="Write the report in this format: terminal, json, csv (its tables), html, or one a "
    "plugin adds (`inspect report --format help` lists them).",
)
@click.option(
    "--out",
    "out_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="With --format: write to this file instead of standard output.",
)
@click.option(
    "--csv",
    "csv_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write one row per inspection to this CSV file (- for stdout).",
)
@click.option("--regions", is_flag=True, help="With --csv: one row per region instead.")
@click.option(
    "--html",
    "html_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write a self-contained HTML page with charts and thumbnails.",
)
@click.option(
    "--bucket",
    type=click.Choice(["auto", "hour", "day"]),
    default="auto",
    show_default=True,
    help="Time buckets of the counts over time.",
)
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(0, MAX_ROWS),
    help="How many worst images.",
)
@click.option(
    "--thumbnails",
    default=48,
    show_default=True,
    type=click.IntRange(0, MAX_ROWS),
    help="With --html: at most this many FAIL/REVIEW overlay thumbnails.",
)
@click.option(
    "--review-url",
    default=None,
    envvar=REVIEW_URL_ENV,
    help=f"The review page (`inspect review serve`), e.g. http://127.0.0.1:8600: the HTML "
    f"report links to its queue and items. [default: ${REVIEW_URL_ENV}]",
)
def report(
    url: str | None,
    as_json: bool,
    fmt: str | None,
    out_path: str | None,
    csv_path: str | None,
    regions: bool,
    html_path: str | None,
    bucket: str,
    top: int,
    thumbnails: int,
    review_url: str | None,
    **filter_options: Any,
) -> None:
    """Yield, verdicts, defect Pareto, worst images, latency, counts over time and operator
    review (reviewed and pending, agreement of model and operator, overturned verdicts, and
    per model version the share of inspections operators corrected, and why).

    Prints rich tables, or JSON with --json, or any --format; --csv and --html also write files.
    """
    from inspect_db.reports.filters import ReportFilters

    if regions and not csv_path:
        raise click.UsageError("--regions goes with --csv FILE")
    chosen = _pick_format("json" if as_json and fmt is None else fmt, as_json, out_path)
    to_stdout = chosen is not None and out_path in (None, "-")
    if to_stdout and csv_path == "-":
        raise click.UsageError(
            "--csv - and the report both write to standard output; give --csv a file name "
            "(or --out FILE)"
        )
    filters = ReportFilters.parse(**filter_options)  # --since ... --verdict
    review_url = check_review_url(review_url)
    gallery = thumbnails if html_path or (chosen is not None and chosen.gallery) else 0
    wanted = chosen is not None or html_path or csv_path != "-"
    say = (lambda m: click.echo(m, err=True)) if to_stdout or csv_path == "-" else click.echo
    data = _query(url, filters, csv_path, regions, say, top, bucket, gallery, bool(wanted))
    if data is None:
        return
    if review_url:
        data = data.model_copy(update={"review_url": review_url})
    if html_path:
        from inspect_db.reports.html import write_html

        say(f"wrote {write_html(html_path, data)}")
    if chosen is not None:
        _emit(chosen, data, out_path, say)
    elif csv_path != "-":
        from inspect_db.reports.terminal import render_terminal

        render_terminal(data)


def _pick_format(name: str | None, as_json: bool, out_path: str | None) -> ReportFormat | None:
    """The format ``--format`` (or ``--json``) names; UsageError naming the installed ones."""
    if as_json and name != "json":
        raise click.UsageError(f"--json is --format json; give one of --json and --format {name}")
    if name is None:
        if out_path is not None:
            raise click.UsageError("--out goes with --format NAME")
        return None
    from inspect_db.reports.formats import report_formats

    formats = report_formats()
    if name in formats:
        return formats[name]
    known = "; ".join(f"{n}: {f.description}" for n, f in sorted(formats.items()))
    close = difflib.get_close_matches(name, list(formats), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    what = "the report formats" if name == "help" else f"--format {name!r}: no such format; {hint}"
    raise click.UsageError(f"{what}: {known}" if name == "help" else f"{what}installed: {known}")


def _query(
    url: str | None,
    filters: ReportFilters,
    csv_path: str | None,
    regions: bool,
    say: Any,
    top: int,
    bucket: str,
    gallery: int,
    wanted: bool,
) -> Report | None:
    """The report (None unless ``wanted``), and the CSV rows written, of one snapshot."""
    from inspect_db.engine import connect, make_engine
    from inspect_db.migrate import ensure_schema
    from inspect_db.reports.query import build_report

    engine = make_engine(url, existing=True)  # a report reads: a mistyped --db creates nothing
    try:
        ensure_schema(engine, migrate_empty=False)
        with connect(engine, snapshot=True) as conn:  # every section of the same moment
            # the CSV alone on stdout: the report itself would be computed and thrown away
            data = (
                build_report(conn, filters, worst=top, bucket=bucket, gallery=gallery)
                if wanted
                else None
            )
            if csv_path:
                n = _write_csv(conn, filters, csv_path, regions)
                if csv_path != "-":
                    say(f"wrote {n} {'regions' if regions else 'inspections'} to {csv_path}")
    finally:
        engine.dispose()
    return data


def _emit(chosen: ReportFormat, data: Report, out_path: str | None, say: Any) -> None:
    """Write ``data`` in ``chosen`` onto standard output or the file ``out_path``."""
    if out_path in (None, "-"):
        chosen.write(data, sys.stdout)
        return
    from inspect_db.reports.csv_out import cannot_write

    try:
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            chosen.write(data, fh)
    except OSError as e:
        raise cannot_write(out_path, e) from e
    say(f"wrote {out_path}")


def _write_csv(conn: Connection, filters: ReportFilters, path: str, regions: bool) -> int:
    """Write the matching inspections (or their regions) to the CSV file ``path`` (``-``:
    stdout); returns how many rows."""
    from inspect_db.reports.csv_out import write_csv
    from inspect_db.reports.export import (
        INSPECTION_FIELDS,
        REGION_FIELDS,
        inspection_rows,
        region_rows,
    )

    if regions:
        return write_csv(path, REGION_FIELDS, region_rows(conn, filters), bom=True)
    return write_csv(path, INSPECTION_FIELDS, inspection_rows(conn, filters), bom=True)


def check_review_url(url: str | None) -> str | None:
    """``--review-url`` as given, without a trailing slash; BadFilter (exit 2) unless it is an
    http(s) address with a host."""
    from urllib.parse import urlsplit

    from inspect_db.errors import BadFilter

    if url is None or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise BadFilter(
            f"--review-url {url!r} (or ${REVIEW_URL_ENV}): give the review page's address, "
            "e.g. http://127.0.0.1:8600 (http or https, a host, no query)"
        )
    return url.strip().rstrip("/")
