"""``inspect review export``: the reviewed images as a training dataset.

Layout (what ``inspect train --data`` reads)::

    classes.json        the model's classes and the names operators gave (for a good-only
                        recipe: the named classes; :mod:`inspect_review.export_classes`),
                        ignore_index 255, and "groups": a regex whose one capture group names
                        each image's station and day
    train/images/<station>_<YYYYMMDD>_<inspection id>.<ext>
    train/masks/<same stem>.png            (masks: :mod:`inspect_review.masks`)
    val/...             only with --val-share: the newest whole days held out
    reviewed.csv        one row per image: its group, inspection, decision, reviewer, source
    export.json         the database, the filters, when, what was skipped and why

Each image's latest decision counts, with the regions the operator drew in it (scaled from the
recorded image's pixels to the mask's frame). An image is copied byte for byte when its regions
were found in it at its own size; when the recipe resized it first (the overlay's size
differs), it is resized to that frame and written as PNG, so that image and mask agree. The
files are read with the review page's checks (:func:`inspect_review.media.read_recorded`):
inside the ``--media-root`` folders when given (symlinks resolved), regular, not empty, still
the recorded image (its sha256), and decodable; a file that fails one is skipped and listed in
export.json (and the summary), and the export goes on. An export is a fixed snapshot: the
folder must be new or empty. It is written under a temporary name beside it and renamed when
complete, so an export that fails leaves nothing in the way of the next.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
from sqlalchemy.engine import Connection, Engine

from inspect_core.data.datasets import IMAGE_EXTS
from inspect_db.engine import connect, safe_url
from inspect_db.errors import RecordsError, ReviewError
from inspect_db.migrate import ensure_schema
from inspect_db.models import utcnow
from inspect_db.reports.csv_out import write_csv
from inspect_db.reports.filters import iso
from inspect_review.export_classes import ClassPlan, left_out, plan_classes
from inspect_review.masks import review_mask
from inspect_review.media import decode, read_recorded
from inspect_review.storage.export import ExportFilters, ReviewedImage, reviewed_images
from inspect_review.storage.queue import filter_choices

#: classes.json "groups": the station and day in a file stem ``<station>_<YYYYMMDD>_<id>``
GROUPS = r"^(.+_\d{8})_\d+$"
MANIFEST = (
    "file",
    "split",
    "group",
    "inspection_id",
    "review_id",
    "station",
    "inspected_at",
    "model_verdict",
    "verdict",
    "reviewer",
    "decided_at",
    "image_sha256",
    "source",
)


@dataclass
class ExportSummary:
    out: str
    classes: list[str]
    images: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    val_groups: list[str] = field(default_factory=list)
    skipped: list[dict[str, str | int]] = field(default_factory=list)
    unnamed: int = 0  # images a good-only recipe's export left out: a defect not named
    notes: list[str] = field(default_factory=list)  # what the classes are, and why


def stem_of(img: ReviewedImage) -> str:
    station = re.sub(r"[^A-Za-z0-9-]+", "-", img.station).strip("-") or "station"
    return f"{station}_{img.inspected_at:%Y%m%d}_{img.inspection_id:06d}"


def group_of(stem: str) -> str:
    m = re.match(GROUPS, stem)
    assert m is not None, stem
    return m.group(1)


def export_dataset(
    engine: Engine,
    out: str | Path,
    filters: ExportFilters,
    val_share: float = 0.0,
    log: Callable[[str], None] = lambda _m: None,
    media_roots: tuple[str, ...] = (),
) -> ExportSummary:
    """Write the reviewed images that ``filters`` select to the dataset folder ``out``;
    ``media_roots``: the folders the recorded files may be read from (none: any)."""
    out = Path(out)
    _check_out(out)
    if not 0.0 <= val_share < 1.0:
        raise ReviewError(f"--val-share {val_share}: give a share from 0 to below 1, e.g. 0.2")
    ensure_schema(engine)
    with connect(engine) as conn:
        _check_station(conn, filters)
        images = list(reviewed_images(conn, filters))
    if not images:
        raise ReviewError(
            "no reviewed image matches the filters: decide some on the review page "
            "(`inspect review serve`), or widen --since/--station/--recipe"
        )
    plan = plan_classes(images)
    for note in plan.notes:
        log(note)
    work = _work_folder(out)
    try:
        summary, rows = _write_images(work, images, plan, val_share, media_roots, log)
        summary.out = str(out)
        _write_meta(work, out.name, engine, filters, val_share, summary, rows)
        _publish(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _write_images(
    work: Path,
    images: list[ReviewedImage],
    plan: ClassPlan,
    val_share: float,
    roots: tuple[str, ...],
    log: Callable[[str], None],
) -> tuple[ExportSummary, list[dict[str, object]]]:
    """Write each image and its mask under ``work``; the summary (with what was skipped and
    why) and the manifest rows. ReviewError when not one image could be written."""
    stems = [stem_of(i) for i in images]
    val = _val_groups([group_of(s) for s in stems], val_share, log)
    summary = ExportSummary(str(work), plan.classes, val_groups=sorted(val), notes=plan.notes)
    rows = []
    for img, stem in zip(images, stems):
        split = "val" if group_of(stem) in val else "train"
        why = left_out(img, plan)
        summary.unnamed += why is not None
        if why is None:
            try:
                name = _write_pair(work / split, stem, img, plan, roots)
            except (OSError, ValueError, cv2.error) as e:
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        if why is not None:
            summary.skipped.append(
                {"inspection_id": img.inspection_id, "source": img.source, "why": why}
            )
            log(f"skipped inspection {img.inspection_id}: {img.source}: {why}")
            continue
        summary.splits[split] = summary.splits.get(split, 0) + 1
        rows.append(_manifest_row(f"{split}/images/{name}", split, img))
    summary.images = len(rows)
    if not rows:
        first = summary.skipped[0]
        hint = (
            "name the defects on the review page first"
            if summary.unnamed == len(images)
            else "is the archive folder mounted here, and given with --media-root?"
        )
        raise ReviewError(
            f"none of the {len(images)} reviewed images could be exported (first: "
            f"{first['source']}: {first['why']}); {hint}"
        )
    return summary, rows


def _work_folder(out: Path) -> Path:
    """A new folder beside ``out`` that the export is written to before it is renamed."""
    work = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        work.mkdir()
    except OSError as e:
        raise ReviewError(
            f"{out.parent}: cannot write there ({e.strerror or e}); give --out a folder you can "
            "write to"
        ) from e
    return work


def _publish(work: Path, out: Path) -> None:
    """Rename the complete export ``work`` to ``out`` (which may be an empty folder)."""
    try:
        os.rename(work, out)
    except OSError as e:
        raise ReviewError(
            f"{out}: cannot put the export there ({e.strerror or e}); was something written "
            "to it meanwhile? give a new folder"
        ) from e


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReviewError(
            f"{out}: exists and is not an empty folder; an export is a fixed snapshot: give a "
            "new folder (e.g. with the date in its name)"
        )
    if not out.parent.is_dir():
        raise ReviewError(f"{out}: its folder {out.parent} does not exist; create it first")


def _check_station(conn: Connection, filters: ExportFilters) -> None:
    stations, recipes, _ = filter_choices(conn)
    for option, value, known in (
        ("--station", filters.station, stations),
        ("--recipe", filters.recipe, recipes),
    ):
        if value is not None and value not in known:
            raise ReviewError(
                f"{option} {value!r}: not in the database; known: {', '.join(known) or '(none)'}"
            )


def _val_groups(groups: list[str], share: float, log: Callable[[str], None]) -> set[str]:
    """The newest whole days (station and day groups) that hold about ``share`` of the
    images; none for share 0, never every group."""
    if share <= 0:
        return set()
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    if len(sizes) < 2:
        log(f"--val-share {share}: only one station-day ({next(iter(sizes))}): all in train")
        return set()
    order = sorted(sizes, key=lambda g: (g[-8:], g), reverse=True)  # newest day first
    val: set[str] = set()
    n = 0
    for g in order[:-1]:
        if val and n + sizes[g] > share * len(groups):
            break
        val.add(g)
        n += sizes[g]
    return val


def _write_pair(
    folder: Path, stem: str, img: ReviewedImage, plan: ClassPlan, roots: tuple[str, ...]
) -> str:
    """Write the image and its mask; returns the image's file name. OSError / ValueError
    when the recorded file cannot be read or is not the recorded image."""
    data = read_recorded(img.source, roots, img.image_sha256)
    pixels = decode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError("damaged or not an image (it does not decode)")
    frame = _frame(img, pixels.shape[:2], roots)
    scale = (frame[1] / max(1, img.width), frame[0] / max(1, img.height))  # marks: image px
    mask = review_mask(
        frame, img.verdict, img.regions, plan.classes, img.marks, scale, plan.unnamed
    )
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    ext = Path(img.source).suffix.lower()
    if frame == pixels.shape[:2] and ext in IMAGE_EXTS:
        name = stem + ext
        (folder / "images" / name).write_bytes(data)
    else:
        name = stem + ".png"
        resized = cv2.resize(pixels, (frame[1], frame[0]), interpolation=cv2.INTER_AREA)
        if not cv2.imwrite(str(folder / "images" / name), resized):
            raise OSError(f"cannot write {folder / 'images' / name}")
    if not cv2.imwrite(str(folder / "masks" / f"{stem}.png"), mask):
        raise OSError(f"cannot write {folder / 'masks' / f'{stem}.png'}")
    return name


def _frame(
    img: ReviewedImage, image_shape: tuple[int, int], roots: tuple[str, ...]
) -> tuple[int, int]:
    """The size of the frame the regions were found in: the overlay's (drawn on that frame),
    else the image's own."""
    if img.overlay_path:
        try:
            ov = decode(read_recorded(img.overlay_path, roots), cv2.IMREAD_GRAYSCALE)
        except (OSError, ValueError):
            ov = None
        if ov is not None:
            return (int(ov.shape[0]), int(ov.shape[1]))
    return (int(image_shape[0]), int(image_shape[1]))


