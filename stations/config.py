"""Station configuration: a TOML file, parsed into dataclasses, every problem reported with its key.

Every key, with its default and meaning, is in ``stations/example.toml`` (a test parses it, so it
stays true). Relative paths are relative to the file's folder; ``${VAR}`` in the database URL
reads the environment, so passwords stay out of the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_core.errors import InspectError
from inspect_stations.mqttconf import MqttOptions, mqtt_options, mqtt_sink_options
from inspect_stations.paths import check_folders, check_inbox_contents
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

__all__ = [
    "ConfigError",
    "StationConfig",
    "FolderOptions",
    "CameraOptions",
    "MqttOptions",
    "Limits",
    "load_config",
    "parse_config",
    "parse_lenient",
    "shortcut_config",
]

IMAGE_EXTS = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]
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


class ConfigError(InspectError):
    """A station configuration has problems; ``problems`` lists (key, message) pairs."""

    multiline = True  # one problem a line: `inspect` keeps the newlines (and escapes the rest)

    def __init__(self, problems: list[tuple[str, str]], path: str | Path | None = None):
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        lines = "\n".join(f"  {k}: {m}" if k else f"  {m}" for k, m in problems)
        n = len(problems)
        super().__init__(
            f"{where}{n} problem{'s' if n != 1 else ''} in the station configuration:\n{lines}"
        )


@dataclass
class FolderOptions:
    path: Path
    after: str = "archive"  # "archive" | "leave"
    stable_s: float = 1.0
    poll_s: float = 0.5
    max_pending: int = 512  # files watched for stability at once (bounds memory)


@dataclass
class CameraOptions:
    device: int | None = None
    url: str | None = None  # a video file or a stream URL (rtsp://, http://)
    trigger: str = "interval"  # "interval" | "mqtt" | "motion"
    interval_ms: int = 1000
    motion_threshold: float = 0.02  # share of pixels that must change
    motion_delta: int = 25  # grey-level change that counts as changed
    motion_cooldown_ms: int = 1000
    loop: bool = False  # replay a video file from the start when it ends
    max_frames: int = 0  # stop after this many captures (0 = no limit)
    reconnect_s: float = 2.0
    width: int = 0
    height: int = 0


@dataclass
class Limits:
    max_pixels: int = 50_000_000
    max_bytes: int = 256 * 1024 * 1024
    extensions: list[str] = field(default_factory=lambda: list(IMAGE_EXTS))
    sixteen_bit: str = "refuse"  # "refuse" | "scale" (x / 257)
    # the model's work per image in megapixels: tiles x tile area x test-time copies
    # (stations.image_check.check_work; 64 = 3x the largest shipped validation image)
    max_work_mpx: float = 64.0


@dataclass
class StationConfig:
    name: str
    plugin: str
    recipe: str
    source_type: str = "folder"
    source: dict[str, Any] = field(default_factory=dict)  # the raw [source] table
    folder: FolderOptions | None = None
    camera: CameraOptions | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    database: bool = True
    database_url: str | None = None  # None: INSPECT_DATABASE_URL or the db plugin's default
    database_sink: str = "sql"
    archive: Path = Path("archive")
    quarantine: Path = Path("quarantine")
    state_dir: Path = Path("state")
    overlays: bool = False
    mqtt: MqttOptions | None = None
    sinks: list[dict[str, Any]] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    batch: int = 1
    threads: int = 0  # 0: INSPECT_THREADS, else all cores but one (see assemble.model_threads)
    journal_retry_s: float = 2.0
    flush_timeout_s: float = 10.0
    until_empty: bool = False  # stop once the source has nothing more (batch jobs, demo)
    log_json: bool = False
    path: Path | None = None  # the TOML file, when loaded from one
    recipe_file: Path | None = None  # a recipe TOML of its own instead of a plugin's recipe

    def recipe_overrides(self, base_rules: list[dict]) -> dict[str, Any]:
        """The ``Recipe.with_overrides`` argument: ``add_rules`` appended to the rules."""
        o = {k: v for k, v in self.overrides.items() if k != "add_rules"}
        if self.overrides.get("add_rules"):
            o["rules"] = list(o.get("rules", base_rules)) + list(self.overrides["add_rules"])
        return o


# ---------------------------------------------------------------------------------------------
def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station TOML file; raises :class:`ConfigError` listing all problems."""
    path = Path(path)
    raw = read_toml(path)
    return parse_config(raw, path.resolve().parent, path=path)


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(
            [("", f"cannot read the file ({e.strerror or e}); check the path")], path
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("", f"not valid TOML: {e}")], path) from None


def parse_config(raw: dict[str, Any], base: Path, path: Path | None = None) -> StationConfig:
    """Validate a config dict (TOML tables); relative paths resolve against ``base``."""
    cfg, problems = parse_lenient(raw, base, path)
    if problems:
        raise ConfigError(problems, path)
    return cfg


