"""Putting a station together from its config: recipe and inspector, sinks, source.

Everything named in the config is resolved through the plugin registry (the same way a
third-party plugin's sources and sinks are found); :class:`inspect_stations.pipeline.daemon.Station`
calls these unless it is handed the pieces directly. A source from a plugin, or one handed in,
is made a full :class:`~inspect_core.plugin_api.interfaces.Source` here (:func:`as_source`), so
the station calls every method without asking whether it is there.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from inspect_core.config import Problem, not_registered
from inspect_core.errors import InspectError
from inspect_core.plugin_api.interfaces import BaseSource, Sink, Source, SourceItem
from inspect_core.plugin_api.interfaces import SourceContext as SourceContract
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector, InspectorBase
from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import StationConfig
from inspect_stations.config.toml_reader import read_alone
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.archive import Archive
from inspect_stations.pipeline.journal import Journal
from inspect_stations.pipeline.writer import SinkSlot

Options = TypeVar("Options")


@dataclass
class SourceContext(SourceContract):
    """What a source factory gets besides its [source] table: the contract
    (:class:`inspect_core.plugin_api.interfaces.SourceContext`) and what the built-in sources
    use besides."""

    station: str
    stop: threading.Event
    base: Path  # the config file's folder (relative paths)
    journal: Journal
    archive: Archive
    log: StationLog
    triggers: queue.Queue  # MQTT trigger messages: {"id", "part_id", "lot"}
    until_empty: bool = False
    config: StationConfig | None = None


def load_recipe(cfg: StationConfig) -> Recipe:
    """The station's recipe: its own ``recipe_file``, or the plugin's recipe by name."""
    if cfg.recipe_file is not None:
        recipe = Recipe.from_toml(cfg.recipe_file)
        problems = recipe.problems()
        if problems:
            raise InspectError(f"station.recipe_file {cfg.recipe_file}: " + "; ".join(problems))
        if cfg.recipe and cfg.recipe != recipe.name:
            raise InspectError(
                f"station.recipe is {cfg.recipe!r} but {cfg.recipe_file} defines "
                f"recipe {recipe.name!r}; remove station.recipe or make them match"
            )
        return recipe

    return find_recipe(cfg.plugin, cfg.recipe)


def build_inspector(cfg: StationConfig, recipe, registry) -> InspectorBase:
    """The recipe (given, or by name) with the station's overrides, as an Inspector."""
    if recipe is None:
        recipe = load_recipe(cfg)
    recipe = recipe.with_overrides(cfg.recipe_overrides(recipe.rules))
    try:
        return Inspector(recipe, registry.rules, threads=model_threads(cfg.threads))
    except ValueError as e:  # a rule or post-processing step that does not fit the model
        raise InspectError(
            f"station {cfg.name}: recipe {recipe.name} with the station's overrides: {e}"
        ) from e


def model_threads(configured: int = 0) -> int:
    """ONNX Runtime threads: ``station.threads``, else ``INSPECT_THREADS``, else all cores but
    one, which is left to decoding, post-processing and recording so they overlap inference
    instead of competing with it."""
    if configured:
        return configured
    env = os.environ.get("INSPECT_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) - 1)


def build_slots(
    cfg: StationConfig, sinks: dict[str, Sink | Callable[[], Sink]] | None, registry
) -> list[SinkSlot]:
    """The journaled sinks: ``sinks`` as given, else the database and [[sinks]] by name."""

    def factory_of(obj: Any) -> Callable[[], Sink]:
        return obj if callable(obj) and not hasattr(obj, "write") else (lambda: obj)

    if sinks is not None:
        return [SinkSlot(name, factory_of(s)) for name, s in sinks.items()]
    slots = []
    reg_sinks = registry.sinks
    if cfg.database:
        name = cfg.database_sink
        if name not in reg_sinks:
            raise InspectError(
                f"database sink {name!r} is not registered (is the records "
                "plugin `db` installed? see `inspect plugins`); or set "
                "[database] enabled = false"
            )
        conf = {"url": cfg.database_url} if cfg.database_url else {}
        slots.append(SinkSlot(name, lambda f=reg_sinks[name], c=conf: f(dict(c))))
    for i, spec in enumerate(cfg.sinks):
        kind = spec["type"]
        if kind not in reg_sinks:
            raise InspectError(f"sinks[{i}]: {not_registered('sink', kind, reg_sinks)}")
        conf = {k: v for k, v in spec.items() if k != "type"}
        slots.append(SinkSlot(f"sinks[{i}]:{kind}", lambda f=reg_sinks[kind], c=conf: f(dict(c))))
    return slots


def build_source(cfg: StationConfig, context: SourceContext, registry_fn) -> Source:
    """The source ``[source] type`` names, found in the registry (``registry_fn()``) as a
    plugin's is: the built-in folder and camera sources are registered by the station plugin
    (:mod:`inspect_stations.plugin`) through the same hook."""
    kind = cfg.source_type
    registry = registry_fn()
    factory = registry.sources.get(kind)
    if factory is None:
        raise InspectError(f"source.type: {not_registered('source', kind, registry.sources)}")
    return as_source(factory(dict(cfg.source), context), f"source {kind!r}")


def source_options(
    config: dict[str, Any],
    context: SourceContext,
    read: Callable[[dict[str, Any], Path], tuple[Options, list[Problem]]],
) -> Options:
    """A source's options from its raw [source] table, read by ``read(table, base)``
    (``config_tables.folder_options``...), relative paths from the station file's folder;
    every problem at once, as a ConfigError."""
    return read_alone(read, config, context.base)


def as_source(obj: Any, what: str) -> Source:
    """``obj`` as a full :class:`Source`: a :class:`BaseSource` as it is; an object written
    without it (``items``, ``done``, ``close``) with the defaults for what it lacks."""
    if isinstance(obj, BaseSource):
        return obj
    if not callable(getattr(obj, "items", None)):
        raise InspectError(
            f"{what}: {type(obj).__name__} has no items() method, so it is not a source; "
            "derive it from inspect_core.plugin_api.interfaces.BaseSource and write items()"
        )
    return _Adapted(obj)


class _Adapted(BaseSource):
    """A source object that does not derive from :class:`BaseSource`: its own methods where
    it has them, the defaults where not."""

    def __init__(self, inner: Any):
        self.inner = inner
        for name in ("destination", "done", "release", "close"):
            method = getattr(inner, name, None)
            if callable(method):
                setattr(self, name, method)

    def items(self) -> Iterator[SourceItem]:
        return self.inner.items()

    @property
    def queue_depth(self) -> int:  # type: ignore[override]
        return int(getattr(self.inner, "queue_depth", 0) or 0)


def config_base(cfg: StationConfig) -> Path:
    """The folder the configuration's relative paths start from (its file's)."""
    if cfg.base is not None:
        return cfg.base
    return Path(cfg.path).resolve().parent if cfg.path else Path.cwd()
