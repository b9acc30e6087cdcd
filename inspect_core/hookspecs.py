"""Hook specifications: everything a plugin can add to inspect is declared here.

A plugin is any module exposed through the ``inspect.plugins`` entry-point group whose
functions are marked with :data:`hookimpl`. Each ``register_*`` hook receives a ``register``
callable; the plugin calls it once per thing it adds (the pattern of simonw's ``llm``)::

    from inspect_core import hookimpl
    from inspect_core.recipes import Domain, Recipe

    @hookimpl
    def register_domains(register):
        register(Domain("wood", [Recipe("knots", model="models/knots.onnx", ...)]))

The shipped plugins (``plugins/industrial``, ``plugins/aerial``, ``plugins/robotics``) and the
records and station layers (``db``, ``stations``) use exactly these hooks.
"""
from __future__ import annotations

import pluggy

PROJECT = "inspect"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_domains(register):
    """Register inspection domains.

    Call ``register(domain)`` with an :class:`inspect_core.recipes.Domain`: a name and one or
    more :class:`~inspect_core.recipes.Recipe` objects. A recipe bundles what a domain needs
    to inspect one kind of part: the ONNX weights, preprocessing, post-processing steps, rules,
    the default pixel size and sample images with the verdicts they must produce. Domain names
    must be unique across plugins; a duplicate is reported and the later one ignored.
    """


@hookspec
def register_rules(register):
    """Register rule types that recipes and stations can configure.

    Call ``register(name, factory)``; ``factory(**params)`` returns a callable
    ``rule(ctx) -> list[RuleHit]`` where ``ctx`` is an :class:`inspect_core.rules.RuleContext`
    (regions, label map, probabilities, class names, pixel size). The core registers the
    built-in rules (``min_area``, ``max_area``, ``max_count``, ``roi``, ``roi_coverage``,
    ``review_band``) through this same hook.
    """


@hookspec
def register_sources(register):
    """Register image sources for stations.

    Call ``register(name, factory)``; ``factory(config: dict, context)`` returns an object
    with ``items()`` (an iterator of :class:`inspect_core.interfaces.SourceItem`), ``done(item,
    inspection)`` (called after the result is recorded) and ``close()``.
    """


@hookspec
def register_sinks(register):
    """Register result sinks (databases, message buses, files).

    Call ``register(name, factory)``; ``factory(config: dict)`` returns an object with
    ``write(inspection)`` and ``close()``. ``inspect predict --record`` and stations write every
    :class:`inspect_core.types.Inspection` to their configured sinks.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``inspect`` command line.

    ``cli`` is the root :class:`click.Group`; call ``cli.add_command(...)`` or decorate
    functions with ``@cli.command()``. Called once, before the command line is parsed.
    """
