"""The regions an operator drew on the item page, from the decision form's ``marks`` field.

The page's script sends one JSON list, in the order the marks were drawn::

    [{"kind": "polygon", "points": [[x, y], ...], "choice": "class:crack"},
     {"kind": "stroke", "points": [[x, y], ...], "width": 3, "choice": "unsure",
      "replaces": 1234}]

``points`` are in the recorded image's pixels; ``choice`` is what a region's field takes
(``class:NAME``, ``not_defect`` or ``unsure``; :mod:`inspect_review.labels`); ``replaces``
names the region whose outline the mark corrects. Nothing from the page is trusted: this
module checks the shape of what was sent and names what is wrong; the geometry against the
image is checked where the decision is written (:func:`inspect_review.storage.marks.
check_marks`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inspect_db.errors import ReviewError
from inspect_db.models import MARK_KINDS
from inspect_review.labels import CLASS_PREFIX, class_choice
from inspect_review.storage.marks import (
    MAX_MARKS,
    MAX_POINTS,
    MAX_POLYGON_POINTS,
    MAX_STROKE_POINTS,
    MAX_WIDTH,
    MIN_WIDTH,
    is_number,
)
from inspect_review.storage.types import ItemView, Mark

MAX_TEXT = 200_000  # characters of the field: the checks' bounds, with room for the JSON
RELOAD = "reload the item and draw it again"


@dataclass(frozen=True)
class PageMark:
    """A drawn mark as the page's script holds it (and sends it back)."""

    kind: str
    points: list[list[float]]
    width: float | None
    choice: str  # class:NAME, not_defect or unsure
    replaces: int | None


@dataclass(frozen=True)
class DrawData:
    """What the item page's drawing script starts from: the image's size (the marks' frame),
    the class names it offers (digits 1-9 pick them), the latest decision's marks (a new
    decision starts from them), and the bounds the server checks."""

    width: int
    height: int
    names: list[str]
    marks: list[PageMark]
    max_marks: int = MAX_MARKS
    max_points: dict[str, int] | None = None
    min_width: float = MIN_WIDTH
    max_width: float = MAX_WIDTH


def draw_data(item: ItemView, offered: list[str]) -> DrawData:
    """The :class:`DrawData` of ``item``'s page (the marks of the decision it starts from:
    the one in force, or the one just undone)."""
    latest = item.basis
    marks = [
        PageMark(
            m.kind,
            [[x, y] for x, y in m.points],
            m.width,
            f"{CLASS_PREFIX}{m.class_name}" if m.label == "defect" else m.label,
            m.replaces_region_id,
        )
        for m in (latest.marks if latest is not None else [])
    ]
    limits = {"polygon": MAX_POLYGON_POINTS, "stroke": MAX_STROKE_POINTS, "all": MAX_POINTS}
    return DrawData(item.width, item.height, offered, marks, max_points=limits)


def parse_marks(
    text: str, item: ItemView, classes: list[str] | None, offered: list[str]
) -> tuple[Mark, ...]:
    """The marks of the form's ``marks`` field (empty: none); :class:`ReviewError` naming the
    mark and what is wrong with it."""
    if not text.strip():
        return ()
    if len(text) > MAX_TEXT:
        raise ReviewError(
            f"the drawn marks are {len(text)} characters long, over {MAX_TEXT}: draw fewer or "
            "simpler ones"
        )
    try:
        value = json.loads(text, parse_constant=_refuse)
    except ValueError:
        raise ReviewError(f"the drawn marks could not be read (not JSON); {RELOAD}") from None
    if not isinstance(value, list):
        raise ReviewError(f"the drawn marks are not a list; {RELOAD}")
    if len(value) > MAX_MARKS:
        raise ReviewError(f"{len(value)} drawn marks: a decision takes at most {MAX_MARKS}")
    regions = {r.id for r in item.regions}
    return tuple(_mark(n, raw, regions, classes, offered) for n, raw in enumerate(value, 1))


def _refuse(word: str) -> Any:
    raise ValueError(f"{word} is not a number")


def _mark(
    n: int, raw: Any, regions: set[int], classes: list[str] | None, offered: list[str]
) -> Mark:
    if not isinstance(raw, dict):
        raise ReviewError(f"drawn mark {n} is not an object; {RELOAD}")
    kind = raw.get("kind")
    if kind not in MARK_KINDS:
        raise ReviewError(
            f"drawn mark {n}: kind {str(kind)[:20]!r}; use one of {', '.join(MARK_KINDS)}"
        )
    points = _points(n, raw.get("points"))
    width: float | None = None
    if kind == "stroke":
        given = raw.get("width")
        if not is_number(given):
            raise ReviewError(f"drawn mark {n} (brush stroke) has no width in pixels; {RELOAD}")
        width = float(given)
    replaces = raw.get("replaces")
    if replaces is not None and (
        isinstance(replaces, bool) or not isinstance(replaces, int) or replaces not in regions
    ):
        raise ReviewError(
            f"drawn mark {n} replaces {str(replaces)[:20]!r}, not a region of this item; {RELOAD}"
        )
    label, name, index = _choice(n, raw.get("choice"), classes, offered)
    return Mark(kind, points, label, name, index, width, replaces)


def _points(n: int, raw: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or len(raw) > MAX_POINTS:
        raise ReviewError(
            f"drawn mark {n}: its points are not a list of at most {MAX_POINTS} [x, y] pairs; "
            + RELOAD
        )
    out = []
    for k, p in enumerate(raw, 1):
        if not (isinstance(p, list) and len(p) == 2 and all(is_number(v) for v in p)):
            raise ReviewError(f"drawn mark {n}: point {k} is not a pair of numbers; {RELOAD}")
        out.append((float(p[0]), float(p[1])))
    return tuple(out)


def _choice(
    n: int, raw: Any, classes: list[str] | None, offered: list[str]
) -> tuple[str, str | None, int | None]:
    value = raw.strip() if isinstance(raw, str) else ""
    if value in ("not_defect", "unsure"):
        return value, None, None
    if value.startswith(CLASS_PREFIX):
        try:
            name, index = class_choice(value[len(CLASS_PREFIX) :], offered, classes)
        except ReviewError as e:
            raise ReviewError(f"drawn mark {n}: {e}") from None
        return "defect", name, index
    raise ReviewError(
        f"drawn mark {n} has no class: choose one (1-9), type a name (T), or mark it not a "
        "defect (X) or unsure (U)"
    )
