"""The report as typed data: what :func:`inspect_db.reports.query.build_report` returns and
every renderer (terminal, CSV, JSON, HTML, a plugin's) reads.

:meth:`Report.to_dict` is the JSON ``inspect report --json`` prints, key for key as before the
report was typed (``yield`` and ``class`` are Python's words, so their fields are ``yield_`` and
``class_name``). Times are ISO 8601 text in UTC with ``Z``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)


class Counts(_Part):
    """How many inspections had each verdict, their total and the share of PASS."""

    total: int
    PASS: int
    REVIEW: int
    FAIL: int
    ERROR: int
    yield_: float | None = Field(alias="yield")

    def of(self, verdict: str) -> int:
        count: int = getattr(self, verdict)
        return count


class StationCounts(Counts):
    """Yield per station and the recipe it ran (one row per recipe a station ran)."""

    station: str
    plugin: str
    recipe: str


class BucketCounts(Counts):
    """The counts of one hour or day (``start``: its beginning)."""

    start: str


class Timeline(_Part):
    bucket: str  # hour or day
    rows: list[BucketCounts]


class ParetoRow(_Part):
    """Regions of one class, with their share and the cumulative share (most frequent first)."""

    class_name: str = Field(alias="class")
    regions: int
    area_px: int
    share: float
    cumulative: float


class ImageBrief(_Part):
    """An image of the ``worst`` and ``gallery`` sections."""

    id: int
    station: str
    plugin: str
    recipe: str
    source: str
    image_sha256: str | None
    verdict: str
    n_regions: int
    defect_area_px: int
    inspected_at: str | None
    latency_ms: float | None
    overlay_path: str | None
    part_id: str | None
    lot: str | None


class Outline(_Part):
    """A recorded region as the gallery outlines it: its class, its box (x, y, width, height)
    and its polygon (empty where none was recorded), in the recorded image's pixels."""

    class_name: str = Field(alias="class")
    bbox: tuple[int, int, int, int]
    polygon: list[tuple[int, int]]


class GalleryImage(ImageBrief):
    """An image of the ``gallery`` section, with the recorded image's size and the outlines of
    its regions (at most :data:`inspect_db.reports.gallery.MAX_OUTLINES`), drawn over it where
    no overlay was recorded or the overlay is gone."""

    width: int
    height: int
    outlines: list[Outline]


class Timing(_Part):
    """Count, p50, p95, mean and maximum of a time in ms (None where nothing was counted)."""

    count: int
    p50: float | None
    p95: float | None
    mean: float | None
    max: float | None


class QueueCounts(_Part):
    reviewed: int
    pending: int


class Outcomes(_Part):
    """Reviewed items and what the operators made of the model's verdicts."""

    reviewed: int
    fail_confirmed: int
    fail_overturned: int
    review_to_pass: int
    review_to_fail: int


class StationReview(Outcomes):
    station: str
    agreement: float | None  # reviewed FAILs confirmed / reviewed FAILs


class DayReview(Outcomes):
    day: str  # ISO date, UTC


class ClassReview(_Part):
    """A class the model predicted: its reviewed regions and the operators' labels."""

    class_name: str = Field(alias="class")
    regions: int
    confirmed: int
    reclassed: int
    not_defect: int
    unsure: int
    agreement: float | None


class CorrectionReasons(_Part):
    """Why corrected inspections were corrected (one inspection may have several reasons)."""

    verdict: int  # the operator's verdict is not the model's (every decided REVIEW)
    regions: int  # a recorded region given another class, or marked not a defect
    drawn: int  # a defect drawn: a region the model missed, or an outline corrected


class ModelCorrections(_Part):
    """One model version: its inspections, how many were reviewed and how many of those the
    operators corrected (:mod:`inspect_db.reports.corrections`)."""

    model: str  # the version as the report names it: recipe@v2, model.onnx@<sha256 prefix>
    sha256: str | None  # None: the inspections made without a model
    plugin: str | None
    recipe: str | None
    version: str | None  # the registry's label (v1, shipped), else the card's version
    registered: bool  # a version of the registry (``inspect model add``)
    inspections: int
    reviewed: int
    corrected: int
    share_of_inspections: float | None  # corrected / inspections
    share_of_reviewed: float | None  # corrected / reviewed
    reasons: CorrectionReasons


