"""The records of operator review as they cross into the review page and the export: what the
queue lists, what an item shows, what a decision says, who decides.

Times are naive UTC datetimes, as stored. Every class here is built by
:mod:`inspect_review.storage.queue` / :mod:`inspect_review.storage.store` from rows, never by hand
from free-form dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inspect_db.errors import BadFilter, ReviewError
from inspect_db.models import DECIDED, LABELS, MARK_KINDS, ROLES
from inspect_db.models import UNDO as UNDO  # re-exported: what marks an undo row
from inspect_db.reports.filters import parse_when

#: which items the queue lists: the undecided ones, the decided ones, or all
STATUSES = ("pending", "decided", "all")


@dataclass(frozen=True)
class QueueFilters:
    """Which inspections the queue (or an export) covers; None = no restriction."""

    station: str | None = None
    recipe: str | None = None
    class_name: str | None = None  # items with at least one region of this class
    since: datetime | None = None  # inspected at or after
    until: datetime | None = None  # inspected before
    status: str = "pending"

    @classmethod
    def parse(
        cls,
        *,
        station: str | None = None,
        recipe: str | None = None,
        class_name: str | None = None,
        since: str | None = None,
        until: str | None = None,
        status: str | None = None,
        now: datetime | None = None,
    ) -> QueueFilters:
        """Filters from text (a form or the command line); empty text = no restriction.
        :class:`BadFilter` names the field and what it takes."""
        s = parse_when(since, now, option="since") if since and since.strip() else None
        u = parse_when(until, now, option="until") if until and until.strip() else None
        if s is not None and u is not None and s >= u:
            raise BadFilter(f"since {since!r} is not before until {until!r}; swap them")
        status = (status or "pending").strip().lower()
        if status not in STATUSES:
            raise BadFilter(f"status {status!r}: use one of {', '.join(STATUSES)}")
        return cls(
            (station or "").strip() or None,
            (recipe or "").strip() or None,
            (class_name or "").strip() or None,
            s,
            u,
            status,
        )

    def as_query(self) -> dict[str, str]:
        """The filters as the page's query parameters (only those set)."""
        out = {
            "station": self.station,
            "recipe": self.recipe,
            "class": self.class_name,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "status": self.status if self.status != "pending" else None,
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class QueueItem:
    """One line of the queue."""

    id: int
    station: str
    plugin: str
    recipe: str
    source: str
    verdict: str  # the model's
    inspected_at: datetime
    n_regions: int
    defect_area_px: int
    classes: tuple[str, ...]  # of its regions, sorted
    decided: str | None = None  # the latest decision's verdict, if any
    decided_by: str | None = None


@dataclass(frozen=True)
class Arrivals:
    """What the page adds on a poll: ``items`` (newest first within REVIEW, then FAIL) and the
    id to ask after next time (``last``)."""

    items: list[QueueItem]
    last: int


@dataclass(frozen=True)
class Decided:
    """Decisions recorded since a page loaded (any operator's): ``items`` as (inspection id,
    verdict, user name), and the review id to ask after next time (``last``)."""

    items: list[tuple[int, str, str]]
    last: int


@dataclass(frozen=True)
class RegionView:
    """One region of an item, with its number on the page (1-based, in the rules' order)."""

    id: int
    number: int
    class_id: int
    class_name: str
    area_px: int
    area_mm2: float | None
    max_prob: float
    mean_prob: float
    bbox: tuple[int, int, int, int]  # x, y, width, height
    polygon: list[list[int]]  # outer contour, [[x, y], ...]


@dataclass(frozen=True)
class RuleView:
    """A rule that fired on the item: its name, the decision it asked for, why, and the
    numbers of the regions it fired on."""

    rule: str
    decision: str
    message: str
    regions: tuple[int, ...]

    @classmethod
    def from_json(cls, hit: Any, n_regions: int) -> RuleView:
        """One entry of ``inspection.fired`` (tolerant: recorded JSON is not trusted)."""
        d = hit if isinstance(hit, dict) else {}
        raw = d.get("regions")
        idx = raw if isinstance(raw, list) else []
        numbers = tuple(i + 1 for i in idx if isinstance(i, int) and 0 <= i < n_regions)
        return cls(
            str(d.get("rule", "?")), str(d.get("decision", "")), str(d.get("message", "")), numbers
        )


@dataclass(frozen=True)
class RegionLabel:
    """What a decision says of one region: ``defect`` (of ``class_name``), ``not_defect`` or
    ``unsure``."""

    region_id: int
    label: str
    class_name: str | None = None
    class_id: int | None = None

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: use one of {', '.join(LABELS)}")
        if (self.label == "defect") != (self.class_name is not None):
            raise ValueError("a defect label needs its class; the other labels take none")


#: a class name an operator may give: what the ``class_name`` columns hold, and short enough to
#: read in a table cell
CLASS_NAME_MAX = 40


def check_class_name(name: str) -> str:
    """``name`` as a class a region or a drawn mark may be given (spaces around it dropped);
    :class:`ReviewError` saying what is wrong with it."""
    text = name.strip()
    shown = repr(text[: CLASS_NAME_MAX + 10])
    if not text:
        raise ReviewError("the class name is empty: type a name such as crack")
    if len(text) > CLASS_NAME_MAX:
        raise ReviewError(f"class name {shown}: over {CLASS_NAME_MAX} characters; shorten it")
    if not text.isprintable():
        raise ReviewError(f"class name {shown}: holds a control character; type letters")
    if text.casefold() == "background":
        raise ReviewError(
            f"class name {shown}: background is no defect; mark the region not a defect (X)"
        )
    return text


@dataclass(frozen=True)
class Mark:
    """A region the operator drew: a closed ``polygon`` or a brush ``stroke`` (``width``
    pixels wide), ``points`` in the recorded image's pixels, labelled as a region is
    (``defect`` of ``class_name``, ``not_defect`` or ``unsure``); ``replaces_region_id``: the
    region of the item whose outline it corrects."""

    kind: str
    points: tuple[tuple[float, float], ...]
    label: str
    class_name: str | None = None
    class_id: int | None = None
    width: float | None = None
    replaces_region_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in MARK_KINDS:
            raise ValueError(f"mark kind {self.kind!r}: use one of {', '.join(MARK_KINDS)}")
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: use one of {', '.join(LABELS)}")
        if (self.label == "defect") != (self.class_name is not None):
            raise ValueError("a defect mark needs its class; the other labels take none")
        if (self.kind == "stroke") != (self.width is not None):
            raise ValueError("a brush stroke has a width, a polygon none")


@dataclass(frozen=True)
class DecisionIn:
    """A decision to record. ``seen_review_id``: the latest decision the operator saw on the
    page (None: none); if another was recorded since, nothing is written. ``marks``: the
    regions the operator drew, in their order on the page."""

    inspection_id: int
    user_id: int
    verdict: str
    labels: tuple[RegionLabel, ...]
    note: str = ""
    seen_review_id: int | None = None
    marks: tuple[Mark, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in DECIDED:
            raise ValueError(f"verdict {self.verdict!r}: decide {' or '.join(DECIDED)}")


@dataclass(frozen=True)
class DecisionView:
    """A recorded decision, with its region labels (region id -> label) and the marks it
    drew (in their order)."""

    id: int
    inspection_id: int
    user: str
    decided_at: datetime
    verdict: str
    model_verdict: str
    note: str
    supersedes_id: int | None
    labels: dict[int, RegionLabel] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    undo: bool = False  # it undoes the decision it supersedes (:data:`UNDO`)


@dataclass(frozen=True)
class ItemView:
    """Everything the item page shows about one inspection."""

    id: int
    station: str
    plugin: str
    recipe: str
    source: str
    overlay_path: str | None
    width: int
    height: int
    verdict: str
    inspected_at: datetime
    part_id: str | None
    lot: str | None
    regions: list[RegionView]
    rules: list[RuleView]
    card_classes: list[str] | None  # the model card's classes, when recorded
    decisions: list[DecisionView]  # oldest first, undos included
    model_sha256: str | None = None  # of the model that judged it
    model_version: str | None = None  # its registry label (v1, v2, ...), if registered
    thresholds: dict[str, Any] = field(default_factory=dict)  # recorded settings (rules...)

    @property
    def latest(self) -> DecisionView | None:
        """The latest row, an undo or a decision (what a new decision supersedes)."""
        return self.decisions[-1] if self.decisions else None

    @property
    def in_force(self) -> DecisionView | None:
        """The decision in force: the latest, unless it is an undo (then none: pending)."""
        latest = self.latest
        return latest if latest is not None and not latest.undo else None

    @property
    def undone(self) -> DecisionView | None:
        """The decision the latest row undid, when the latest row is an undo."""
        latest = self.latest
        if latest is None or not latest.undo:
            return None
        return next((d for d in self.decisions if d.id == latest.supersedes_id), None)

    @property
    def basis(self) -> DecisionView | None:
        """The decision whose region labels and drawn marks the page starts from: the one in
        force, else the one just undone (undo gives the operator back what they had chosen)."""
        return self.in_force or self.undone


@dataclass(frozen=True)
class SavedView:
    """A decision the page confirms after it was saved (``Saved: PASS for img.png``):
    ``undoable`` while it is the item's latest row and the viewer took it; ``undone`` once an
    undo follows it."""

    review_id: int
    inspection_id: int
    verdict: str
    image: str  # the recorded image's file name
    undoable: bool
    undone: bool


@dataclass(frozen=True)
class UserView:
    id: int
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    password_hash: str = field(repr=False, default="")

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def can_export(self) -> bool:
        return self.role == "engineer"


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ReviewError(f"role {role!r}: use one of {', '.join(ROLES)}")
    return role
