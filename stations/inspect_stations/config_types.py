"""What a station configuration holds: the dataclasses a station TOML file is parsed into.

:mod:`inspect_stations.config` reads the file into them (every key, with its default and
meaning, is in ``inspect_stations/example.toml``); the defaults here are the defaults of
the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_stations.mqttconf import MqttOptions

IMAGE_EXTS = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]


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
    # trigger = "mqtt": a trigger's frame must be captured within trigger_max_age_ms of the
    # trigger's arrival (else its part is recorded as ERROR), and at most frame_max_age_ms before
    trigger_max_age_ms: int = 1000
    frame_max_age_ms: int = 0
    width: int = 0
    height: int = 0


# how a 16-bit image is read: refused, "scale" (x / 257), or a camera's raw values in a 16-bit
# file, "10" | "12" | "14" (x / (2**bits - 1) * 255, a value above refused)
SIXTEEN_BIT = ("refuse", "scale", "10", "12", "14")


@dataclass
class Limits:
    max_pixels: int = 50_000_000
    max_bytes: int = 256 * 1024 * 1024
    extensions: list[str] = field(default_factory=lambda: list(IMAGE_EXTS))
    sixteen_bit: str = "refuse"  # one of SIXTEEN_BIT
    # the model's work per image in megapixels: tiles x tile area x test-time copies
    # (inspect_stations.work_limit.check_work; 64 = 3x the largest shipped validation image)
    max_work_mpx: float = 64.0


@dataclass
class ModelOptions:
    """``[model]``: which registry the station follows for its recipe's active model version
    (``follow``: a registered version source, ``"sql"`` = the station's database; ``"none"``
    runs the recipe's own model file always) and how often it asks (``check_s``)."""

    follow: str = "sql"
    check_s: float = 10.0


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
    model: ModelOptions = field(default_factory=ModelOptions)
    batch: int = 1
    threads: int = 0  # per model call; 0: INSPECT_THREADS, else model_pool.pool_plan's
    workers: int = 0  # model threads side by side; 0: one per core (model_pool.pool_plan)
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