class VersionLatency(_Part):
    """The mean and maximum latency (ms) of one model version's inspections."""

    mean: float | None
    max: float | None


class ModelVersion(_Part):
    """One model version: its images, verdicts and latency (:mod:`inspect_db.reports.versions`)."""

    model: str  # as the report names it: recipe@v2, model.onnx@<sha256 prefix>, (no model)
    sha256: str | None  # None: the inspections made without a model
    plugin: str | None
    recipe: str | None
    version: str | None  # the registry's label (v1, shipped) of a registered version
    registered: bool  # a version of the registry (``inspect model add``)
    images: int
    verdicts: dict[str, int]  # verdict -> count, every verdict in order of severity
    shares: dict[str, float | None]  # verdict -> count / images
    latency_ms: VersionLatency


class ReviewFigures(_Part):
    """Operator review over the report's inspections (:mod:`inspect_db.reports.review_figures`)."""

    queue: dict[str, QueueCounts]  # model verdict (REVIEW, FAIL) -> reviewed and pending
    stations: list[StationReview]
    classes: list[ClassReview]
    days: list[DayReview]
    corrections: list[ModelCorrections]  # per model version, oldest version first


class Familiarity(_Part):
    """The familiarity of a day's images (0..1, the share of training hold-out images farther
    out): how many have one, the median and 10th percentile (interpolated within the bins),
    and the count in each tenth 0-0.1, ..., 0.9-1.0 (:mod:`inspect_db.reports.input_health`)."""

    count: int
    median: float | None
    p10: float | None
    bins: list[int]


class HealthDay(_Part):
    """One station's images of one day (UTC) whose health was measured."""

    station: str
    day: str  # ISO date, UTC
    measured: int  # images with a health flag
    quality: int  # flagged for a quality limit broken
    unfamiliar: int  # flagged unlike the training images
    quality_share: float | None  # quality / measured
    unfamiliar_share: float | None  # unfamiliar / measured
    familiarity: Familiarity
    focus_mean: float | None
    focus_change: float | None  # focus_mean / the station's first day's - 1
    level_mean: float | None  # mean gray level, 0..255
    level_change: float | None  # level_mean - the station's first day's, in gray levels


class InputHealth(_Part):
    """Input health per station and day, against the training reference (images like the
    training ones: familiarity median ``reference_median``, 10th percentile ``reference_p10``)."""

    reference_median: float
    reference_p10: float
    days: list[HealthDay]  # by station, then day


class Scope(_Part):
    """The filters a report was made with, as text (None: no restriction)."""

    since: str | None
    until: str | None
    station: str | None
    plugin: str | None
    recipe: str | None
    verdicts: list[str] | None

    def describe(self) -> str:
        """``station=a, verdicts=['FAIL']``: the filters given, or "" for everything."""
        return ", ".join(f"{k}={v}" for k, v in self.model_dump().items() if v)


class Report(_Part):
    """Yield, verdicts, defect Pareto, worst images, time per image, counts over time and
    operator review over the inspections a report's filters select."""

    database: str  # the database's URL without its password
    generated_at: str
    filters: Scope
    total: int
    verdicts: dict[str, int]  # verdict -> count, every verdict in order of severity
    yield_: float | None = Field(alias="yield")
    stations: list[StationCounts]
    timeline: Timeline
    pareto: list[ParetoRow]
    worst: list[ImageBrief]
    latency_ms: Timing
    inspect_ms: Timing
    queue_ms: Timing
    model_versions: list[ModelVersion]  # oldest version first, inspections without a model last
    review: ReviewFigures
    input_health: InputHealth | None = None  # where some inspection has its health measured
    gallery: list[GalleryImage] | None = None  # on request: recent FAIL/REVIEW images
    review_url: str | None = None  # the review page the HTML links to (--review-url)

    def to_dict(self, *, gallery: bool = True) -> dict[str, Any]:
        """The report as JSON values (``gallery``: with the gallery section, when it has one)."""
        d = self.model_dump(by_alias=True)
        if d["gallery"] is None or not gallery:
            del d["gallery"]
        if d["input_health"] is None:
            del d["input_health"]
        if d["review_url"] is None:
            del d["review_url"]
        return d
