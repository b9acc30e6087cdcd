"""The typed records that cross module boundaries: region -> verdict -> inspection.

source -> plugin preprocess -> model -> post-process (Regions) -> rules (Verdict)
       -> Inspection -> sinks / database
"""

from __future__ import annotations

import copy
import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal


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

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """This region as JSON values; ``exact`` keeps every digit (the station's journal),
        else the centroid has 2 decimals and the probabilities 4 (what is printed and sent)."""
        cx, cy = self.centroid
        return {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "bbox": list(self.bbox),
            "area_px": self.area_px,
            "centroid": [cx, cy] if exact else [round(cx, 2), round(cy, 2)],
            "max_prob": self.max_prob if exact else round(self.max_prob, 4),
            "mean_prob": self.mean_prob if exact else round(self.mean_prob, 4),
            "polygon": [list(p) for p in self.polygon],
            "area_mm2": self.area_mm2,
        }

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleHit:
        return cls(d["rule"], Decision(d["decision"]), d["message"], list(d.get("regions", [])))


@dataclass
class Verdict:
    decision: Decision
    hits: list[RuleHit] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    coverage: dict[str, float] = field(default_factory=dict)  # class -> share of ROI/image

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """The verdict's keys of an inspection's JSON: ``verdict``, ``fired``, ``regions``,
        ``coverage`` (``exact``: numbers unrounded, see :meth:`Region.to_dict`)."""
        return {
            "verdict": self.decision.value,
            "fired": [h.to_dict() for h in self.hits],
            "regions": [r.to_dict(exact=exact) for r in self.regions],
            "coverage": (
                dict(self.coverage) if exact else {k: round(v, 5) for k, v in self.coverage.items()}
            ),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        """The verdict of :meth:`to_dict`'s keys, or of the journal's form before issue 23
        (``decision``, ``hits``)."""
        fired = d["fired"] if "fired" in d else d.get("hits", [])
        return cls(
            Decision(d["verdict"] if "verdict" in d else d["decision"]),
            [RuleHit.from_dict(h) for h in fired],
            [Region.from_dict(r) for r in d.get("regions", [])],
            dict(d.get("coverage", {})),
        )


# -- input health (issue 25): is the image fit to be judged? ---------------------------------
Figure = Literal["focus", "clipped_dark", "clipped_bright", "mean", "highlights", "contrast"]
Bound = Literal["min", "max"]
Reason = Literal["out of focus", "under-exposed", "over-exposed", "low contrast"]
#: what an inspection's input health says (the ``health_flag`` column; None: not measured)
HealthFlag = Literal["ok", "quality", "unfamiliar"]
UNFAMILIAR = "unfamiliar image"  # the reason an unfamiliar image is given


@dataclass(frozen=True)
class QualityFigures:
    """One image's quality figures (:func:`inspect_core.health.measure`)."""

    focus: float  # fine / coarse gradient energy: ~1 sharp, -> 0.0625 blurred
    clipped_dark: float  # share of pixels <= 2, 0..1
    clipped_bright: float  # share of pixels >= 253, 0..1
    mean: float  # mean gray level, 0..255
    highlights: float  # the gray level 99 % of the pixels are at or below, 0..255
    contrast: float  # standard deviation of the gray levels, 0..127.5

    def value(self, figure: Figure) -> float:
        """The figure named ``figure``."""
        return float(getattr(self, figure))

    def to_dict(self, *, exact: bool = False) -> dict[str, float]:
        """The figures as JSON numbers (4 significant digits unless ``exact``)."""
        return {k: (v if exact else float(f"{v:.4g}")) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class QualityProblem:
    """One quality limit an image breaks (:func:`inspect_core.health.check`)."""

    figure: Figure
    value: float
    bound: Bound
    limit: float
    reason: Reason

    @property
    def message(self) -> str:
        """One line for the person at the line, e.g. "out of focus: focus 0.081 is below the
        least 0.15 allowed"."""
        side = "below the least" if self.bound == "min" else "above the largest"
        return (
            f"{self.reason}: {self.figure.replace('_', ' ')} {self.value:.3g} is {side} "
            f"{self.limit:.3g} allowed"
        )


@dataclass(frozen=True)
class InputHealth:
    """What an inspection records of its image's health: the quality figures of the frame the
    model saw (None: not measured, e.g. an image under 16 px a side), the quality limits it
    breaks, and its familiarity (higher: more like the training images; None until the
    recipe's model has a familiarity check) with the verdict on it."""

    quality: QualityFigures | None = None
    problems: tuple[QualityProblem, ...] = ()
    familiarity: float | None = None
    unfamiliar: bool | None = None

    @property
    def flag(self) -> HealthFlag | None:
        """``unfamiliar``, else ``quality`` (a limit broken), else ``ok``; None when nothing
        was measured."""
        if self.unfamiliar:
            return "unfamiliar"
        if self.problems:
            return "quality"
        if self.quality is None and self.familiarity is None:
            return None
        return "ok"

    @property
    def messages(self) -> list[str]:
        """What is wrong with the image, one line each (the quality problems, then
        familiarity)."""
        out = [p.message for p in self.problems]
        if self.unfamiliar:
            fam = "" if self.familiarity is None else f" (familiarity {self.familiarity:.3g})"
            out.append(f"{UNFAMILIAR}: unlike the training images{fam}")
        return out

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """The health keys of an inspection's JSON: ``quality`` (the figures, or null),
        ``quality_problems`` (messages), ``familiarity``, ``unfamiliar``, ``health_flag``;
        ``exact`` (the station's journal) adds ``quality_limits_broken`` to read back."""
        d: dict[str, Any] = {
            "quality": None if self.quality is None else self.quality.to_dict(exact=exact),
            "quality_problems": [p.message for p in self.problems],
            "familiarity": (
                self.familiarity
                if exact or self.familiarity is None
                else float(f"{self.familiarity:.4g}")
            ),
            "unfamiliar": self.unfamiliar,
            "health_flag": self.flag,
        }
        if exact:
            d["quality_limits_broken"] = [asdict(p) for p in self.problems]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputHealth | None:
        """The health of :meth:`to_dict`'s keys; None when ``d`` has none (a record made
        before issue 25, or not measured)."""
        quality = d.get("quality")
        if quality is None and d.get("familiarity") is None and d.get("unfamiliar") is None:
            return None
        return cls(
            QualityFigures(**quality) if isinstance(quality, dict) else None,
            tuple(QualityProblem(**p) for p in d.get("quality_limits_broken") or []),
            d.get("familiarity"),
            d.get("unfamiliar"),
        )


#: the keys :meth:`InputHealth.to_dict` writes (an inspection's JSON without health has them
#: as null / empty, so every line of ``inspect predict --json`` has the same keys)
NO_HEALTH: dict[str, Any] = InputHealth().to_dict()


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
    # the image's quality figures, the limits it breaks and its familiarity (issue 25); None:
    # not measured (ERROR, a verdict known from before)
    health: InputHealth | None = None

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """The one JSON form of an inspection: its fields, with the verdict's keys
        (:meth:`Verdict.to_dict`) in place of ``verdict``. Printed, sent and recorded with
        rounded numbers; the station's journal writes it ``exact`` and reads it back with
        :meth:`from_dict`."""
        d = {k: getattr(self, k) for k in _FIELDS}
        d["thresholds"] = copy.deepcopy(self.thresholds)
        d.update(self.verdict.to_dict(exact=exact))
        d.update(NO_HEALTH if self.health is None else self.health.to_dict(exact=exact))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inspection:
        """An inspection from :meth:`to_dict`'s form, or from the station journal's form
        before issue 23 (the verdict nested under ``verdict`` as ``decision`` and ``hits``).
        Keys this version does not know are left out."""
        nested = d.get("verdict")
        verdict = Verdict.from_dict(nested if isinstance(nested, dict) else d)
        health = InputHealth.from_dict(d)
        return cls(verdict=verdict, health=health, **{k: d[k] for k in _FIELDS if k in d})


#: the fields of an inspection besides its verdict and health (what :meth:`Inspection.from_dict`
#: reads as they are)
_FIELDS = tuple(f.name for f in fields(Inspection) if f.name not in ("verdict", "health"))
