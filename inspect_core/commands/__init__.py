"""The core's own CLI commands, one module per command."""

__all__: list[str] = []  # each module is one command, reached through inspect_core.cli
