"""How often operators had to correct each model version (section ``review.corrections`` of
:func:`inspect_db.reports.query.build_report`): the figure a line watches to see whether
retraining on the operators' marks helped ("40% fewer manual corrections").

Over the inspections the report's filters select, per model version (the ``model`` the
inspection names): ``inspections``, ``reviewed`` (with a decision in force) and
``corrected``, with the shares ``corrected / inspections`` and ``corrected / reviewed``. Only
an inspection's decision in force counts (its latest; earlier ones are the audit trail); while
its latest ``review`` row is an undo it has none: it is not reviewed
(:func:`inspect_db.records.decisions.in_force`). An inspection is **corrected** when that
decision

* ``verdict``: gives a verdict other than the model's. A decided REVIEW always counts: the
  model gave no answer, a person had to;
* ``regions``: labels a recorded region other than a confirmed defect of the class the model
  gave: another class (renamed), or ``not_defect``. ``unsure`` is no correction (the operator
  could not tell), and neither is a confirmed defect of the model's class;
* ``drawn``: holds a drawn mark (``review_mark``) labelled ``defect``: a region the model
  missed, or an outline the operator corrected (``replaces_region_id``).

``reasons`` counts each separately (an inspection may have several), so an engineer sees why.
The tables say it in one line (:data:`inspect_db.reports.layout.CORRECTED`).

A model version is named ``recipe@label`` when it is a version of the registry (``inspect model
add``: ``steel@v2``, ``steel@shipped``; ``plugin:recipe@label`` where two plugins share the
recipe's name), else ``file@sha256-prefix`` (the file its card names, else the recipe; the first
12 hex digits of its sha256). Inspections made without a model are one row, ``(no model)``.

Two aggregate queries (inspections per model; the decisions in force per model, with EXISTS
probes of their region labels and marks through the indexes on ``review_id``) and one over the
few model rows: Python loops over model versions only, never over inspections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_db.records.decisions import in_force
from inspect_db.reports.filters import Conditions
from inspect_db.reports.model import CorrectionReasons, ModelCorrections
from inspect_db.tables import MK, RL, RV, I, M, R

NO_MODEL = "(no model)"
SHA_PREFIX = 12
_NONE = (None, None, None, None, False)  # what a row of no model version is named from


@dataclass(frozen=True)
class VersionName:
    """How the report names one model version, with what it is named from."""

    model: str
    sha256: str | None
    plugin: str | None
    recipe: str | None
    version: str | None
    registered: bool


@dataclass(frozen=True)
class Tally:
    """The decisions in force on one model version's inspections."""

    reviewed: int = 0
    corrected: int = 0
    verdict: int = 0
    regions: int = 0
    drawn: int = 0


def corrections(conn: Connection, w: Conditions) -> list[ModelCorrections]:
    """The corrections per model version over the inspections ``w`` selects, oldest version
    first (the order the model rows were made in), inspections without a model last."""
    inspected = _inspected(conn, w)
    decided = _decided(conn, w)
    keys = sorted(set(inspected) | set(decided), key=lambda k: (k is None, k or 0))
    names = version_names(conn, [k for k in keys if k is not None])
    rows = []
    for key in keys:
        name = names.get(key) if key is not None else None
        name = name or VersionName(NO_MODEL if key is None else f"model {key}", *_NONE)
        n, t = inspected.get(key, 0), decided.get(key, Tally())
        rows.append(
            ModelCorrections(
                model=name.model,
                sha256=name.sha256,
                plugin=name.plugin,
                recipe=name.recipe,
                version=name.version,
                registered=name.registered,
                inspections=n,
                reviewed=t.reviewed,
                corrected=t.corrected,
                share_of_inspections=_share(t.corrected, n),
                share_of_reviewed=_share(t.corrected, t.reviewed),
                reasons=CorrectionReasons(verdict=t.verdict, regions=t.regions, drawn=t.drawn),
            )
        )
    return rows


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _inspected(conn: Connection, w: Conditions) -> dict[int | None, int]:
    """Inspections per model id (None: made without a model)."""
    q = sa.select(I.c.model_id, sa.func.count()).where(*w.insp).group_by(I.c.model_id)
    return {mid: int(n) for mid, n in conn.execute(q)}