def _manifest_row(file: str, split: str, img: ReviewedImage) -> dict[str, object]:
    return {
        "file": file,
        "split": split,
        "group": group_of(Path(file).stem),
        "inspection_id": img.inspection_id,
        "review_id": img.review_id,
        "station": img.station,
        "inspected_at": iso(img.inspected_at),
        "model_verdict": img.model_verdict,
        "verdict": img.verdict,
        "reviewer": img.reviewer,
        "decided_at": iso(img.decided_at),
        "image_sha256": img.image_sha256,
        "source": img.source,
    }


def _write_meta(
    out: Path,
    name: str,
    engine: Engine,
    filters: ExportFilters,
    val_share: float,
    summary: ExportSummary,
    rows: list[dict[str, object]],
) -> None:
    meta = {"classes": summary.classes, "ignore_index": 255, "name": name, "groups": GROUPS}
    try:
        (out / "classes.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_csv(out / "reviewed.csv", MANIFEST, rows)
        info = {
            "database": safe_url(engine.url),
            "exported_at": iso(utcnow()),
            "filters": {
                k: iso(v) if k in ("since", "until") else v for k, v in asdict(filters).items()
            },
            "val_share": val_share,
            "split_rule": "every image in train"
            if not summary.val_groups
            else "the newest whole station-days in val, about val_share of the images",
            **asdict(summary),
        }
        (out / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    except OSError as e:
        raise RecordsError(f"{out}: cannot write the dataset ({e.strerror or e})") from e
