"""The records plugin: the ``sql`` sink, the ``sql`` model registry stations follow, ``inspect
db ...``, ``inspect report`` and ``inspect model ...``.

Loaded through the ``inspect.plugins`` entry point ``records = "inspect_db.plugin"``. Imports stay
light here; SQLAlchemy and Alembic load when a command or the sink is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from inspect_core.plugin_api.hookspecs import (
    RegisterSink,
    RegisterVersionSource,
    hookimpl,
)

if TYPE_CHECKING:  # SQLAlchemy loads when a command or the sink is used, not here
    import click

    from inspect_db.records.recorder import SqlSink
    from inspect_db.registry.versions import SqlVersions


def sql_sink(config: dict[str, Any]) -> SqlSink:
    """Factory of the ``sql`` sink (config key ``url``; see
    :class:`inspect_db.records.recorder.SqlSink`)."""
    from inspect_db.records.recorder import SqlSink

    return SqlSink(config)


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    register("sql", sql_sink)


def sql_versions(config: dict[str, Any]) -> SqlVersions:
    """Factory of the ``sql`` version source: the model registry in the station's database
    (:class:`inspect_db.registry.SqlVersions`)."""
    from inspect_db.registry.versions import SqlVersions

    return SqlVersions(config)


@hookimpl
def register_version_sources(register: RegisterVersionSource) -> None:
    register("sql", sql_versions)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from inspect_db.commands import db_group
    from inspect_db.registry.cli import model_group
    from inspect_db.reports.cli import report

    cli.add_command(db_group)
    cli.add_command(report)
    cli.add_command(model_group)


@hookimpl
def register_report_formats(register: Callable[[Any], None]) -> None:
    from inspect_db.reports.formats import BUILTIN

    for fmt in BUILTIN:
        register(fmt)
