"""``inspect station check``: everything that can be verified without running the line.

:func:`load_config` already reports structural problems (types, unknown keys, missing keys);
:func:`deep_check` adds what needs the installed plugins and the file system: the plugin and
recipe exist, the overrides fit the recipe and its model, folders exist or can be created, the
database and source types are registered, optional packages are installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Set
from pathlib import Path

from inspect_core.config import not_registered
from inspect_core.errors import InspectError, ModelError
from inspect_core.plugin_api.manager import Registry, get_registry
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.recipe import Recipe
from inspect_stations.builders import load_recipe
from inspect_stations.config.station import ConfigError, StationConfig, parse_lenient, read_toml
from inspect_stations.mqtt.topics import check_trigger_loops


def _writable_dir(p: Path) -> str | None:
    """None when ``p`` exists as a writable folder or can be created; else why not."""
    p = Path(p)
    if p.exists():
        if not p.is_dir():
            return f"{p} exists but is not a folder"
        return None if os.access(p, os.W_OK | os.X_OK) else f"folder {p} is not writable"
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"folder {p} does not exist and cannot be created ({parent} is not writable)"
    return None


Add = Callable[[str, str], None]


def deep_check(
    cfg: StationConfig,
    registry: Registry | None = None,
    load_model: bool = True,
    skip: Set[str] = frozenset(),
) -> list[tuple[str, str]]:
    """Problems found with the installed plugins and the file system; ``skip``: keys already
    reported (their checks are left out)."""
    reg = registry or get_registry()
    problems: list[tuple[str, str]] = []

    def add(key: str, message: str) -> None:
        problems.append((key, message))

    recipe = _find_recipe(cfg, skip, add)
    if recipe is not None:
        _check_recipe(cfg, recipe, reg, load_model, skip, add)
    _check_source(cfg, reg, add)
    if cfg.database:
        _check_database(cfg, reg, add)
    for key, p in (
        ("archive.path", cfg.archive),
        ("archive.quarantine", cfg.quarantine),
        ("station.state_dir", cfg.state_dir),
    ):
        why = _writable_dir(p)
        if why:
            add(key, why)
    _check_mqtt_and_sinks(cfg, reg, add)
    return problems


def _find_recipe(cfg: StationConfig, skip: Set[str], add: Add) -> Recipe | None:
    """The station's recipe (its own file, or the plugin's), or None when it cannot be had."""
    if cfg.recipe_file is not None and "station.recipe_file" not in skip:
        try:
            return load_recipe(cfg)
        except InspectError as e:
            add("station.recipe_file", str(e))
    elif cfg.plugin and cfg.recipe and not skip & {"station.plugin", "station.recipe"}:
        try:
            return find_recipe(cfg.plugin, cfg.recipe)
        except InspectError as e:
            add("station.recipe" if "has no recipe" in str(e) else "station.plugin", str(e))
    return None


def _check_source(cfg: StationConfig, reg: Registry, add: Add) -> None:
    """The watched folder can be read (and emptied), a video file exists, a plugin's source
    type is registered."""
    if cfg.source_type == "folder" and cfg.folder is not None:
        p = cfg.folder.path
        if not p.is_dir():
            add("source.path", f"watched folder {p} does not exist; create it or fix the path")
        elif not os.access(p, os.R_OK | os.X_OK):
            add("source.path", f"watched folder {p} is not readable")
        elif cfg.folder.after == "archive" and not os.access(p, os.W_OK):
            add(
                "source.path",
                f"watched folder {p} is not writable, so files cannot be moved "
                'to the archive; fix its permissions or set source.after = "leave"',
            )
        if cfg.mqtt is not None and cfg.mqtt.trigger_topic:
            add(
                "mqtt.trigger_topic",
                "a folder station takes no triggers (it inspects files as "
                "they arrive); remove it, or use a camera source",
            )
    elif cfg.source_type == "camera" and cfg.camera is not None:
        u = cfg.camera.url
        if u is not None and "://" not in u and not Path(u).is_file():
            add("source.url", f"video file {u} not found")
    elif cfg.source_type not in reg.sources:
        add("source.type", not_registered("source", cfg.source_type, reg.sources))


def _check_database(cfg: StationConfig, reg: Registry, add: Add) -> None:
    """The records sink is installed, and the database URL is one it can use."""
    if cfg.database_sink not in reg.sinks:
        add(
            "database.sink",
            f"sink {cfg.database_sink!r} is not registered (is the records "
            "plugin `db` installed? see `inspect plugins`), or set "
            "[database] enabled = false",
        )
    url = cfg.database_url or os.environ.get("INSPECT_DATABASE_URL") or "sqlite:///inspect.db"
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        add(
            "database.url",
            f"{scheme}:// is not supported; use sqlite:///FILE or postgresql://user@host:5432/db",
        )
    elif scheme != "sqlite" and importlib.util.find_spec("psycopg") is None:
        add("database.url", "PostgreSQL needs psycopg 3: pip install 'inspect-db[postgres]'")
    elif scheme == "sqlite" and url.startswith("sqlite:///") and ":memory:" not in url:
        why = _writable_dir(Path(url[len("sqlite:///") :]).parent)
        if why:
            add("database.url", why)


def _check_mqtt_and_sinks(cfg: StationConfig, reg: Registry, add: Add) -> None:
    """paho-mqtt is installed when MQTT is used, [mqtt] has a topic that cannot trigger the
    station on its own results, every sink is registered."""
    uses_mqtt = cfg.mqtt is not None or any(s.get("type") == "mqtt" for s in cfg.sinks)
    if uses_mqtt and importlib.util.find_spec("paho") is None:
        add("mqtt", "MQTT needs the paho-mqtt package: pip install 'inspect-stations[mqtt]'")
    if cfg.mqtt is not None and not (cfg.mqtt.trigger_topic or cfg.mqtt.result_topic):
        add("mqtt", "give mqtt.trigger_topic and/or mqtt.result_topic, or remove [mqtt]")
    check_trigger_loops(cfg.mqtt, cfg.sinks, add)
    for i, s in enumerate(cfg.sinks):
        if s.get("type") not in reg.sinks:
            add(f"sinks[{i}].type", not_registered("sink", s.get("type"), reg.sinks))


def _check_recipe(
    cfg: StationConfig, recipe: Recipe, reg: Registry, load_model: bool, skip: Set[str], add: Add
) -> None:
    """The model is the file its card describes, and the overrides fit the recipe and model."""
    key = "station.recipe_file" if cfg.recipe_file is not None else "station.recipe"
    if load_model:
        try:  # also when the overrides cannot be checked: a tampered model is always reported
            recipe.check_model()
        except ModelError as e:
            add(key, f"recipe {recipe.name}: {e}")
            return
    if any(k.startswith("overrides") for k in skip):
        return
    try:
        tuned = recipe.with_overrides(cfg.recipe_overrides(recipe.rules))
    except InspectError as e:
        add("overrides", str(e))
        return
    if load_model:
        try:
            Inspector(tuned, reg.rules)
        except ModelError as e:  # unreadable, no metadata...
            add(key, f"recipe {recipe.name}: {e}")
        except (InspectError, ValueError, TypeError, KeyError) as e:
            add(
                "overrides",
                f"recipe {recipe.name} with these overrides does not work with its model: {e}",
            )


def check_file(
    path: str | Path, registry: Registry | None = None
) -> tuple[StationConfig | None, list[tuple[str, str]]]:
    """(config or None, every problem) for a config file: structural problems first, then the
    deeper checks for the parts that parsed."""
    try:
        raw = read_toml(path)
    except ConfigError as e:
        return None, e.problems
    path = Path(path)
    cfg, problems = parse_lenient(raw, path.resolve().parent, path)
    bad = {k for k, _ in problems}
    deep = deep_check(cfg, registry, skip=bad)
    problems += [(k, m) for k, m in deep if k not in bad]
    return cfg, problems
