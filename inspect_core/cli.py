"""The ``inspect`` command line. Core commands live here; plugins add theirs through the
``register_commands`` hook, exactly as a third-party package would.

Start-up stays light: importing this module imports click and the light command modules only.
The heavy core commands (``evaluate``, ``predict``, ``train``: NumPy, OpenCV, ONNX Runtime) are
:class:`LazyCommand` entries, imported when they run or their own ``--help`` is asked for; the
plugins' commands are loaded (:func:`~inspect_core.plugin_api.manager.load_cli_plugins`) only
when a command that is not a core one is asked for, or the command list is shown.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

from inspect_core import __version__
from inspect_core.commands.health import health_group
from inspect_core.commands.plugins import plugin_group, plugins_cmd
from inspect_core.errors import InspectError
from inspect_core.text import indent_continuation, terminal_text


class LazyCommand(click.Command):
    """A core command by name, module and help, imported on first use (:meth:`resolve`).

    ``help`` is the first paragraph of the real command's docstring (what ``inspect --help``
    shows of it); tests/cli/test_startup_imports.py holds it to the real one."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target  # "package.module:attribute"

    def resolve(self) -> click.Command:
        module, _, attr = self.target.partition(":")
        cmd = getattr(import_module(module), attr)
        if not isinstance(cmd, click.Command):  # a programming error, not the user's
            raise TypeError(f"{self.target} is not a click command but {type(cmd).__name__}")
        return cmd


class InspectGroup(click.Group):
    """The root group: resolves :class:`LazyCommand` entries when one is run, and loads the
    plugins' commands only when they can be needed."""

    plugins_loaded = False

    def load_plugin_commands(self) -> None:
        """Let every plugin add its commands (once)."""
        if self.plugins_loaded:
            return
        self.plugins_loaded = True
        from inspect_core.plugin_api import manager  # its attribute: tests replace it

        manager.load_cli_plugins(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self.load_plugin_commands()
        cmd = self.commands.get(cmd_name)
        if isinstance(cmd, LazyCommand):
            cmd = self.commands[cmd_name] = cmd.resolve()
        return cmd

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugin_commands()
        return sorted(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the commands as they are: a lazy one's help is its own (no
        import just to list it)."""
        named = [(n, self.commands[n]) for n in self.list_commands(ctx)]
        rows = [(n, c) for n, c in named if not c.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(n) for n, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in rows])


@click.group(cls=InspectGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inspect")
def cli() -> None:
    """Visual inspection for production lines: segment, judge, record, report."""


# help: the first paragraph of each command's docstring (a test holds them to it)
LAZY_COMMANDS = (
    LazyCommand(
        "evaluate",
        "inspect_core.commands.evaluate:evaluate",
        "Per-class Dice, IoU, precision and recall over a whole split, plus image-level recall "
        "and false-reject rate; with --by-group, each group's scores and their spread.",
    ),
    LazyCommand(
        "train",
        "inspect_core.commands.train:train",
        "Train a U-Net on a dataset folder; writes checkpoints, model.onnx and model.json.",
    ),
    LazyCommand(
        "predict",
        "inspect_core.commands.predict:predict",
        "Inspect IMAGES (files or folders): verdict, fired rules, regions and an overlay each.",
    ),
)
for _lazy in LAZY_COMMANDS:
    cli.add_command(_lazy)
cli.add_command(plugins_cmd)
cli.add_command(plugin_group)
cli.add_command(health_group)


def error_text(e: InspectError) -> str:
    """The message of ``e`` as it is printed: one line (see :class:`InspectError`)."""
    if e.multiline:
        return indent_continuation(terminal_text(e, keep_newlines=True))
    return terminal_text(e)


def not_utf8_text(e: UnicodeEncodeError) -> str:
    """The one-line error for text that cannot be written as UTF-8: bytes that are not UTF-8
    in an argument, an environment variable or a file name (typed on a Latin-1 terminal,
    from a Windows share), which Python holds as surrogate escapes."""
    text = e.object if isinstance(e.object, str) else str(e.object)
    try:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return (
        f"'{terminal_text(shown)}' holds bytes that are not UTF-8 and cannot be used as text "
        "here: give command-line arguments and environment variables in UTF-8 (is the "
        "terminal or script set to another encoding?)"
    )


def main() -> None:
    # each run asks the plugins for their commands again, as the registry may have been
    # refreshed since (tests run several in one process)
    cli.plugins_loaded = False
    try:
        cli.main(standalone_mode=False)
    except InspectError as e:
        click.secho(f"error: {error_text(e)}", fg="red", err=True)
        sys.exit(e.exit_code)
    except UnicodeEncodeError as e:
        click.secho(f"error: {not_utf8_text(e)}", fg="red", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