def parse_lenient(
    raw: dict[str, Any], base: Path, path: Path | None = None
) -> tuple[StationConfig, list[tuple[str, str]]]:
    """The config with defaults where values are wrong, and the list of problems."""
    r = Reader(Path(base))
    r.unknown(
        raw,
        "",
        {"station", "overrides", "source", "database", "archive", "limits", "mqtt", "sinks"},
    )
    cfg = _station(r.table(raw, "station", required=True), r, path)
    ov = r.table(raw, "overrides")
    r.unknown(ov, "overrides", OVERRIDE_KEYS)
    _check_overrides(ov, r)
    cfg.overrides = dict(ov)

    src = r.table(raw, "source", required=True)
    cfg.source = dict(src)
    cfg.source_type = r.get(src, "source", "type", str, "folder", nonempty)
    if cfg.source_type == "folder":
        cfg.folder = folder_options(src, r)
    elif cfg.source_type == "camera":
        cfg.camera = camera_options(src, r)
    _database(r.table(raw, "database"), r, cfg)
    ar = r.table(raw, "archive")
    r.unknown(ar, "archive", {"path", "quarantine", "overlays"})
    cfg.archive = r.path(ar, "archive", "path", "archive")
    cfg.quarantine = r.path(ar, "archive", "quarantine", "quarantine")
    cfg.overlays = r.get(ar, "archive", "overlays", bool, False)
    cfg.limits = _limits(r.table(raw, "limits"), r)
    if "mqtt" in raw:
        cfg.mqtt = mqtt_options(r.table(raw, "mqtt"), r)
    sinks = raw.get("sinks", [])
    if not isinstance(sinks, list) or not all(isinstance(s, dict) for s in sinks):
        r.err("sinks", "must be an array of tables ([[sinks]] with a type)")
        sinks = []
    cfg.sinks = [_sink(i, s, r) for i, s in enumerate(sinks)]
    _cross_checks(cfg, r)
    return cfg, r.problems


def _station(st: dict, r: Reader, path: Path | None) -> StationConfig:
    r.unknown(
        st,
        "station",
        {
            "name",
            "plugin",
            "recipe",
            "recipe_file",
            "state_dir",
            "batch",
            "threads",
            "journal_retry_s",
            "flush_timeout_s",
            "until_empty",
            "log_json",
        },
    )
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
    cfg.state_dir = r.path(st, "station", "state_dir", "state")
    cfg.batch = r.get(st, "station", "batch", int, 1, positive)
    cfg.threads = r.get(st, "station", "threads", int, 0, nonneg)
    cfg.journal_retry_s = r.get(st, "station", "journal_retry_s", float, 2.0, positive)
    cfg.flush_timeout_s = r.get(st, "station", "flush_timeout_s", float, 10.0, nonneg)
    cfg.until_empty = r.get(st, "station", "until_empty", bool, False)
    cfg.log_json = r.get(st, "station", "log_json", bool, False)
    return cfg


def _database(db: dict, r: Reader, cfg: StationConfig) -> None:
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


def _limits(lim: dict, r: Reader) -> Limits:
    r.unknown(
        lim, "limits", {"max_pixels", "max_bytes", "extensions", "sixteen_bit", "max_work_mpx"}
    )
    out = Limits(
        max_pixels=r.get(lim, "limits", "max_pixels", int, 50_000_000, positive),
        max_bytes=r.get(lim, "limits", "max_bytes", int, 256 * 1024 * 1024, positive),
        sixteen_bit=r.get(lim, "limits", "sixteen_bit", str, "refuse", one_of("refuse", "scale")),
        max_work_mpx=r.get(lim, "limits", "max_work_mpx", float, 64.0, positive),
    )
    exts = r.get(lim, "limits", "extensions", list, None)
    if exts is not None:
        if not exts or not all(isinstance(e, str) and e.startswith(".") for e in exts):
            r.err("limits.extensions", f'must be a list like [".png", ".jpg"], got {exts!r}')
        else:
            out.extensions = [e.lower() for e in exts]
    return out


def _cross_checks(cfg: StationConfig, r: Reader) -> None:
    """What needs several tables: system folders, the inbox, MQTT triggers."""
    check_folders(
        (
            ("source.path", cfg.folder.path if cfg.folder else None),
            ("archive.path", cfg.archive),
            ("archive.quarantine", cfg.quarantine),
            ("station.state_dir", cfg.state_dir),
        ),
        r.err,
    )
    if cfg.folder is not None:
        _check_inbox_overlap(cfg, r)
        check_inbox_contents(
            cfg.folder.path, cfg.limits.extensions, cfg.folder.after == "archive", r.err
        )
    if cfg.camera is not None and cfg.camera.trigger == "mqtt":
        if cfg.mqtt is None or not cfg.mqtt.trigger_topic:
            r.err(
                "mqtt.trigger_topic",
                'required when source.trigger = "mqtt" (add an [mqtt] table with trigger_topic)',
            )


