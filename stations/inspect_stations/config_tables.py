"""Reading each table of a station TOML file into its dataclass (:mod:`.config_types`).

Every reader takes its table and a :class:`Reader` that collects each problem with its key; a
wrong value is reported and its default used, so one pass finds every problem. The order of
the tables and the checks that need several of them are in :mod:`inspect_stations.config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspect_stations.config_types import (
    SIXTEEN_BIT,
    CameraOptions,
    FolderOptions,
    Limits,
    ModelOptions,
    StationConfig,
)
from inspect_stations.mqttconf import mqtt_sink_options
from inspect_stations.toml_reader import (
    REQUIRED,
    Reader,
    absolute_sqlite,
    expand_env,
    name_ok,
    nonempty,
    nonneg,
    one_of,
    positive,
)

# key: (type, check) of the keys read the same way: the default is the dataclass field's
STATION_SPEC = {
    "batch": (int, positive),
    "threads": (int, nonneg),
    "workers": (int, lambda v: None if 0 <= v <= 64 else "must be 0 (one per core) to 64"),
    "journal_retry_s": (float, positive),
    "flush_timeout_s": (float, nonneg),
    "until_empty": (bool, None),
    "log_json": (bool, None),
}
FOLDER_SPEC = {
    "after": (str, one_of("archive", "leave")),
    "stable_s": (float, nonneg),
    "poll_s": (float, positive),
    "max_pending": (int, positive),
}
CAMERA_SPEC = {
    "device": (int, nonneg),
    "url": (str, nonempty),
    "trigger": (str, one_of("interval", "mqtt", "motion")),
    "interval_ms": (int, positive),
    "motion_threshold": (float, lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
    "motion_delta": (int, lambda v: None if 0 < v < 256 else "must be in 1..255"),
    "motion_cooldown_ms": (int, nonneg),
    "loop": (bool, None),
    "max_frames": (int, nonneg),
    "reconnect_s": (float, positive),
    "trigger_max_age_ms": (int, positive),
    "frame_max_age_ms": (int, nonneg),
    "width": (int, nonneg),
    "height": (int, nonneg),
}
LIMITS_SPEC = {
    "max_pixels": (int, positive),
    "max_bytes": (int, positive),
    "sixteen_bit": (str, one_of(*SIXTEEN_BIT)),
    "max_work_mpx": (float, positive),
}
STATION_KEYS = {"name", "plugin", "recipe", "recipe_file", "state_dir", *STATION_SPEC}
OVERRIDE_KEYS = {
    "pixel_size_mm",
    "tile",
    "tile_overlap",
    "region_classes",
    "coverage_classes",
    "rules",
    "postprocess",
    "rule_params",
    "add_rules",
}


def station_table(st: dict, r: Reader, path: Path | None) -> StationConfig:
    """``[station]``: the name, the plugin and recipe (or a recipe file), the state folder."""
    r.unknown(st, "station", STATION_KEYS)
    name = r.get(st, "station", "name", str, REQUIRED, name_ok, 'e.g. name = "line1-steel"')
    recipe_file = r.path(st, "station", "recipe_file", None)
    plugin = r.get(
        st,
        "station",
        "plugin",
        str,
        "local" if recipe_file else REQUIRED,
        nonempty,
        "the plugin or domain, see `inspect plugins`",
    )
    recipe = r.get(st, "station", "recipe", str, "" if recipe_file else REQUIRED, nonempty)
    cfg = StationConfig(
        name=name or "",
        plugin=plugin or "",
        recipe=recipe or "",
        path=path,
        recipe_file=recipe_file,
    )
    cfg.state_dir = read_state_dir(st, r)
    return r.fill(cfg, st, "station", STATION_SPEC)


def read_state_dir(st: dict, r: Reader) -> Path:
    """``station.state_dir``: the journal and status.json (relative to the file's folder)."""
    return r.path(st, "station", "state_dir", "state")


def overrides_table(ov: dict, r: Reader) -> dict[str, Any]:
    """``[overrides]``: kept as given for ``Recipe.with_overrides``; the shapes checked here."""
    r.unknown(ov, "overrides", OVERRIDE_KEYS)
    for key in ("rules", "postprocess", "add_rules"):
        if key in ov:
            _check_specs(ov[key], f"overrides.{key}", r)
    rp = ov.get("rule_params", {})
    if not isinstance(rp, dict) or not all(isinstance(v, dict) for v in rp.values()):
        r.err(
            "overrides.rule_params",
            "must be tables by rule name, e.g. [overrides.rule_params.min_area] min = 60",
        )
    r.get(ov, "overrides", "pixel_size_mm", float, None, positive)
    r.get(ov, "overrides", "tile", int, None, nonneg)
    r.get(
        ov,
        "overrides",
        "tile_overlap",
        float,
        None,
        lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
    )
    for key in ("region_classes", "coverage_classes"):
        v = ov.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(c, str) for c in v)):
            r.err(f"overrides.{key}", f"must be a list of class names, got {v!r}")
    return dict(ov)


