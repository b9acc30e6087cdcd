"""Hook specifications: everything a plugin can add to inspect is declared here.

A plugin is any module exposed through the ``inspect.plugins`` entry-point group whose
functions are marked with :data:`hookimpl`. Each ``register_*`` hook receives a ``register``
callable; the plugin calls it once per thing it adds (the pattern of simonw's ``llm``)::

    from pathlib import Path

    from inspect_core import Domain, Recipe, hookimpl

    @hookimpl
    def register_domains(register):
        register(Domain("wood", [Recipe("knots", model=Path("models/knots.onnx"))]))

The shipped plugins (``inspect_plugins.industrial``, ``.aerial``, ``.robotics``) and the
records and station layers (``db``, ``stations``) use exactly these hooks. Every hook is called
once per plugin, one plugin at a time: a hook that raises (or calls ``sys.exit``) is reported as a
failure of its plugin, with the reason, and the other plugins are not affected. What the hook
registered before it raised is kept. A hook's return value is ignored: ``register`` is the only
way in. ``INSPECT_TRACE_HOOKS=1`` prints every hook call, its plugin and its duration to stderr.

The types below (:class:`Rule`, :class:`RuleFactory`, :class:`SourceFactory`,
:class:`SinkFactory`; :class:`~inspect_core.plugin_api.interfaces.SourceContext`) say what each
``register`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from inspect_core.rules.base import Rule, RuleFactory, VerdictAdjuster

if TYPE_CHECKING:  # kept out of the import: plugins import this module first, and it stays light
    import click

    from inspect_core.plugin_api.interfaces import Sink, Source, SourceContext, VersionSource
    from inspect_core.runtime.recipe import Domain

__all__ = ["Rule", "RuleFactory", "VerdictAdjuster"]  # defined in inspect_core.rules.base

PROJECT = "inspect"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class SourceFactory(Protocol):
    """Opens a source: ``config`` is the station's raw ``[source]`` table (``type`` included)."""

    def __call__(self, config: dict[str, Any], context: SourceContext) -> Source: ...


class SinkFactory(Protocol):
    """Opens a sink: ``config`` is a station's ``[[sinks]]`` table without its ``type`` key; the
    database sink (``sql``) gets ``{"url": ...}``, or ``{}`` for the default database."""

    def __call__(self, config: dict[str, Any]) -> Sink: ...


RegisterDomain = Callable[["Domain"], None]
RegisterRule = Callable[[str, RuleFactory], None]
RegisterSource = Callable[[str, SourceFactory], None]
RegisterSink = Callable[[str, SinkFactory], None]


class VersionSourceFactory(Protocol):
    """Opens a model registry for a station: ``config`` is ``{"url": ...}``, the station's
    database URL (``{}`` for the default database)."""

    def __call__(self, config: dict[str, Any]) -> VersionSource: ...


RegisterVersionSource = Callable[[str, VersionSourceFactory], None]


@hookspec
def register_domains(register: RegisterDomain) -> None:
    """Register inspection domains: the kinds of part this plugin inspects, and how.

    :param register:
        Call ``register(domain)`` once per :class:`inspect_core.runtime.recipe.Domain`: a name and
        one or more :class:`~inspect_core.runtime.recipe.Recipe` objects. A recipe bundles what one
        kind of part needs: the ONNX weights, preprocessing, post-processing steps, rules, the
        default pixel size and sample images with the verdicts they must produce
        (:meth:`Recipe.from_toml` reads it from a file). ``register`` raises TypeError for anything
        but a Domain and ValueError for a domain with no usable recipe. A recipe with a problem
        (model file not found, a sample missing) is reported and left out; its siblings are kept.
        Domain names must be unique across plugins: a second domain of the same name is reported as
        a failure of the later plugin and ignored.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """


@hookspec
def register_rules(register: RegisterRule) -> None:
    """Register rule types that recipes and stations can name in ``[[rules]]`` tables.

    :param register:
        Call ``register(name, factory)`` once per rule type: ``name`` is the table's ``type`` and
        ``factory`` a :class:`RuleFactory`, ``factory(**params) -> rule``, where
        ``rule(ctx) -> list[RuleHit]`` and ``ctx`` is an
        :class:`inspect_core.rules.base.RuleContext` (regions, label map, class names, pixel
        size). ``register`` raises TypeError for an empty name or a
        factory that is not callable; a name that is already registered is reported and the later
        one ignored. The core registers the built-in rules (``min_area``, ``max_area``,
        ``max_count``, ``roi``, ``roi_coverage``, ``review_band``) through this same hook.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """


@hookspec
def register_sources(register: RegisterSource) -> None:
    """Register image sources that stations can name in their ``[source]`` table.

    :param register:
        Call ``register(name, factory)`` once per source type: ``factory(config, context)`` (a
        :class:`SourceFactory`) returns an :class:`inspect_core.plugin_api.interfaces.Source`: an
        object with ``items()`` (an iterator of
        :class:`inspect_core.plugin_api.interfaces.SourceItem`), ``done(item, inspection)`` (called
        after the result is recorded) and ``close()``. ``register`` raises TypeError for an empty
        name or a factory that is not callable; a name that is already registered is reported and
        the later one ignored.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """


@hookspec
def register_sinks(register: RegisterSink) -> None:
    """Register result sinks (databases, message buses, files) for ``[[sinks]]`` tables.

    :param register:
        Call ``register(name, factory)`` once per sink type: ``factory(config)`` (a
        :class:`SinkFactory`) returns an :class:`inspect_core.plugin_api.interfaces.Sink`: an object
        with ``write(inspection)`` and ``close()``. ``inspect predict --record`` and stations write
        every :class:`inspect_core.types.Inspection` to their configured sinks. ``register`` raises
        TypeError for an empty name or a factory that is not callable; a name that is already
        registered is reported and the later one ignored.

        In a station, a sink's ``write`` that raises is retried (the result waits in the
        journal) until it succeeds; an exception with a true ``dead_letter`` attribute says
        that this one result can never be written (its content is refused): the station sets
        it aside (``inspect station status`` shows it, ``inspect station replay`` retries it)
        and writes the results behind it.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """


@hookspec
def register_version_sources(register: RegisterVersionSource) -> None:
    """Register model registries that stations follow (``[model] follow`` in a station file).

    :param register:
        Call ``register(name, factory)`` once per registry: ``factory(config)`` (a
        :class:`VersionSourceFactory`) returns an
        :class:`inspect_core.plugin_api.interfaces.VersionSource`, whose ``active(plugin,
        recipe, station)`` gives the :class:`inspect_core.plugin_api.interfaces.ModelVersion`
        a station should run, or None for the recipe's own model file. A station asks every
        ``[model] check_s`` seconds; when the answer changes it loads the new model beside the
        running one and switches between two images (a model that fails to load is logged and
        the running one kept). ``register`` raises TypeError for an empty name or a factory
        that is not callable; a name that is already registered is reported and the later one
        ignored.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``inspect`` command line.

    :param cli:
        The root :class:`click.Group`: call ``cli.add_command(...)`` or decorate functions with
        ``@cli.command()``. Called once, before the command line is parsed; keep heavy imports
        inside the commands, so that ``inspect --help`` stays fast.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed (shown
        by ``inspect plugins``) and the command line works without its commands.
    """


@hookspec
def register_report_formats(register: Callable[[Any], None]) -> None:
    """Register output formats of ``inspect report`` (as datasette's
    ``register_output_renderer``): ``inspect report --format NAME [--out FILE]`` picks one.

    :param register:
        Call ``register(fmt)`` once per format with an
        :class:`inspect_db.reports.formats.ReportFormat`: its ``name``, a one-line
        ``description``, and ``write(report, out)``, which writes the typed
        :class:`inspect_db.reports.model.Report` onto the text stream ``out`` (a file opened
        as UTF-8, or standard output). The records plugin registers ``terminal``, ``json``,
        ``csv`` and ``html`` this way. ``register`` raises TypeError for anything that is not
        a format; a name that is already registered is reported and the later one ignored.

    :returns: Nothing: a returned value is ignored. Raising reports the plugin as failed.
    """
