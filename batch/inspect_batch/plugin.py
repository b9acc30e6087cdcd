"""The batch plugin: ``inspect backtest`` (Dask loads only when it runs)."""

from __future__ import annotations

from inspect_core.plugin_api.hookspecs import hookimpl


@hookimpl
def register_commands(cli) -> None:
    from inspect_batch.commands import backtest

    cli.add_command(backtest)