def _sink(i: int, s: dict, r: Reader) -> dict[str, Any]:
    """A [[sinks]] table as given; an mqtt sink's keys are checked here (so `station check`
    reports them) and its certificate paths made absolute (relative to this file)."""
    s = dict(s)
    if not isinstance(s.get("type"), str) or not s.get("type"):
        r.err(f"sinks[{i}].type", 'required (the name of a registered sink, e.g. "mqtt")')
    elif s["type"] == "mqtt":
        opt = mqtt_sink_options(s, r, f"sinks[{i}]").mqtt
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(opt, key) is not None:
                s[key] = str(getattr(opt, key))
    return s


def _check_inbox_overlap(cfg: StationConfig, r: Reader) -> None:
    """Nothing of the station's own may sit in the watched folder: it would be taken for an
    image, refused and moved to quarantine (the journal, the database, this very file).
    Sub-folders of the inbox are fine: they are not watched."""
    inbox = os.path.realpath(cfg.folder.path)
    moved = cfg.folder.after == "archive"
    what = "moved to quarantine" if moved else "inspected as an image"
    for key, folder in (
        ("station.state_dir", cfg.state_dir),
        ("archive.path", cfg.archive),
        ("archive.quarantine", cfg.quarantine),
    ):
        if os.path.realpath(folder) == inbox:
            r.err(
                key,
                f"is the watched folder itself ({cfg.folder.path}): the files the "
                f"station keeps there would be {what}; give it a folder of its own (a "
                "sub-folder of the inbox is fine: sub-folders are not watched)",
            )
    url = cfg.database_url or ""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        db = Path(url[len("sqlite:///") :].split("?", 1)[0])
        if os.path.realpath(db.parent) == inbox:
            r.err(
                "database.url",
                f"the SQLite file {db} is in the watched folder: it would be "
                f"{what}; put it elsewhere (e.g. in station.state_dir)",
            )
    if cfg.path is not None and os.path.realpath(Path(cfg.path).parent) == inbox:
        r.err(
            "source.path",
            f"the watched folder {cfg.folder.path} holds this configuration "
            f"file, which would be {what}; watch another folder or keep the "
            "configuration elsewhere",
        )


def _check_overrides(ov: dict, r: Reader) -> None:
    for key in ("rules", "postprocess", "add_rules"):
        if key in ov:
            v = ov[key]
            if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
                r.err(f"overrides.{key}", "must be an array of tables ([[overrides." + key + "]])")
                continue
            for i, spec in enumerate(v):
                if "type" not in spec:
                    r.err(f"overrides.{key}[{i}].type", 'required (e.g. type = "min_area")')
    if "rule_params" in ov:
        rp = ov["rule_params"]
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


def folder_options(src: dict, r: Reader) -> FolderOptions:
    r.unknown(src, "source", {"type", "path", "after", "stable_s", "poll_s", "max_pending"})
    path = r.path(src, "source", "path", REQUIRED)
    return FolderOptions(
        path=path or Path("."),
        after=r.get(src, "source", "after", str, "archive", one_of("archive", "leave")),
        stable_s=r.get(src, "source", "stable_s", float, 1.0, nonneg),
        poll_s=r.get(src, "source", "poll_s", float, 0.5, positive),
        max_pending=r.get(src, "source", "max_pending", int, 512, positive),
    )


def camera_options(src: dict, r: Reader) -> CameraOptions:
    r.unknown(
        src,
        "source",
        {
            "type",
            "device",
            "url",
            "trigger",
            "interval_ms",
            "motion_threshold",
            "motion_delta",
            "motion_cooldown_ms",
            "loop",
            "max_frames",
            "reconnect_s",
            "width",
            "height",
        },
    )
    c = CameraOptions(
        device=r.get(src, "source", "device", int, None, nonneg),
        url=r.get(src, "source", "url", str, None, nonempty),
        trigger=r.get(
            src, "source", "trigger", str, "interval", one_of("interval", "mqtt", "motion")
        ),
        interval_ms=r.get(src, "source", "interval_ms", int, 1000, positive),
        motion_threshold=r.get(
            src,
            "source",
            "motion_threshold",
            float,
            0.02,
            lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
        motion_delta=r.get(
            src,
            "source",
            "motion_delta",
            int,
            25,
            lambda v: None if 0 < v < 256 else "must be in 1..255",
        ),
        motion_cooldown_ms=r.get(src, "source", "motion_cooldown_ms", int, 1000, nonneg),
        loop=r.get(src, "source", "loop", bool, False),
        max_frames=r.get(src, "source", "max_frames", int, 0, nonneg),
        reconnect_s=r.get(src, "source", "reconnect_s", float, 2.0, positive),
        width=r.get(src, "source", "width", int, 0, nonneg),
        height=r.get(src, "source", "height", int, 0, nonneg),
    )
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
