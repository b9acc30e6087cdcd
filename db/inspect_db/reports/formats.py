"""Report formats: how ``inspect report --format NAME`` writes a typed report.

The records plugin registers the built-in ones (``terminal``, ``json``, ``csv``, ``html``)
through the hook ``register_report_formats``, exactly as another plugin adds its own
(:func:`report_formats` collects them, one plugin at a time; a plugin whose hook fails is
reported by ``inspect plugins`` and the others' formats still work).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from inspect_core.plugin_api.manager import Registry, call_hook, get_registry
from inspect_db.reports.csv_out import write_tables
from inspect_db.reports.html import write_html_to
from inspect_db.reports.layout import report_tables
from inspect_db.reports.model import Report
from inspect_db.reports.terminal import write_terminal as write


@dataclass(frozen=True)
class ReportFormat:
    """A format of ``inspect report``: ``write(report, out)`` writes ``report`` onto the text
    stream ``out``; ``gallery``: the report should carry the recent FAIL/REVIEW images
    (``--thumbnails``), as the HTML page shows them."""

    name: str
    description: str
    write: Callable[[Report, TextIO], None]
    gallery: bool = False


def write_json(report: Report, out: TextIO) -> None:
    """The report as one JSON object (without the gallery), as ``--json`` prints it."""
    out.write(json.dumps(report.to_dict(gallery=False), indent=2) + "\n")


def write_csv_tables(report: Report, out: TextIO) -> None:
    write_tables(report_tables(report), out)


def write_terminal(report: Report, out: TextIO) -> None:
    write(report, out)


def write_html(report: Report, out: TextIO) -> None:
    write_html_to(report, out)


BUILTIN = (
    ReportFormat("terminal", "rich tables (the default)", write_terminal),
    ReportFormat("json", "one JSON object", write_json),
    ReportFormat("csv", "the report's tables, one after another", write_csv_tables),
    ReportFormat("html", "a self-contained page with charts and thumbnails", write_html, True),
)


def report_formats(reg: Registry | None = None) -> dict[str, ReportFormat]:
    """Every plugin's report formats by name (``reg``: the loaded plugins, by default
    :func:`~inspect_core.plugin_api.manager.get_registry`)."""
    reg = reg or get_registry()
    found: dict[str, ReportFormat] = {}
    owners: dict[str, str] = {}
    for plugin in list(reg.plugins):

        def register(fmt: Any, plugin: str = plugin) -> None:
            if not isinstance(fmt, ReportFormat) or not fmt.name or not callable(fmt.write):
                raise TypeError(
                    "register_report_formats needs an inspect_db.reports.formats.ReportFormat "
                    f"with a name and a write function, got {fmt!r}"
                )
            if fmt.name in found:
                reg.fail(
                    plugin,
                    f"report format {fmt.name!r} is already registered by {owners[fmt.name]}; "
                    "ignored",
                )
                return
            found[fmt.name], owners[fmt.name] = fmt, plugin

        call_hook(reg, plugin, "register_report_formats", register=register)
    return found
