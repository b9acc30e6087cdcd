"""What a decision says of each region, from the page's form, and the classes an operator may
choose from.

Each region of the item page has a field ``region-<id>`` with one of:

``auto``        as the verdict implies: PASS makes it "not a defect", FAIL confirms the
                model's class (so P or F alone clears an item);
``confirm``     a defect of the model's class;
``not_defect``  a false alarm: background in the export;
``unsure``      nobody can tell: ignored (255) in the export;
``class:NAME``  a defect of class NAME (the model named it wrongly).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from inspect_core.plugin_api.manager import get_registry
from inspect_db.errors import ReviewError
from inspect_review.storage.types import ItemView, RegionLabel

CHOICES = ("auto", "confirm", "not_defect", "unsure")
CLASS_PREFIX = "class:"


def class_list(plugin: str, recipe: str, card_classes: list[str] | None) -> list[str] | None:
    """The model's classes (index = mask value; 0 = background): the card recorded with the
    inspection, else the installed plugin's recipe; None when neither is known."""
    if card_classes:
        return list(card_classes)
    found = _recipe_classes(plugin, recipe)
    return list(found) if found else None


@lru_cache(maxsize=64)
def _recipe_classes(plugin: str, recipe: str) -> tuple[str, ...] | None:
    """The classes of ``plugin:recipe`` through the plugin registry (its model card)."""
    try:
        domain = get_registry().domains.get(plugin)
        card = domain.recipe(recipe).load_card() if domain is not None else None
    except Exception:  # a recipe left out or a damaged card: the caller says what is missing
        return None
    classes = card.get("classes") if isinstance(card, dict) else None
    if isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes):
        return tuple(classes)
    return None


def choosable(item: ItemView, classes: list[str] | None) -> list[str]:
    """The defect classes an operator may give a region of ``item``: every class but the
    background, or (no class list known) the classes of its regions."""
    if classes:
        return classes[1:]
    return sorted({r.class_name for r in item.regions})


def resolve(
    item: ItemView, verdict: str, form: Mapping[str, str], classes: list[str] | None
) -> tuple[RegionLabel, ...]:
    """The label of every region of ``item`` from the form's ``region-<id>`` fields (a missing
    field counts as ``auto``). :class:`ReviewError` names a value that is not a choice or a
    class that is not the model's."""
    offered = choosable(item, classes)
    ours = {f"region-{r.id}" for r in item.regions}
    strays = sorted(k for k in form if k.startswith("region-") and k not in ours)
    if strays:
        raise ReviewError(
            f"{', '.join(s[:40] for s in strays[:5])}: not a region of inspection {item.id}; "
            "reload the item and decide again"
        )
    out = []
    for r in item.regions:
        value = (form.get(f"region-{r.id}") or "auto").strip()
        if value == "auto":
            value = "not_defect" if verdict == "PASS" else "confirm"
        if value == "confirm":
            out.append(
                RegionLabel(r.id, "defect", r.class_name, _index(classes, r.class_name, r.class_id))
            )
        elif value in ("not_defect", "unsure"):
            out.append(RegionLabel(r.id, value))
        elif value.startswith(CLASS_PREFIX) and value[len(CLASS_PREFIX) :] in offered:
            name = value[len(CLASS_PREFIX) :]
            out.append(RegionLabel(r.id, "defect", name, _index(classes, name, None)))
        else:
            raise ReviewError(
                f"region {r.number} ({r.class_name}): {value[:80]!r} is not a choice; give "
                f"{', '.join(CHOICES)} or class:NAME with NAME one of {', '.join(offered)}"
            )
    return tuple(out)


def _index(classes: list[str] | None, name: str, fallback: int | None) -> int | None:
    if classes and name in classes:
        return classes.index(name)
    return fallback
