"""What crosses between the client and the workers: the images to judge, the recipe settings
they were judged under, and what the candidate made of each."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from inspect_core.runtime.recipe import RECORDED_SETTINGS


@dataclass(frozen=True)
class RecipeSettings:
    """The rules, post-processing, pixel size, region and coverage classes and tiling in force
    when an image was recorded (its ``thresholds``), so the candidate judges it exactly as the
    station did. A record from before a setting was recorded is judged with the recipe's."""

    key: str  # sha256 of the canonical JSON: images with the same settings share one Inspector
    overrides: dict[str, Any]

    @classmethod
    def from_thresholds(cls, thresholds: dict[str, Any] | None) -> RecipeSettings:
        t = thresholds or {}
        overrides = {k: t[k] for k in RECORDED_SETTINGS if k in t and t[k] is not None}
        canon = json.dumps(overrides, sort_keys=True, separators=(",", ":"))
        return cls(hashlib.sha256(canon.encode()).hexdigest(), overrides)


@dataclass(frozen=True)
class BacktestItem:
    """One recorded image: where a worker reads it (a path or fsspec URL), its recorded verdict,
    overlay and content hash, the model that judged it, and the key of its recipe settings."""

    inspection_id: int
    url: str
    recorded: str  # PASS | REVIEW | FAIL
    settings_key: str
    station: str = ""
    overlay: str | None = None  # the recorded overlay, for the page
    image_sha256: str = ""  # the recorded image's: the file read must still be that image
    model: str = ""  # the model that judged it (its version, or the start of its sha256)
    latency_ms: float | None = None  # the record's: from taken up to recorded, queue included
    inspect_ms: float | None = None  # the record's time on the image itself (None: not split)


class RegionBox(NamedTuple):
    """One region as the backtest compares it: its class, area and bounding box (x, y, w, h),
    as a ``region`` row records it."""

    class_name: str
    area_px: int
    bbox: tuple[int, int, int, int]


class Fired(NamedTuple):
    """A rule that fired and the decision it asked for."""

    rule: str
    decision: str


@dataclass(frozen=True)
class ItemResult:
    """The candidate's verdict on one image (or why it could not judge it), its regions and
    the rules that fired, the milliseconds its model step took (the recipe's chain on the
    decoded image: model, post-processing, rules; reading and decoding not counted), and its
    overlay as PNG bytes when asked for."""

    inspection_id: int
    verdict: str | None  # None: ``error`` says why
    latency_ms: float = 0.0
    regions: tuple[RegionBox, ...] = ()
    error: str | None = None
    overlay_png: bytes | None = None
    fired: tuple[Fired, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """One task's work: its items and the recipe settings they name (key -> overrides)."""

    items: list[BacktestItem]
    settings: dict[str, dict[str, Any]]
    overlays: bool = True  # render changed images' overlays (off once the page has enough)