def relabelled() -> sa.Exists:
    """Whether the decision ``RV`` gives a recorded region another class or no defect."""
    other_class = sa.and_(
        RL.c.label == "defect", sa.func.coalesce(RL.c.class_name, "") != R.c.class_name
    )
    return (
        sa.exists()
        .where(
            RL.c.review_id == RV.c.id,
            R.c.id == RL.c.region_id,
            sa.or_(RL.c.label == "not_defect", other_class),
        )
        .correlate(RV)
    )


def drew_defect() -> sa.Exists:
    """Whether the decision ``RV`` holds a drawn mark labelled defect."""
    return sa.exists().where(MK.c.review_id == RV.c.id, MK.c.label == "defect").correlate(RV)


def _flag(cond: Any, name: str) -> Any:
    return sa.case((cond, 1), else_=0).label(name)


def _decided(conn: Connection, w: Conditions) -> dict[int | None, Tally]:
    """Reviewed and corrected inspections per model id, with each reason, over the decision in
    force of every inspection ``w`` selects (none while its latest row is an undo: an undo is
    no corrected verdict, and an undone item is not reviewed)."""
    decided = in_force()
    flags = (
        sa.select(
            I.c.model_id.label("model_id"),
            _flag(RV.c.verdict != RV.c.model_verdict, "verdict"),
            _flag(relabelled(), "regions"),
            _flag(drew_defect(), "drawn"),
        )
        .select_from(decided)
        .join(RV, RV.c.id == decided.c.review_id)
        .join(I, I.c.id == RV.c.inspection_id)
        .where(*w.insp)
        .subquery("flags")
    )
    f = flags.c
    any_reason = sa.case((f.verdict + f.regions + f.drawn > 0, 1), else_=0)
    q = sa.select(
        f.model_id,
        sa.func.count(),
        sa.func.sum(any_reason),
        sa.func.sum(f.verdict),
        sa.func.sum(f.regions),
        sa.func.sum(f.drawn),
    ).group_by(f.model_id)
    return {mid: Tally(*(int(v or 0) for v in counts)) for mid, *counts in conn.execute(q)}


def version_names(conn: Connection, ids: list[int]) -> dict[int, VersionName]:
    """How the report names the model versions ``ids`` (see the module docstring); names two
    versions would share get the plugin, then the sha256 prefix, added."""
    if not ids:
        return {}
    cols = (M.c.id, M.c.sha256, M.c.plugin, M.c.recipe, M.c.version, M.c.path, M.c.card)
    rows = conn.execute(sa.select(*cols).where(M.c.id.in_(ids))).all()
    names = {r.id: _name(r) for r in rows}
    for step in (_with_plugin, _with_sha):
        seen = Counter(n.model for n in names.values())
        names = {k: step(n) if seen[n.model] > 1 else n for k, n in names.items()}
    return names


def _name(r: Any) -> VersionName:
    sha = str(r.sha256)
    registered = r.path is not None and bool(r.version)
    if registered:
        label = f"{r.recipe or r.plugin or 'model'}@{r.version}"
    else:
        label = f"{_card_file(r.card) or r.recipe or 'model'}@{sha[:SHA_PREFIX]}"
    return VersionName(label, sha, r.plugin, r.recipe, r.version, registered)


def _card_file(card: Any) -> str:
    """The model file's name as its card gives it (``model``), "" when it gives none."""
    value = card.get("model") if isinstance(card, dict) else None
    return PurePath(value).name if isinstance(value, str) else ""


def _with_plugin(n: VersionName) -> VersionName:
    if not (n.registered and n.plugin):
        return n
    return VersionName(f"{n.plugin}:{n.model}", *_fields(n))


def _with_sha(n: VersionName) -> VersionName:
    return VersionName(f"{n.model} ({(n.sha256 or '')[:SHA_PREFIX]})", *_fields(n))


def _fields(n: VersionName) -> tuple[str | None, str | None, str | None, str | None, bool]:
    return n.sha256, n.plugin, n.recipe, n.version, n.registered
