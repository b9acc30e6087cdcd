"""Overlay images: classes coloured, regions boxed and labelled with the verdict on top.

Overlay files are named after their image; a name longer than the file system takes (255
bytes) is shortened by :func:`fit_name`, which the station's archive uses as well.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from inspect_core.errors import InspectError
from inspect_core.rules.roi import roi_points
from inspect_core.types import Decision, Verdict

if TYPE_CHECKING:  # types only: drawing an overlay needs no inspector loaded
    from inspect_core.rules.base import Rule
    from inspect_core.runtime.inspector import Inspector, Result

VERDICT_BGR = {
    Decision.PASS: (60, 180, 60),
    Decision.REVIEW: (0, 200, 255),
    Decision.FAIL: (40, 40, 220),
    Decision.ERROR: (160, 160, 160),
}


def palette(n: int) -> np.ndarray:
    """Distinct BGR colours; class 0 is black (not drawn)."""
    hsv = np.zeros((n, 1, 3), np.uint8)
    hsv[:, 0, 0] = (np.arange(n) * 180 // max(n, 1) + 90) % 180
    hsv[:, 0, 1:] = 230
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[:, 0]
    out[0] = 0
    return out


def banner_text(verdict: Verdict) -> str:
    """The verdict and the rule(s) that decided it (not a milder rule that fired first)."""
    deciding = dict.fromkeys(h.rule for h in verdict.hits if h.decision == verdict.decision)
    return verdict.decision.value + (f": {', '.join(deciding)}" if deciding else "")


def render_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    verdict: Verdict,
    classes: list[str],
    alpha: float = 0.45,
    draw_classes: list[int] | None = None,
) -> np.ndarray:
    """BGR uint8 overlay of the label map and region boxes on the (gray or RGB) image."""
    base = (
        cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.ndim == 2
        else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    )
    base = base.copy()
    colours = palette(len(classes))
    ids = draw_classes if draw_classes is not None else range(1, len(classes))
    colour_map = colours[labels]
    mask = np.isin(labels, list(ids))
    base[mask] = (base[mask] * (1 - alpha) + colour_map[mask] * alpha).astype(np.uint8)
    scale = max(0.35, min(base.shape[:2]) / 600)
    thick = max(1, int(round(scale * 2)))
    for r in verdict.regions:
        x, y, w, h = r.bbox
        c = tuple(int(v) for v in colours[r.class_id])
        cv2.rectangle(base, (x, y), (x + w - 1, y + h - 1), c, thick)
        label = f"{r.class_name} {r.mean_prob:.2f}"
        cv2.putText(
            base,
            label,
            (x, max(10, y - 3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale * 0.8,
            c,
            max(1, thick - 1),
            cv2.LINE_AA,
        )
    banner = max(14, int(22 * scale))
    colour = VERDICT_BGR[verdict.decision]
    cv2.rectangle(base, (0, 0), (base.shape[1], banner), colour, -1)
    text = banner_text(verdict)
    cv2.putText(
        base,
        text,
        (4, banner - 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        banner / 30,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return base


class OverlayError(InspectError, OSError):
    """An overlay cannot be written: an OSError (stations log it and go on) that the command
    line reports as a message with exit code 2."""


NAME_MAX = 255  # bytes in one file name on common file systems (ext4, XFS, btrfs, NTFS, APFS)
KEEP_SUFFIX = 16  # an extension longer than this is not kept when a name is shortened


def fit_name(name: str, reserve: int = 0, limit: int = NAME_MAX) -> str:
    """``name`` if it and ``reserve`` more bytes fit in ``limit`` bytes; else, deterministically,
    a readable prefix (cut on a character boundary), ``~``, 8 hex digits of the sha256 of the
    whole name (distinct names stay distinct) and the extension."""
    raw = os.fsencode(name)
    if len(raw) + reserve <= limit:
        return name
    stem, suffix = os.path.splitext(name)
    if len(os.fsencode(suffix)) > KEEP_SUFFIX:
        stem, suffix = name, ""
    tag = "~" + hashlib.sha256(raw).hexdigest()[:8]
    room = max(1, limit - reserve - len(os.fsencode(suffix)) - len(tag))
    head = os.fsencode(stem)[:room]
    try:
        stem.encode("utf-8")
        prefix = head.decode("utf-8", "ignore")  # drops a character cut in two
    except UnicodeEncodeError:  # not UTF-8 on disk: keep the bytes as they are
        prefix = os.fsdecode(head)
    return prefix + tag + suffix


def _write_hint(e: OSError) -> str:
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free space on it, or pass another --out"
    if code == errno.ENAMETOOLONG:
        return "a folder name in that path is too long for the file system: use a shorter --out"
    if code in (errno.EACCES, errno.EPERM):
        return "the folder is not writable by this user: fix its permissions, or pass another --out"
    if code == errno.EROFS:
        return "the file system is mounted read-only: pass another --out"
    if code in (errno.EEXIST, errno.ENOTDIR):
        return "a file is in the way where a folder is needed: pass another --out"
    return "check that the folder exists and is writable, or pass another --out"


def save_overlay(path: str | Path, overlay: np.ndarray) -> Path:
    """Write the overlay PNG (creating its folder) and return where it went (the name is
    shortened to fit, see :func:`fit_name`); :class:`OverlayError` says why it cannot."""
    path = Path(path)
    path = path.with_name(fit_name(path.name))
    buf: np.ndarray | str  # the encoded image, or why OpenCV could not encode it
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", overlay)
    except cv2.error as e:
        ok, buf = False, str(e)
    if not ok or isinstance(buf, str):
        raise OverlayError(
            f"{path}: could not encode the overlay as {path.suffix or '.png'} "
            f"({buf if isinstance(buf, str) else 'unsupported format'}); "
            "name it .png"
        )
    opened = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            opened = True
            f.write(buf.tobytes())
    except OSError as e:
        if opened:
            try:
                os.unlink(path)  # no half-written overlay left behind
            except OSError:
                pass
        raise OverlayError(
            f"{path}: could not write the overlay ({e.strerror or e}): {_write_hint(e)}"
        ) from e
    return path


def roi_outlines(rules: Sequence[Rule], shape: tuple[int, int]) -> list[np.ndarray]:
    """Pixel polygons of every region-of-interest rule (drawn so operators see the zone)."""
    h, w = shape
    out = []
    for rule in rules:
        polygon = getattr(rule, "polygon", None)
        if not polygon:
            continue
        pts, fraction = roi_points(polygon, getattr(rule, "units", "auto"))
        if fraction:
            pts = pts * [w - 1, h - 1]
        out.append(np.round(pts).astype(np.int32))
    return out


def render_result(result: Result, verdict: Verdict, inspector: Inspector) -> np.ndarray:
    """The overlay of one inspection: the recipe's region and coverage classes coloured, the
    regions boxed, the regions of interest outlined (dashed white), the verdict on top."""
    classes = inspector.classes
    ids = set(inspector.region_ids) | {classes.index(c) for c in inspector.recipe.coverage_classes}
    ov = render_overlay(result.image, result.labels, verdict, classes, draw_classes=sorted(ids))
    thick = max(1, round(min(ov.shape[:2]) / 300))
    for poly in roi_outlines(inspector.rules, result.labels.shape):
        cv2.polylines(ov, [poly], True, (255, 255, 255), thick, cv2.LINE_AA)
    return ov
