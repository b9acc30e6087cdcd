"""The batch plugin: ``inspect backtest`` (Dask loads only when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspect_core.plugin_api.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from inspect_batch.commands import backtest

    cli.add_command(backtest)
