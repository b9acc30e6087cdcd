"""The ``inspect`` command line. Core commands live here; plugins add theirs through the
``register_commands`` hook, exactly as a third-party package would."""

from __future__ import annotations

import sys

import click

from inspect_core import __version__
from inspect_core.errors import InspectError
from inspect_core.text import indent_continuation, terminal_text


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inspect")
def cli() -> None:
    """Visual inspection for production lines: segment, judge, record, report."""


from inspect_core.commands.evaluate import evaluate
from inspect_core.commands.health import health_group
from inspect_core.commands.plugins import plugin_group, plugins_cmd
from inspect_core.commands.predict import predict
from inspect_core.commands.train import train

cli.add_command(evaluate)
cli.add_command(train)
cli.add_command(predict)
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
    from inspect_core.plugin_api.manager import load_cli_plugins

    load_cli_plugins(cli)
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
