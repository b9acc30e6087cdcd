"""The core's own CLI commands, one module per command."""
