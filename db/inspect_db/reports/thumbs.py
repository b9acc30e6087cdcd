"""The HTML report's gallery pictures (:class:`Thumb`): each FAIL or REVIEW image as a small
JPEG in a ``data:`` URI, its recorded overlay where there is one to read, else the image itself
with the outlines of its recorded regions (drawn as SVG over it by the template, as the review
page draws them: the polygon where one was recorded, else the box), else a note that says which
file is gone and why. An image is read only when it is still the recorded one (its sha256):
outlines over another picture would show defects where there are none.

Files are read as the model files are (:func:`inspect_core.cards.read_small_file`: a regular
file, opened without blocking, at most :data:`MAX_BYTES`), so a named pipe or a device recorded
by mistake cannot hang the report.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import PurePath

import cv2
import numpy as np

from inspect_core.cards import read_small_file
from inspect_core.data.bit_depth import display_bits, to_8bit
from inspect_db.reports.model import GalleryImage, Outline

THUMB_SIDE = 200
MAX_BYTES = 64 * 1024 * 1024  # the review page's limit on a picture


@dataclass(frozen=True)
class Shape:
    """An outline in the recorded image's pixels: ``points`` (SVG ``x,y x,y``) for a
    polygon, else the box ``x``, ``y``, ``width``, ``height``; ``title``: its class."""

    title: str
    points: str = ""
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Thumb:
    """A gallery image as the page shows it."""

    id: int
    verdict: str
    station: str
    inspected_at: str
    source: str
    name: str  # the file name of the source
    thumbnail: str | None  # a data: URI, None when neither overlay nor image can be read
    outlined: bool  # the image with its regions outlined (no overlay to show)
    width: int  # the recorded image's size: the frame of the outlines
    height: int
    shapes: tuple[Shape, ...]
    more: int  # regions not outlined (beyond the gallery's limit)
    note: str  # what is shown instead of the overlay, or why nothing is ("" for an overlay)

    @classmethod
    def of(cls, it: GalleryImage) -> Thumb:
        uri, why_not = (None, "no overlay recorded")
        if it.overlay_path:
            uri, why = thumbnail_data_uri(it.overlay_path)
            why_not = f"overlay missing ({why})"
        outlined, note = False, ""
        if uri is None:
            uri, why = thumbnail_data_uri(it.source, it.image_sha256)
            outlined = uri is not None
            note = (
                f"{why_not}: regions outlined from the record"
                if outlined
                else f"{why_not}; image file missing ({why}): {it.source}"
            )
        shapes = tuple(_shape(o) for o in it.outlines) if outlined else ()
        more = max(0, it.n_regions - len(shapes)) if outlined else 0
        return cls(
            id=it.id,
            verdict=it.verdict,
            station=it.station,
            inspected_at=it.inspected_at or "",
            source=it.source,
            name=PurePath(it.source).name,
            thumbnail=uri,
            outlined=outlined,
            width=max(it.width, 1),
            height=max(it.height, 1),
            shapes=shapes,
            more=more,
            note=note,
        )


def _shape(o: Outline) -> Shape:
    if len(o.polygon) >= 2:
        return Shape(o.class_name, points=" ".join(f"{x},{y}" for x, y in o.polygon))
    x, y, w, h = o.bbox
    return Shape(o.class_name, x=x, y=y, width=max(w, 1), height=max(h, 1))


def thumbnail_data_uri(
    path: str, sha256: str | None = None, side: int = THUMB_SIDE
) -> tuple[str | None, str]:
    """A downscaled JPEG of the image at ``path`` as a data URI, or None and why not (gone,
    not a regular file, too large, empty, not the recorded image ``sha256``, not an image)."""
    try:
        data = read_small_file(path, MAX_BYTES)
    except FileNotFoundError:
        return None, "file not found"
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the recorded path
        return None, (e.strerror if isinstance(e, OSError) else None) or str(e)
    if not data:
        return None, "the file is empty"
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        return None, "not the recorded image: its sha256 differs"
    img = _decode(data)
    if img is None:
        return None, "not an image OpenCV can read"
    h, w = img.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        return None, "could not be encoded as JPEG"
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii"), ""


def _decode(data: bytes) -> np.ndarray | None:
    """``data`` as an 8-bit gray or BGR image (16 bits scaled by the bits they use, as the
    review page shows them), None when OpenCV cannot read it."""
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    if img.dtype == np.uint16:
        img = to_8bit(img, display_bits(img))
    elif img.dtype != np.uint8:
        return None
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    out: np.ndarray = img
    return out
