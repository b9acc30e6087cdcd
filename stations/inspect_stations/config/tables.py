"""Reading each table of a station TOML file into its model (:mod:`.config_types`).

Every reader validates its table with :func:`inspect_core.config.lenient` and returns the
problems it found with their keys; a wrong value is reported and its default used, so one pass
finds every problem. The order of the tables and the checks that need several of them are in
:mod:`inspect_stations.config.station`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspect_core.config import Problem, lenient
from inspect_stations.config.mqtt import mqtt_sink_options
from inspect_stations.config.toml_reader import absolute_sqlite
from inspect_stations.config.types import (
    ArchiveSettings,
    CameraOptions,
    DatabaseSettings,
    FolderOptions,
    ModelOptions,
    OverridesSettings,
    StationConfig,
    StationSettings,
)

Problems = list[Problem]
# the source types read here for `station check` (a plugin's source reads its own table)
SOURCE_OPTIONS: dict[str, type[FolderOptions] | type[CameraOptions]] = {
    "folder": FolderOptions,
    "camera": CameraOptions,
}
OVERRIDE_KEYS = set(OverridesSettings.model_fields)


def station_table(
    st: dict[str, Any], base: Path, path: Path | None, out: Problems
) -> StationConfig:
    """``[station]``: the name, the plugin and recipe (or a recipe file), the state folder."""
    s, problems = lenient(StationSettings, st, "station", {"base": base}, {"name": ""})
    out += problems
    if not s.recipe_file:
        for key, hint in (
            ("plugin", "the plugin or domain, see `inspect plugins`"),
            ("recipe", ""),
        ):
            if key not in st:
                out.append((f"station.{key}", "required" + (f" ({hint})" if hint else "")))
    plugin = s.plugin or ("local" if s.recipe_file else "")
    return StationConfig.model_construct(**{**dict(s), "plugin": plugin, "path": path})


def read_state_dir(st: dict[str, Any], base: Path, out: Problems) -> Path:
    """``station.state_dir``: the journal and status.json (relative to the file's folder)."""
    s, problems = lenient(StationSettings, {"name": "x", **st}, "station", {"base": base})
    out += [p for p in problems if p[0] == "station.state_dir"]
    return s.state_dir


def overrides_table(ov: dict[str, Any], out: Problems) -> dict[str, Any]:
    """``[overrides]``: kept as given for ``Recipe.with_overrides``; the shapes checked here."""
    _, problems = lenient(OverridesSettings, ov, "overrides")
    out += problems
    for key in ("rules", "postprocess", "add_rules"):
        for i, spec in enumerate(ov.get(key) or []):
            if isinstance(spec, dict) and "type" not in spec:
                example = "min_area" if key.endswith("rules") else "open"
                out.append((f"overrides.{key}[{i}].type", f'required (e.g. type = "{example}")'))
    return dict(ov)


def source_table(src: dict[str, Any], base: Path, cfg: StationConfig, out: Problems) -> None:
    """``[source]``: kept as given (its source reads it), and read here for the built-in
    folder and camera sources, so that `station check` reports their keys."""
    cfg.source = dict(src)
    kind = src.get("type", "folder")
    if not isinstance(kind, str) or not kind.strip():
        out.append(("source.type", f"must be a non-empty string, got {kind!r}"))
        kind = "folder"
    cfg.source_type = kind
    if kind == "folder":
        cfg.folder, problems = folder_options(src, base)
    elif kind == "camera":
        cfg.camera, problems = camera_options(src, base)
    else:
        problems = []
    out += problems


def folder_options(src: dict[str, Any], base: Path) -> tuple[FolderOptions, Problems]:
    """A folder source's table: the watched folder and how files are taken from it."""
    return lenient(FolderOptions, src, "source", {"base": base}, {"path": "."})


def camera_options(src: dict[str, Any], base: Path) -> tuple[CameraOptions, Problems]:
    """A camera's table: exactly one of ``device`` and ``url``; a file URL made absolute."""
    c, problems = lenient(CameraOptions, src, "source", {"base": base})
    if (c.device is None) == (c.url is None) and not any(k == "source.url" for k, _ in problems):
        problems.append(
            (
                "source.device",
                "give exactly one of source.device (a camera index, e.g. 0) "
                "or source.url (a video file or rtsp:// URL)",
            )
        )
    elif c.url is not None and "://" not in c.url:
        p = Path(os.path.expanduser(c.url))
        c.url = str(p if p.is_absolute() else base / p)
    return c, problems


def database_table(db: dict[str, Any], base: Path, cfg: StationConfig, out: Problems) -> None:
    """``[database]``: whether results are recorded, by which sink, at which URL."""
    d, problems = lenient(DatabaseSettings, db, "database")
    out += problems
    cfg.database, cfg.database_sink = d.enabled, d.sink
    url = d.url
    if url is not None and not url.strip():
        out.append(("database.url", f"must not be empty, got {url!r}"))
        url = None
    if url is not None:
        url = absolute_sqlite(url, base)
        if "://" not in url:
            out.append(
                (
                    "database.url",
                    f"{url!r} is not a database URL; give e.g. "
                    "sqlite:///inspect.db or postgresql://user@host:5432/db",
                )
            )
    cfg.database_url = url


def model_table(m: dict[str, Any], cfg: StationConfig, out: Problems) -> ModelOptions:
    """``[model]``: the model registry the station follows, and how often it asks. Without a
    database there is no ``sql`` registry to follow: the recipe's own file runs."""
    opts, problems = lenient(ModelOptions, m, "model")
    out += problems
    if "follow" not in m and not cfg.database:
        opts.follow = "none"
    elif opts.follow == "sql" and not cfg.database and "follow" in m:
        out.append(
            (
                "model.follow",
                '"sql" follows the model registry in the station\'s database, but '
                'database.enabled is false; enable the database or set follow = "none"',
            )
        )
    return opts


def archive_table(ar: dict[str, Any], base: Path, cfg: StationConfig, out: Problems) -> None:
    """``[archive]``: where inspected images are filed, and where refused ones go."""
    a, problems = lenient(ArchiveSettings, ar, "archive", {"base": base})
    out += problems
    cfg.archive, cfg.quarantine, cfg.overlays = a.path, a.quarantine, a.overlays


def sinks_array(sinks: Any, base: Path, out: Problems) -> list[dict[str, Any]]:
    """``[[sinks]]``: each table as given (its sink reads it), with its ``type`` checked."""
    if not isinstance(sinks, list) or not all(isinstance(s, dict) for s in sinks):
        out.append(("sinks", "must be an array of tables ([[sinks]] with a type)"))
        return []
    return [_sink(i, s, base, out) for i, s in enumerate(sinks)]


def _sink(i: int, s: dict[str, Any], base: Path, out: Problems) -> dict[str, Any]:
    """An mqtt sink's keys are checked here (so `station check` reports them) and its
    certificate paths made absolute (relative to this file)."""
    s = dict(s)
    if not isinstance(s.get("type"), str) or not s.get("type"):
        out.append((f"sinks[{i}].type", 'required (the name of a registered sink, e.g. "mqtt")'))
    elif s["type"] == "mqtt":
        opts, problems = mqtt_sink_options(s, base, f"sinks[{i}]")
        out += problems
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(opts.mqtt, key) is not None:
                s[key] = str(getattr(opts.mqtt, key))
    return s
