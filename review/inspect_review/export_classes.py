"""The classes an export writes (``classes.json``), and which images a good-only recipe's export
leaves out.

Every exported image must come from models with one class list (its recipe's). The classes
are that list, then the names operators gave that it lacks (sorted), each a new index after
the recipe's: what the review page calls "a new name".

A good-only recipe's model knows two classes, ``background`` and ``anomaly``: anomaly says
something is wrong, not what. Its export is a dataset of the classes operators *named*
(``background`` and those names) and of the good images. A region or mark still of class
``anomaly`` names nothing: such an image is left out (listed in the summary with why, and
counted), and so is an image decided FAIL with no defect named at all, whose mask an anomaly
model would read as a good part's. When no image names a class yet, the recipe's two classes
are kept, so the good images still make a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspect_core.anomaly.config import CLASSES as GOOD_ONLY_CLASSES
from inspect_db.errors import ReviewError
from inspect_review.labels import class_list
from inspect_review.storage.export import ReviewedImage

UNNAMED = "anomaly"  # a good-only model's one defect class: it names nothing


@dataclass(frozen=True)
class ClassPlan:
    """What an export writes: ``classes`` (index = mask value), the defect classes that are
    no class of the export (``unnamed``: written 255, their images left out), whether the
    images are a good-only recipe's, and what the summary says of it (``notes``)."""

    classes: list[str]
    unnamed: frozenset[str] = frozenset()
    good_only: bool = False
    notes: list[str] = field(default_factory=list)


def defect_names(img: ReviewedImage) -> list[str]:
    """The defect classes of an image's latest decision: its regions' (but those a drawn mark
    replaces) and its drawn marks', in that order."""
    redrawn = {m.replaces_region_id for m in img.marks}
    names = [
        r.class_name or r.model_class
        for r in img.regions
        if r.label == "defect" and r.region_id not in redrawn
    ]
    return names + [m.class_name for m in img.marks if m.label == "defect" and m.class_name]


def plan_classes(images: list[ReviewedImage]) -> ClassPlan:
    """The :class:`ClassPlan` of these images; :class:`ReviewError` when they come from
    models of different class lists."""
    base = base_classes(images)
    given = {n for img in images for n in defect_names(img)}
    if base == GOOD_ONLY_CLASSES:
        named = sorted(given - {UNNAMED} - set(base))
        note = (
            f"good-only recipe: the classes are those operators named ({', '.join(named)}) and "
            "the good images"
            if named
            else "good-only recipe: no class is named yet, so the recipe's two classes are kept "
            "and only the good images carry labels"
        )
        return ClassPlan(
            ["background", *named] if named else list(base),
            frozenset({UNNAMED}),
            True,
            [
                note,
                f"images with a region or mark still of class {UNNAMED!r}, or decided FAIL with "
                "no defect named, are left out (listed in skipped): name their defects on the "
                "review page (1-9, or T to type a name) and export again",
            ],
        )
    new = sorted(given - set(base))
    notes = [f"classes operators named, after the recipe's: {', '.join(new)}"] if new else []
    return ClassPlan([*base, *new], notes=notes)


def left_out(img: ReviewedImage, plan: ClassPlan) -> str | None:
    """Why a good-only recipe's export leaves ``img`` out (None: it is exported)."""
    if not plan.good_only:
        return None
    names = defect_names(img)
    unnamed = sum(n in plan.unnamed for n in names)
    if unnamed:
        return (
            f"{unnamed} defect(s) still of class {UNNAMED!r}, which names nothing: give them a "
            "class on the review page and export again"
        )
    if img.verdict == "FAIL" and not names:
        return (
            "decided FAIL with no defect named (an anomaly model would take its mask for a good "
            "part's): mark the defect on the review page and export again"
        )
    return None


def base_classes(images: list[ReviewedImage]) -> list[str]:
    """The one class list of every image (their models' cards, else their recipes)."""
    found: dict[tuple[str, ...], list[ReviewedImage]] = {}
    for img in images:
        classes = class_list(img.plugin, img.recipe, img.card_classes)
        if classes is None:
            raise ReviewError(
                f"inspection {img.inspection_id} ({img.plugin}:{img.recipe}): its model's "
                "classes are unknown (no model card recorded, and the plugin's recipe is not "
                "installed here); install the plugin, or leave it out with --recipe/--station"
            )
        found.setdefault(tuple(classes), []).append(img)
    if len(found) > 1:
        kinds = "; ".join(
            f"{sorted({f'{i.plugin}:{i.recipe}' for i in imgs})} classes {list(c)}"
            for c, imgs in found.items()
        )
        raise ReviewError(
            f"the reviewed images come from models with different classes ({kinds}); a "
            "dataset has one class list: export one recipe at a time with --recipe"
        )
    return list(next(iter(found)))
