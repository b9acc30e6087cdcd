"""``inspect db upgrade|current``; ``inspect report`` is :mod:`inspect_db.reports.cli`."""

from __future__ import annotations

import click

# inspect_db.engine.ENV_URL, written out: the engine (SQLAlchemy, 0.35 s) loads when a command
# runs, not at `inspect --help` (tests/cli/test_startup_imports.py holds the two together)
DB_HELP = "Database URL (default $INSPECT_DATABASE_URL or sqlite:///inspect.db in this folder)."


@click.group("db")
def db_group() -> None:
    """The inspection records database: schema migrations."""


@db_group.command("upgrade")
@click.option("--db", "url", default=None, help=DB_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, revision: str) -> None:
    """Migrate the database schema to the newest revision (creates an empty database)."""
    from inspect_db.engine import make_engine, safe_url
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
    from inspect_db.engine import make_engine
    from inspect_db.migrate import schema_state

    engine = make_engine(url, existing=True)  # it only looks: a mistyped --db creates nothing
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
