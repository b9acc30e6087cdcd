"""Station configuration: a TOML file, parsed into dataclasses, every problem reported with its key.

Every key, with its default and meaning, is in ``inspect_stations/example.toml`` (a test parses
it, so it stays true). Relative paths are relative to the file's folder; ``${VAR}`` in the
database URL reads the environment, so passwords stay out of the file.

This module reads a file table by table (:mod:`.config_tables`) into the dataclasses of
:mod:`.config_types`, and checks what needs several tables at once (folders, MQTT triggers).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspect_core.cards import MAX_SMALL_FILE, read_small_file
from inspect_core.config import Problem, did_you_mean, lenient
from inspect_stations.config.drift import DriftOptions
from inspect_stations.config.mqtt import MqttOptions, mqtt_options
from inspect_stations.config.paths import check_folders, check_inbox_contents
from inspect_stations.config.tables import (
    archive_table,
    database_table,
    model_table,
    overrides_table,
    read_state_dir,
    sinks_array,
    source_table,
    station_table,
)
from inspect_stations.config.toml_reader import ConfigError
from inspect_stations.config.types import (
    CameraOptions,
    FolderOptions,
    Limits,
    StationConfig,
)
from inspect_stations.mqtt.topics import check_trigger_loops

Err = Callable[[str, str], None]

__all__ = [
    "ConfigError",
    "StationConfig",
    "FolderOptions",
    "CameraOptions",
    "MqttOptions",
    "Limits",
    "load_config",
    "read_toml",
    "parse_config",
    "parse_lenient",
    "shortcut_config",
    "state_dir_of",
]

TABLES = {
    "station",
    "overrides",
    "source",
    "database",
    "archive",
    "limits",
    "model",
    "mqtt",
    "sinks",
    "drift",
}


def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station TOML file; raises :class:`ConfigError` listing all problems."""
    path = Path(path)
    raw = read_toml(path)
    return parse_config(raw, path.resolve().parent, path=path)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file; :class:`ConfigError` when it cannot be read or parsed. Only
    a regular file of at most 1 MB is read: a device (``/dev/zero``) or a FIFO given by mistake
    is refused at once instead of being read until memory runs out, or forever."""
    path = Path(path)
    try:
        text = read_small_file(path, MAX_SMALL_FILE).decode("utf-8")
    except OSError as e:
        raise ConfigError(
            [("", f"cannot read the file ({e.strerror or e}); a station config is a TOML file")],
            path,
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigError([("", f"not UTF-8 text ({e}); save it as UTF-8")], path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("", f"not valid TOML: {e}")], path) from None


def state_dir_of(path: str | Path) -> Path:
    """The state folder a config file names, reading nothing else of it: ``inspect station
    status`` and ``replay`` work while the rest of the file has problems (an inbox the station
    now refuses, a key it does not know), so the operator can always see what the station did."""
    path = Path(path)
    raw = read_toml(path)
    problems: list[Problem] = []
    st = raw.get("station")
    folder = read_state_dir(st if isinstance(st, dict) else {}, path.resolve().parent, problems)
    if problems:
        raise ConfigError(problems, path)
    return folder


def parse_config(raw: dict[str, Any], base: Path, path: Path | None = None) -> StationConfig:
    """Validate a config dict (TOML tables); relative paths resolve against ``base``."""
    cfg, problems = parse_lenient(raw, base, path)
    if problems:
        raise ConfigError(problems, path)
    return cfg


def parse_lenient(
    raw: dict[str, Any], base: Path, path: Path | None = None
) -> tuple[StationConfig, list[Problem]]:
    """The config with defaults where values are wrong, and the list of problems."""
    base, out = Path(base), []
    for k in sorted(set(raw) - TABLES):
        hint = did_you_mean(k, TABLES)
        known = f"did you mean {hint!r}?" if hint else f"known keys: {', '.join(sorted(TABLES))}"
        out.append((k, f"unknown key; {known}"))
    cfg = station_table(_table(raw, "station", out, required=True), base, path, out)
    cfg.base = base
    cfg.overrides = overrides_table(_table(raw, "overrides", out), out)
    source_table(_table(raw, "source", out, required=True), base, cfg, out)
    database_table(_table(raw, "database", out), base, cfg, out)
    cfg.model = model_table(_table(raw, "model", out), cfg, out)
    archive_table(_table(raw, "archive", out), base, cfg, out)
    cfg.limits, problems = lenient(Limits, _table(raw, "limits", out), "limits", {"base": base})
    out += problems
    cfg.drift, problems = lenient(DriftOptions, _table(raw, "drift", out), "drift")
    out += problems
    if "mqtt" in raw:
        cfg.mqtt, problems = mqtt_options(_table(raw, "mqtt", out), base)
        out += problems
    cfg.sinks = sinks_array(raw.get("sinks", []), base, out)
    _cross_checks(cfg, out)
    return cfg, out


def _table(
    raw: dict[str, Any], key: str, out: list[Problem], required: bool = False
) -> dict[str, Any]:
    v = raw.get(key)
    if v is None:
        if required:
            out.append((key, f"missing [{key}] table"))
        return {}
    if not isinstance(v, dict):
        out.append((key, f"must be a table ([{key}]), got {type(v).__name__}"))
        return {}
    return v


def _cross_checks(cfg: StationConfig, out: list[Problem]) -> None:
    """What needs several tables: system folders, the inbox, MQTT triggers (and a trigger topic
    that would match the station's own results)."""

    def err(key: str, message: str) -> None:
        out.append((key, message))

    folder = cfg.folder if not any(k == "source.path" for k, _ in out) else None
    own = [("archive.path", cfg.archive), ("archive.quarantine", cfg.quarantine)]
    inbox = [("source.path", folder.path)] if folder else []
    check_folders(inbox + own + [("station.state_dir", cfg.state_dir)], err)
    if folder is not None:
        _check_inbox_overlap(cfg, folder, err)
        check_inbox_contents(folder.path, cfg.limits.extensions, folder.after == "archive", err)
    if cfg.camera is not None and cfg.camera.trigger == "mqtt":
        if cfg.mqtt is None or not cfg.mqtt.trigger_topic:
            err(
                "mqtt.trigger_topic",
                'required when source.trigger = "mqtt" (add an [mqtt] table with trigger_topic)',
            )
    check_trigger_loops(cfg.mqtt, cfg.sinks, err)


def _check_inbox_overlap(cfg: StationConfig, folder: FolderOptions, err: Err) -> None:
    """Nothing of the station's own may sit in the watched folder: it would be taken for an
    image, refused and moved to quarantine (the journal, the database, this very file).
    Sub-folders of the inbox are fine: they are not watched."""
    inbox = os.path.realpath(folder.path)
    what = "moved to quarantine" if folder.after == "archive" else "inspected as an image"
    for key, own in (
        ("station.state_dir", cfg.state_dir),
        ("archive.path", cfg.archive),
        ("archive.quarantine", cfg.quarantine),
    ):
        if os.path.realpath(own) == inbox:
            err(
                key,
                f"is the watched folder itself ({folder.path}): the files the "
                f"station keeps there would be {what}; give it a folder of its own (a "
                "sub-folder of the inbox is fine: sub-folders are not watched)",
            )
    url = cfg.database_url or ""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        db = Path(url[len("sqlite:///") :].split("?", 1)[0])
        if os.path.realpath(db.parent) == inbox:
            err(
                "database.url",
                f"the SQLite file {db} is in the watched folder: it would be "
                f"{what}; put it elsewhere (e.g. in station.state_dir)",
            )
    if cfg.path is not None and os.path.realpath(Path(cfg.path).parent) == inbox:
        err(
            "source.path",
            f"the watched folder {folder.path} holds this configuration "
            f"file, which would be {what}; watch another folder or keep the "
            "configuration elsewhere",
        )


def shortcut_config(
    plugin: str,
    recipe: str,
    watch: str | Path,
    db: str | None = None,
    name: str | None = None,
    archive: str | Path | None = None,
    state_dir: str | Path | None = None,
    stable_s: float = 1.0,
    after: str = "archive",
) -> StationConfig:
    """The config of ``inspect station run --plugin P --recipe R --watch DIR [--db URL]``:
    archive, quarantine and state folders beside the watched folder unless given."""
    watch = Path(watch).resolve()
    name = name or f"{plugin}-{recipe}"
    raw: dict[str, Any] = {
        "station": {
            "name": name,
            "plugin": plugin,
            "recipe": recipe,
            "state_dir": str(state_dir or watch.parent / f".station-{name}"),
        },
        "source": {"type": "folder", "path": str(watch), "stable_s": stable_s, "after": after},
        "archive": {
            "path": str(archive or watch.parent / "archive"),
            "quarantine": str(watch.parent / "quarantine"),
        },
    }
    if db:
        raw["database"] = {"url": db}
    return parse_config(raw, Path.cwd())
