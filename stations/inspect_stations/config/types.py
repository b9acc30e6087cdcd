"""What a station configuration holds: each table of a station TOML file as a pydantic model,
every key declared once with its type, range, default and meaning.

:mod:`inspect_stations.config.station` reads a file into them (``inspect_stations/example.toml``
shows
every table) and assembles the :class:`StationConfig` the station runs from; the configuration
reference (``docs/reference/configuration.md``) is generated from these models.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from inspect_core.config import Settings
from inspect_core.config.health import HealthOverride
from inspect_stations.config.drift import DriftOptions
from inspect_stations.config.limits_defaults import MAX_BYTES, MAX_PIXELS
from inspect_stations.config.mqtt import MqttOptions
from inspect_stations.config.toml_reader import ConfigPath, NonEmpty, WithEnv

IMAGE_EXTS = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]
SixteenBit = Literal["refuse", "scale", "10", "12", "14"]


def _name_ok(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", v):
        raise ValueError(
            "must be 1-128 letters, digits, '.', '-' or '_' (it names the station's records), "
            f"got {v!r}"
        )
    return v


def _extensions(v: list[str]) -> list[str]:
    if not v or not all(e.startswith(".") for e in v):
        raise ValueError(f'must be a list like [".png", ".jpg"], got {v!r}')
    return [e.lower() for e in v]


class FolderOptions(Settings):
    """``[source] type = "folder"``: the watched folder and how files are taken from it."""

    type: Literal["folder"] = "folder"
    path: ConfigPath = Field(description="the watched folder (the inbox)")
    after: Literal["archive", "leave"] = Field(
        default="archive", description="file the image, or not"
    )
    stable_s: float = Field(
        default=1.0, ge=0, allow_inf_nan=False, description="unchanged this long"
    )
    poll_s: float = Field(default=0.5, gt=0, allow_inf_nan=False, description="how often it looks")
    max_pending: int = Field(default=512, gt=0, description="files watched for stability at once")


class CameraOptions(Settings):
    """``[source] type = "camera"``: a camera index or a video/stream URL, and its trigger."""

    type: Literal["camera"] = "camera"
    device: int | None = Field(default=None, ge=0, description="a camera index (give this or url)")
    url: WithEnv | None = Field(default=None, description="a video file or rtsp:// / http:// URL")
    trigger: Literal["interval", "mqtt", "motion"] = Field(default="interval", description="when")
    interval_ms: int = Field(default=1000, gt=0, description="trigger = interval: between captures")
    motion_threshold: float = Field(default=0.02, gt=0, le=1, description="share of pixels changed")
    motion_delta: int = Field(default=25, gt=0, lt=256, description="grey-level change that counts")
    motion_cooldown_ms: int = Field(
        default=1000, ge=0, description="quiet time after a motion capture"
    )
    loop: bool = Field(default=False, description="replay a video file from the start when it ends")
    max_frames: int = Field(
        default=0, ge=0, description="stop after this many captures (0: no limit)"
    )
    reconnect_s: float = Field(
        default=2.0, gt=0, allow_inf_nan=False, description="retry a lost camera"
    )
    trigger_max_age_ms: int = Field(
        default=1000, gt=0, description="capture within this of a trigger"
    )
    frame_max_age_ms: int = Field(default=0, ge=0, description="a frame at most this old (0: any)")
    width: int = Field(default=0, ge=0, description="capture width (0: the camera's)")
    height: int = Field(default=0, ge=0, description="capture height (0: the camera's)")


class Limits(Settings):
    """``[limits]``: what an image may be (size, bytes, extensions, bit depth, model work)."""

    max_pixels: int = Field(default=MAX_PIXELS, gt=0, description="largest image, in pixels")
    max_bytes: int = Field(default=MAX_BYTES, gt=0, description="largest file, in bytes")
    extensions: Annotated[list[str], AfterValidator(_extensions)] = Field(
        default_factory=lambda: list(IMAGE_EXTS), description="image file extensions taken"
    )
    sixteen_bit: SixteenBit = Field(default="refuse", description="how a 16-bit image is read")
    # the model's work per image in megapixels: tiles x tile area x test-time copies
    # (inspect_stations.inputs.work_limit.check_work; 64 = 3x the largest shipped validation image)
    max_work_mpx: float = Field(default=64.0, gt=0, description="model work cap")

    @field_validator("max_work_mpx")
    @classmethod
    def _finite_in_files(cls, v: float, info: ValidationInfo) -> float:
        """A file cannot switch the work limit off (inf); a backtest, in Python, does."""
        if isinstance(info.context, dict) and "base" in info.context and not math.isfinite(v):
            raise ValueError(f"must be a finite number greater than 0, got {v!r}")
        return v


class ModelOptions(Settings):
    """``[model]``: which registry the station follows for its recipe's active model version
    (``follow``: a registered version source, ``"sql"`` = the station's database; ``"none"``
    runs the recipe's own model file always) and how often it asks (``check_s``)."""

    follow: NonEmpty = Field(default="sql", description='a version source, or "none"')
    check_s: float = Field(
        default=10.0, ge=0, allow_inf_nan=False, description="seconds between asks"
    )


class DatabaseSettings(Settings):
    """``[database]``: whether results are recorded, by which sink, at which URL."""

    enabled: bool = Field(default=True, description="record every result")
    sink: NonEmpty = Field(default="sql", description="the records sink")
    url: WithEnv | None = Field(
        default=None, description="${VAR} reads the environment; default: INSPECT_DATABASE_URL"
    )


class ArchiveSettings(Settings):
    """``[archive]``: where inspected images are filed, and where refused ones go."""

    path: ConfigPath = Field(
        default=Path("archive"),
        validate_default=True,
        description="inspected images, by verdict and day",
    )
    quarantine: ConfigPath = Field(
        default=Path("quarantine"), validate_default=True, description="images that were refused"
    )
    overlays: bool = Field(default=False, description="file an overlay beside each image")


class StationSettings(Settings):
    """``[station]``: the name, the plugin and recipe (or a recipe file), the state folder."""

    name: Annotated[str, AfterValidator(_name_ok)] = Field(
        json_schema_extra={"hint": 'e.g. name = "line1-steel"'}
    )
    plugin: NonEmpty = Field(default="", description="the plugin or domain (see `inspect plugins`)")
    recipe: NonEmpty = Field(default="", description="the plugin's recipe")
    recipe_file: ConfigPath | None = Field(
        default=None, description="a recipe TOML of its own instead"
    )
    state_dir: ConfigPath = Field(
        default=Path("state"), validate_default=True, description="the journal and status.json"
    )
    batch: int = Field(default=1, gt=0, description="images per model call")
    threads: int = Field(
        default=0, ge=0, description="per model call; 0: INSPECT_THREADS, else a plan"
    )
    workers: int = Field(
        default=0, ge=0, le=64, description="model threads side by side; 0: per core"
    )
    journal_retry_s: float = Field(default=2.0, gt=0, allow_inf_nan=False, description="sink retry")
    flush_timeout_s: float = Field(default=10.0, ge=0, allow_inf_nan=False, description="on stop")
    until_empty: bool = Field(default=False, description="stop once the source has nothing more")
    log_json: bool = Field(default=False, description="log one JSON object a line")


class OverridesSettings(Settings):
    """``[overrides]``: the recipe's settings this station changes (no retraining)."""

    pixel_size_mm: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="mm/px"
    )
    tile: int | None = Field(default=None, ge=0, description="tile side (0: the model's)")
    tile_overlap: float | None = Field(default=None, ge=0, lt=1, description="tile overlap share")
    region_classes: list[str] | None = Field(
        default=None, description="classes regions are made of"
    )
    coverage_classes: list[str] | None = Field(
        default=None, description="classes whose share is kept"
    )
    rules: list[dict[str, Any]] | None = Field(
        default=None, description="[[overrides.rules]]: replace"
    )
    postprocess: list[dict[str, Any]] | None = Field(default=None, description="replace the steps")
    rule_params: dict[str, dict[str, Any]] | None = Field(
        default=None, description="[overrides.rule_params.NAME]: patch one rule's parameters"
    )
    add_rules: list[dict[str, Any]] | None = Field(
        default=None, description="rules added to the recipe's"
    )
    health: HealthOverride | None = Field(
        default=None, description="[overrides.health]: the recipe's [health] keys replaced"
    )


class StationConfig(StationSettings):
    """The station as it runs: ``[station]``'s keys, and the other tables assembled."""

    source_type: str = "folder"
    source: dict[str, Any] = Field(default_factory=dict)  # the raw [source] table
    folder: FolderOptions | None = None
    camera: CameraOptions | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    database: bool = True
    database_url: str | None = None  # None: INSPECT_DATABASE_URL or the db plugin's default
    database_sink: str = "sql"
    archive: Path = Path("archive")
    quarantine: Path = Path("quarantine")
    overlays: bool = False
    mqtt: MqttOptions | None = None
    sinks: list[dict[str, Any]] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    model: ModelOptions = Field(default_factory=ModelOptions)
    drift: DriftOptions = Field(default_factory=DriftOptions)
    path: Path | None = None  # the TOML file, when loaded from one
    base: Path | None = None  # the folder relative paths start from (the file's)

    def recipe_overrides(self, base_rules: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``Recipe.with_overrides`` argument: ``add_rules`` appended to the rules."""
        o = {k: v for k, v in self.overrides.items() if k != "add_rules"}
        if self.overrides.get("add_rules"):
            o["rules"] = list(o.get("rules", base_rules)) + list(self.overrides["add_rules"])
        return o