def _check_specs(v: Any, key: str, r: Reader) -> None:
    """An array of tables, each with a ``type`` (rules, post-processing steps)."""
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        r.err(key, f"must be an array of tables ([[{key}]])")
        return
    for i, spec in enumerate(v):
        if "type" not in spec:
            example = "min_area" if key.endswith("rules") else "open"
            r.err(f"{key}[{i}].type", f'required (e.g. type = "{example}")')


def folder_options(src: dict, r: Reader) -> FolderOptions:
    """``[source] type = "folder"``: the watched folder and how files are taken from it."""
    r.unknown(src, "source", {"type", "path", *FOLDER_SPEC})
    path = r.path(src, "source", "path", REQUIRED)
    return r.fill(FolderOptions(path=path or Path(".")), src, "source", FOLDER_SPEC)


def camera_options(src: dict, r: Reader) -> CameraOptions:
    """``[source] type = "camera"``: a camera index or a video/stream URL, and its trigger."""
    r.unknown(src, "source", {"type", *CAMERA_SPEC})
    c = r.fill(CameraOptions(), src, "source", CAMERA_SPEC)
    if (c.device is None) == (c.url is None):
        r.err(
            "source.device",
            "give exactly one of source.device (a camera index, e.g. 0) "
            "or source.url (a video file or rtsp:// URL)",
        )
    elif c.url is not None and "://" in c.url:
        c.url = expand_env(c.url, "source.url", r)  # rtsp://admin:${CAMERA_PASSWORD}@...
    elif c.url is not None:
        p = Path(os.path.expanduser(c.url))
        c.url = str(p if p.is_absolute() else r.base / p)
    return c


def database_table(db: dict, r: Reader, cfg: StationConfig) -> None:
    """``[database]``: whether results are recorded, by which sink, at which URL."""
    r.unknown(db, "database", {"url", "enabled", "sink"})
    cfg.database = r.get(db, "database", "enabled", bool, True)
    cfg.database_sink = r.get(db, "database", "sink", str, "sql", nonempty)
    url = r.get(db, "database", "url", str, None, nonempty)
    if url is not None:
        url = absolute_sqlite(expand_env(url, "database.url", r), r.base)
        if "://" not in url:
            r.err(
                "database.url",
                f"{url!r} is not a database URL; give e.g. "
                "sqlite:///inspect.db or postgresql://user@host:5432/db",
            )
    cfg.database_url = url


def model_table(m: dict, r: Reader, cfg: StationConfig) -> ModelOptions:
    """``[model]``: the model registry the station follows, and how often it asks. Without a
    database there is no ``sql`` registry to follow: the recipe's own file runs."""
    r.unknown(m, "model", {"follow", "check_s"})
    default = "sql" if cfg.database else "none"
    follow = r.get(m, "model", "follow", str, default, nonempty)
    if follow == "sql" and not cfg.database and "follow" in m:
        r.err(
            "model.follow",
            '"sql" follows the model registry in the station\'s database, but '
            'database.enabled is false; enable the database or set follow = "none"',
        )
    check_s = r.get(m, "model", "check_s", float, 10.0, nonneg)
    return ModelOptions(follow, check_s)


def archive_table(ar: dict, r: Reader, cfg: StationConfig) -> None:
    """``[archive]``: where inspected images are filed, and where refused ones go."""
    r.unknown(ar, "archive", {"path", "quarantine", "overlays"})
    cfg.archive = r.path(ar, "archive", "path", "archive")
    cfg.quarantine = r.path(ar, "archive", "quarantine", "quarantine")
    cfg.overlays = r.get(ar, "archive", "overlays", bool, False)


def limits_table(lim: dict, r: Reader) -> Limits:
    """``[limits]``: what an image may be (size, bytes, extensions, bit depth, model work)."""
    r.unknown(lim, "limits", {"extensions", *LIMITS_SPEC})
    out = r.fill(Limits(), lim, "limits", LIMITS_SPEC)
    exts = r.get(lim, "limits", "extensions", list, None)
    if exts is not None:
        if not exts or not all(isinstance(e, str) and e.startswith(".") for e in exts):
            r.err("limits.extensions", f'must be a list like [".png", ".jpg"], got {exts!r}')
        else:
            out.extensions = [e.lower() for e in exts]
    return out


def sinks_array(sinks: Any, r: Reader) -> list[dict[str, Any]]:
    """``[[sinks]]``: each table as given (its sink reads it), with its ``type`` checked."""
    if not isinstance(sinks, list) or not all(isinstance(s, dict) for s in sinks):
        r.err("sinks", "must be an array of tables ([[sinks]] with a type)")
        return []
    return [_sink(i, s, r) for i, s in enumerate(sinks)]


def _sink(i: int, s: dict, r: Reader) -> dict[str, Any]:
    """An mqtt sink's keys are checked here (so `station check` reports them) and its
    certificate paths made absolute (relative to this file)."""
    s = dict(s)
    if not isinstance(s.get("type"), str) or not s.get("type"):
        r.err(f"sinks[{i}].type", 'required (the name of a registered sink, e.g. "mqtt")')
    elif s["type"] == "mqtt":
        opt = mqtt_sink_options(s, r, f"sinks[{i}]").mqtt
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(opt, key) is not None:
                s[key] = str(getattr(opt, key))
    return s
