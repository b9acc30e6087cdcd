"""The typed records that cross module boundaries: region -> verdict -> inspection.

source -> plugin preprocess -> model -> post-process (Regions) -> rules (Verdict)
       -> Inspection -> sinks / database
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Decision(str, enum.Enum):
    """A verdict; the members are in order of severity."""

    PASS = "PASS"
    REVIEW = "REVIEW"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the image could not be inspected (bad file, ...)

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {d: i for i, d in enumerate(Decision)}
#: the verdicts as text, in order of severity (database column values, report columns)
VERDICTS: tuple[str, ...] = tuple(d.value for d in Decision)


@dataclass
class Region:
    """One connected component of one class in the predicted mask."""

    class_id: int
    class_name: str
    bbox: tuple[int, int, int, int]  # x, y, width, height in image pixels
    area_px: int
    centroid: tuple[float, float]  # x, y
    max_prob: float
    mean_prob: float
    polygon: list[tuple[int, int]] = field(default_factory=list)  # outer contour, x, y
    area_mm2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        d["centroid"] = [round(self.centroid[0], 2), round(self.centroid[1], 2)]
        d["polygon"] = [list(p) for p in self.polygon]
        d["max_prob"] = round(self.max_prob, 4)
        d["mean_prob"] = round(self.mean_prob, 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Region:
        return cls(
            d["class_id"],
            d["class_name"],
            tuple(d["bbox"]),
            d["area_px"],
            tuple(d["centroid"]),
            d["max_prob"],
            d["mean_prob"],
            [tuple(p) for p in d.get("polygon", [])],
            d.get("area_mm2"),
        )


@dataclass
class RuleHit:
    """A rule that fired: its name, the decision it asks for, why, and which regions."""

    rule: str
    decision: Decision
    message: str
    regions: list[int] = field(default_factory=list)  # indexes into Verdict.regions

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "decision": self.decision.value,
            "message": self.message,
            "regions": list(self.regions),
        }


@dataclass
class Verdict:
    decision: Decision
    hits: list[RuleHit] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    coverage: dict[str, float] = field(default_factory=dict)  # class -> share of ROI/image

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.decision.value,
            "fired": [h.to_dict() for h in self.hits],
            "regions": [r.to_dict() for r in self.regions],
            "coverage": {k: round(v, 5) for k, v in self.coverage.items()},
        }


@dataclass
class Inspection:
    """Everything recorded about one inspected image.

    A record is identified by (station, ``capture_id``) for a triggered capture, else by
    (station, ``image_sha256``): the same file content is recorded once. An ERROR is not a
    verdict: a file's later verdict replaces its ERROR record (see ``replaces``).

    ``width`` / ``height`` are those of the image as delivered (file or frame); region
    coordinates and areas in px are in the frame the model saw, i.e. after the recipe's
    preprocessing (the same unless the recipe resizes).
    """

    source: str  # path or camera URL
    image_sha256: str
    width: int
    height: int
    verdict: Verdict
    station: str = "cli"
    plugin: str = ""
    recipe: str = ""
    model_sha256: str = ""
    model_card: str | None = None  # path of the model card (JSON) of that model, when known
    thresholds: dict[str, Any] = field(default_factory=dict)
    captured_at: float | None = None  # unix seconds
    inspected_at: float | None = None
    latency_ms: float = 0.0  # from when the station took the image up to its record
    # latency_ms split in two (a station's records; None where not measured): the time spent
    # working on this image (reading, decoding, the model, the rules) and the time it waited
    # for the station's threads (queues, other images ahead of it); they add up to latency_ms
    inspect_ms: float | None = None
    queue_ms: float | None = None
    part_id: str | None = None
    lot: str | None = None
    error: str | None = None  # reason, for Decision.ERROR
    overlay_path: str | None = None
    # the key of a triggered capture (e.g. an MQTT trigger id and its capture time): each one is
    # a record of its own even when its pixels equal an earlier frame's; None for files, whose
    # key is their content (image_sha256)
    capture_id: str | None = None
    # a file refused before it could be read (unreadable, over the byte limit) is recorded as
    # ERROR under a key made of its path, size and time, having no content hash; once read it
    # names that key here, and a sink keeps one record: this one in place of that ERROR
    replaces: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "verdict"}
        d.update(self.verdict.to_dict())
        return d
