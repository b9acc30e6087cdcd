"""Schema migrations through Alembic, driven from Python (no alembic.ini needed).

:func:`ensure_schema` is what every tool calls before touching the database: an empty database
is migrated to the head revision on first use; a database at an older revision raises
:class:`~inspect_db.errors.SchemaOutdated` telling you to run ``inspect db upgrade``.
Migrations run in one transaction under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock
on PostgreSQL), so several processes that start on one empty database at once migrate it
exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from inspect_db.engine import ENV_URL, connect, safe_url
from inspect_db.errors import SchemaOutdated
from inspect_db.models import TABLES

MIGRATIONS = Path(__file__).parent / "migrations"
PG_LOCK_KEY = 0x1D5EC7  # pg_advisory_xact_lock key of the migration


def alembic_config() -> Config:
    """An Alembic config pointing at ``db/inspect_db/migrations``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision this version of inspect knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _known(rev: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(rev) is not None
    except Exception:
        return False


def current_revision(conn: Connection) -> str | None:
    """The revision stored in the database (None for a database Alembic never touched)."""
    return MigrationContext.configure(conn).get_current_revision()


@dataclass
class SchemaState:
    url: str
    current: str | None
    head: str
    our_tables: list[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.our_tables


def schema_state(engine: Engine) -> SchemaState:
    """Where the database stands (connects; may raise DatabaseUnavailable)."""
    with connect(engine) as conn:
        return _state(engine, conn)


def _state(engine: Engine, conn: Connection) -> SchemaState:
    # the tables first, then the revision: two reads, and another process's migration may
    # commit between them (PostgreSQL, read committed); read in this order a database being
    # migrated looks empty or migrated, never "tables but no revision"
    tables = sorted(set(sa.inspect(conn).get_table_names()) & set(TABLES))
    current = current_revision(conn)
    return SchemaState(safe_url(engine.url), current, head_revision(), tables)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision`` under a lock; returns (revision before, revision after)."""
    with connect(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
        before = current_revision(conn)
        if before is not None and not _known(before):
            raise _newer(engine, before)
        if before is None and set(TABLES) & set(sa.inspect(conn).get_table_names()):
            raise _unversioned(engine)
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        target = _target(cfg, revision)
        command.upgrade(cfg, revision)
        after = current_revision(conn)
    if after != target:  # an older target: upgrade never goes back
        raise SchemaOutdated(
            f"database {safe_url(engine.url)} is at schema revision {after}, newer than "
            f"{revision}: `inspect db upgrade` only goes forward; nothing was changed"
        )
    return before, after


def _target(cfg: Config, revision: str) -> str:
    """The revision id ``revision`` (an id or ``head``) names; SchemaOutdated for none."""
    script = ScriptDirectory.from_config(cfg)
    try:
        rev = script.get_revision(revision)
    except Exception:  # alembic's CommandError / ResolutionError: one line for the user
        rev = None
    if rev is None:
        known = ", ".join(r.revision for r in reversed(list(script.walk_revisions())))
        raise SchemaOutdated(f"revision {revision!r}: no such revision; the revisions are {known}")
    return rev.revision


def ensure_schema(engine: Engine, *, migrate_empty: bool = True) -> SchemaState:
    """Make sure the schema is at head: migrate an empty database, refuse an outdated one."""
    state = schema_state(engine)
    if state.up_to_date:
        return state
    if migrate_empty and state.current is None:
        # empty, or seen mid-migration: upgrade takes the lock, finds what a concurrent
        # process migrated meanwhile, and refuses tables that really have no revision
        upgrade(engine)
        return schema_state(engine)
    if state.empty:  # a command that only reads, on a database with nothing of inspect's
        raise SchemaOutdated(
            f"database {state.url} holds no inspect records (no tables): check --db (or "
            f"{ENV_URL}); nothing was created in it"
        )
    if state.current is None:
        raise _unversioned(engine)
    if not _known(state.current):
        raise _newer(engine, state.current)
    raise SchemaOutdated(
        f"database {state.url} has schema revision {state.current}, this inspect needs "
        f"{state.head}: "
        f"run `inspect db upgrade --db {state.url}` (or with {ENV_URL} set), then retry"
    )


def _unversioned(engine: Engine) -> SchemaOutdated:
    return SchemaOutdated(
        f"database {safe_url(engine.url)} has inspect's tables but no Alembic revision "
        "(created by hand?): move them aside, or if they match revision 0001 stamp it with "
        "`alembic -c db/inspect_db/alembic.ini -x url=URL stamp 0001`"
    )


def _newer(engine: Engine, rev: str) -> SchemaOutdated:
    return SchemaOutdated(
        f"database {safe_url(engine.url)} has schema revision {rev}, which this version of "
        "inspect does not know (a newer inspect migrated it): upgrade inspect on this machine"
    )
