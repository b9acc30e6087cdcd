"""Which models may stand in for a good-only recipe's model (the good-only loop).

A good-only recipe's model has two classes, ``background`` and ``anomaly``: it says where a
part is unlike the good ones, not what is wrong. Operators name its regions on the review page,
``inspect review export`` writes a dataset of the classes they named, and ``inspect train
--init-from`` trains a segmentation model on it: classes ``background`` and those names, never
``anomaly``. That model is a version of the same recipe (backtested on the recipe's history,
registered, promoted, switched to by the stations): a recipe that names no class judges its
regions by the same rules, and a region rule that names no decision gives REVIEW for an anomaly
region and FAIL for a named defect (:func:`inspect_core.rules.builtin.decision_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

from inspect_core.anomaly.config import CLASSES as GOOD_ONLY_CLASSES

__all__ = ["GOOD_ONLY_CLASSES", "NAMED_HINT", "names_defects"]

ANOMALY = GOOD_ONLY_CLASSES[1]  # a good-only model's one defect class: it names nothing
NAMED_HINT = (
    "a model that stands in for a good-only recipe's segments background and the classes "
    "operators named (never anomaly), as `inspect train` makes it from `inspect review export`"
)


def names_defects(own: Sequence[str], classes: Sequence[str]) -> bool:
    """Whether a model of ``classes`` names the defects of a good-only model of ``own``:
    ``own`` is ``background, anomaly``, and ``classes`` is ``background`` and at least one
    name, none of them ``anomaly``, each once."""
    own, classes = list(own), list(classes)
    return (
        own == GOOD_ONLY_CLASSES
        and len(classes) >= 2
        and classes[0] == own[0]
        and ANOMALY not in classes
        and len(set(classes)) == len(classes)
    )
