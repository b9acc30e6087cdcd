"""Alembic environment of the inspection records.

Used two ways: programmatically by :mod:`inspect_db.migrate` (which hands over an open connection in
``config.attributes["connection"]``, already inside a locked transaction), or from a shell::

    alembic -c db/inspect_db/alembic.ini -x url=sqlite:///inspect.db upgrade head

where the URL comes from ``-x url=``, else ``INSPECT_DATABASE_URL``, else the default.
"""

from __future__ import annotations

from alembic import context

from inspect_db.engine import make_engine, parse_url
from inspect_db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url")
    context.configure(
        url=parse_url(url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execution_options(inspect_write=True)
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
