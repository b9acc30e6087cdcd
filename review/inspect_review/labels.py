"""What a decision says of each region, from the page's form, and the classes an operator may
choose from.

Each region of the item page has a field ``region-<id>`` with one of:

``auto``        as the verdict implies: PASS makes it "not a defect", FAIL confirms the
                model's class (so P or F alone clears an item);
``confirm``     a defect of the model's class;
``not_defect``  a false alarm: background in the export;
``unsure``      nobody can tell: ignored (255) in the export;
``class:NAME``  a defect of class NAME (the model named it wrongly): one of the recipe's
                classes, a name operators gave before, or a new one (checked: short,
                printable, not background).

A region whose outline the operator drew anew (a mark that replaces it,
:mod:`inspect_review.drawn`) takes that mark's label whatever its field says.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from inspect_core.plugin_api.manager import get_registry
from inspect_db.errors import ReviewError
from inspect_review.storage.types import ItemView, Mark, RegionLabel, check_class_name

CHOICES = ("auto", "confirm", "not_defect", "unsure")
CLASS_PREFIX = "class:"
#: what ``auto`` stands for under each verdict
AUTO = {"PASS": "not_defect", "FAIL": "confirm"}


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


def choosable(
    item: ItemView, classes: list[str] | None, given: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The defect classes the page offers for a region or a mark of ``item``: every class but
    the background (or, no class list known, the classes of its regions), then the names
    operators ``given`` before and those of the decision the page starts from, each once."""
    base = classes[1:] if classes else sorted({r.class_name for r in item.regions})
    latest = item.basis
    named = [*given]
    if latest is not None:
        named += [lab.class_name for lab in latest.labels.values() if lab.class_name]
        named += [m.class_name for m in latest.marks if m.class_name]
    extra = sorted({n for n in named if n not in base and n.casefold() != "background"})
    return [*base, *extra]


def class_choice(
    name: str, offered: list[str], classes: list[str] | None
) -> tuple[str, int | None]:
    """The class ``name`` (a choice's NAME) stands for and its index in the model's
    ``classes`` (None for a name the model has not): an ``offered`` name as spelled there
    (whatever its case), else a new name if it is one (:func:`check_class_name`)."""
    text = name.strip()
    same = [o for o in offered if o.casefold() == text.casefold()]
    chosen = same[0] if same else check_class_name(text)
    return chosen, _index(classes, chosen, None)


def resolve(
    item: ItemView,
    verdict: str,
    form: Mapping[str, str],
    classes: list[str] | None,
    marks: tuple[Mark, ...] = (),
    given: list[str] | tuple[str, ...] = (),
) -> tuple[RegionLabel, ...]:
    """The label of every region of ``item`` from the form's ``region-<id>`` fields (a missing
    field counts as ``auto``); a region one of ``marks`` replaces takes that mark's label.
    :class:`ReviewError` names a value that is not a choice or a class name that cannot be
    one."""
    offered = choosable(item, classes, given)
    redrawn = {m.replaces_region_id: m for m in marks if m.replaces_region_id is not None}
    ours = {f"region-{r.id}" for r in item.regions}
    strays = sorted(k for k in form if k.startswith("region-") and k not in ours)
    if strays:
        raise ReviewError(
            f"{', '.join(s[:40] for s in strays[:5])}: not a region of inspection {item.id}; "
            "reload the item and decide again"
        )
    out = []
    for r in item.regions:
        mark = redrawn.get(r.id)
        if mark is not None:
            out.append(RegionLabel(r.id, mark.label, mark.class_name, mark.class_id))
            continue
        value = (form.get(f"region-{r.id}") or "auto").strip()
        if value == "auto":
            value = AUTO[verdict]
        if value == "confirm":
            out.append(
                RegionLabel(r.id, "defect", r.class_name, _index(classes, r.class_name, r.class_id))
            )
        elif value in ("not_defect", "unsure"):
            out.append(RegionLabel(r.id, value))
        elif value.startswith(CLASS_PREFIX):
            try:
                name, index = class_choice(value[len(CLASS_PREFIX) :], offered, classes)
            except ReviewError as e:
                raise ReviewError(f"region {r.number} ({r.class_name}): {e}") from None
            out.append(RegionLabel(r.id, "defect", name, index))
        else:
            raise ReviewError(
                f"region {r.number} ({r.class_name}): {value[:80]!r} is not a choice; give "
                f"{', '.join(CHOICES)} or class:NAME with NAME one of {', '.join(offered)} "
                "or a new name"
            )
    return tuple(out)


def preset_choices(item: ItemView) -> dict[int, str]:
    """What each region's field shows when the item opens (region id -> choice): the labels of
    the decision in force; none before a first decision (every field then says ``auto``).
    After an undo, the undone decision's labels but those its verdict gave by itself (not a
    defect for PASS, confirmed for FAIL), which go back to ``auto``: the choices the operator
    made, not the verdict they undid."""
    basis = item.basis
    if basis is None:
        return {}
    implied = None if basis is item.in_force else AUTO[basis.verdict]
    out = {}
    for r in item.regions:
        lab = basis.labels.get(r.id)
        if lab is None:
            continue
        if lab.label != "defect":
            choice = lab.label
        elif lab.class_name == r.class_name:
            choice = "confirm"
        else:
            choice = f"{CLASS_PREFIX}{lab.class_name}"
        if choice != implied:
            out[r.id] = choice
    return out


def _index(classes: list[str] | None, name: str, fallback: int | None) -> int | None:
    if classes and name in classes:
        return classes.index(name)
    return fallback
