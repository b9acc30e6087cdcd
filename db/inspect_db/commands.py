"""``inspect db upgrade|current`` and ``inspect report``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from inspect_db.engine import ENV_URL, make_engine, safe_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from inspect_db.report_filters import ReportFilters

MAX_ROWS = 1_000_000  # --top/--thumbnails; more would not fit a SQL LIMIT (or a screen)
DB_HELP = f"Database URL (default ${ENV_URL} or sqlite:///inspect.db in this folder)."
REVIEW_URL_ENV = "INSPECT_REVIEW_URL"


@click.group("db")
def db_group() -> None:
    """The inspection records database: schema migrations."""


@db_group.command("upgrade")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, revision: str) -> None:
    """Migrate the database schema to the newest revision (creates an empty database)."""
    from inspect_db.migrate import upgrade

    engine = make_engine(url)
    try:
        before, after = upgrade(engine, revision)
    finally:
        engine.dispose()
    where = safe_url(engine.url)
    if before == after:
        click.echo(f"{where}: schema already at revision {after}")
    else:
        click.echo(f"{where}: schema upgraded from {before or 'empty'} to {after}")


@db_group.command("current")
@click.option("--db", "url", default=None, help=DB_HELP)
def db_current(url: str | None) -> None:
    """Show the database's schema revision and what this inspect needs."""
    from inspect_db.migrate import schema_state

    engine = make_engine(url)
    try:
        st = schema_state(engine)
    finally:
        engine.dispose()
    status = (
        "up to date"
        if st.up_to_date
        else "empty (the first inspect command will create the schema)"
        if st.empty
        else "outdated: run `inspect db upgrade`"
    )
    click.echo(f"{st.url}: revision {st.current or 'none'}, head {st.head} ({status})")


@click.command("report")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option(
    "--since",
    default=None,
    help="Start: 24h, 7d, 30m, 2w ago, or an ISO date/time (UTC unless it has an offset).",
)
@click.option("--until", default=None, help="End (exclusive), same forms as --since.")
@click.option("--station", default=None, help="Only this station.")
@click.option("--plugin", default=None, help="Only this plugin.")
@click.option("--recipe", default=None, help="Only this recipe.")
@click.option("--verdict", default=None, help="Only these verdicts, e.g. FAIL or FAIL,REVIEW.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
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
    url,
    as_json,
    csv_path,
    regions,
    html_path,
    bucket,
    top,
    thumbnails,
    review_url,
    **filter_options,
):
    """Yield, verdicts, defect Pareto, worst images, latency, counts over time and operator
    review (reviewed and pending, agreement of model and operator, overturned verdicts).

    Prints rich tables, or JSON with --json; --csv and --html also write files.
    """
    from inspect_db.engine import connect, require_existing
    from inspect_db.migrate import ensure_schema
    from inspect_db.report_filters import ReportFilters
    from inspect_db.report_query import build_report

    if regions and not csv_path:
        raise click.UsageError("--regions goes with --csv FILE")
    if as_json and csv_path == "-":
        raise click.UsageError(
            "--json and --csv - both write to standard output; give --csv a file name"
        )
    filters = ReportFilters.parse(**filter_options)  # --since ... --verdict
    review_url = check_review_url(review_url)
    engine = make_engine(url)
    say = (lambda m: click.echo(m, err=True)) if as_json or csv_path == "-" else click.echo
    try:
        require_existing(engine)  # a report reads: a mistyped --db creates nothing
        ensure_schema(engine, migrate_empty=False)
        with connect(engine, snapshot=True) as conn:  # every section of the same moment
            # the CSV alone on stdout: the report itself would be computed and thrown away
            data = (
                {}
                if csv_path == "-" and not html_path
                else build_report(
                    conn, filters, worst=top, bucket=bucket, gallery=thumbnails if html_path else 0
                )
            )
            if csv_path:
                n = _write_csv(conn, filters, csv_path, regions)
                if csv_path != "-":
                    say(f"wrote {n} {'regions' if regions else 'inspections'} to {csv_path}")
    finally:
        engine.dispose()
    if review_url and data:
        data["review_url"] = review_url
    if html_path:
        from inspect_db.html import write_html

        say(f"wrote {write_html(html_path, data)}")
    if as_json:
        data.pop("gallery", None)
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif csv_path != "-":
        from inspect_db.report_render import render_terminal

        render_terminal(data)


def _write_csv(conn: Connection, filters: ReportFilters, path: str, regions: bool) -> int:
    """Write the matching inspections (or their regions) to the CSV file ``path`` (``-``:
    stdout); returns how many rows."""
    from inspect_db.report_export import (
        INSPECTION_FIELDS,
        REGION_FIELDS,
        inspection_rows,
        region_rows,
    )
    from inspect_db.report_render import write_csv

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
