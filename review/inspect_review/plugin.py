"""The review layer as a plugin: ``inspect review ...`` (entry point ``review`` in the
``inspect.plugins`` group). Nothing heavy is imported here: Starlette, uvicorn and argon2 load
only when a command needs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspect_core.plugin_api.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from inspect_review.commands import review_group

    cli.add_command(review_group)
