"""The report per model version (section ``model_versions`` of
:func:`inspect_db.reports.query.build_report`): what each model that made the report's
inspections did, so that a new version is compared with the one before it.

Per model version (the model an inspection names, by its sha256): its images, the count and
share of each verdict, and its latency (mean and maximum, in ms). A version is named as in the
corrections (:func:`inspect_db.reports.corrections.version_names`: ``recipe@label`` for a
version of the registry, else ``file@sha256-prefix``) and carries its sha256 and, where the
registry holds it (``inspect model add``), its label. Inspections made without a model are one
row, ``(no model)``, last; the versions in the order their rows were made (oldest first).

One aggregate query (per model and verdict) over the inspections the filters select, and one
over the few model rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inspect_core.types import VERDICTS
from inspect_db.reports.corrections import NO_MODEL, version_names
from inspect_db.reports.filters import Conditions
from inspect_db.reports.model import ModelVersion, VersionLatency
from inspect_db.tables import I


def model_versions(conn: Connection, w: Conditions) -> list[ModelVersion]:
    """Images, verdicts and latency per model version over the inspections ``w`` selects."""
    q = (
        sa.select(
            I.c.model_id,
            I.c.verdict,
            sa.func.count(),
            sa.func.sum(I.c.latency_ms),
            sa.func.max(I.c.latency_ms),
        )
        .where(*w.insp)
        .group_by(I.c.model_id, I.c.verdict)
    )
    per: dict[int | None, dict[str, Any]] = {}
    for mid, verdict, n, lsum, lmax in conn.execute(q):
        p = per.setdefault(mid, {"n": dict.fromkeys(VERDICTS, 0), "sum": 0.0, "max": None})
        p["n"][verdict] += int(n)
        p["sum"] += float(lsum or 0.0)
        if lmax is not None and (p["max"] is None or float(lmax) > p["max"]):
            p["max"] = float(lmax)
    keys = sorted(per, key=lambda k: (k is None, k or 0))
    names = version_names(conn, [k for k in keys if k is not None])
    return [_row(k, per[k], names.get(k) if k is not None else None) for k in keys]


def _row(key: int | None, p: dict[str, Any], name: Any) -> ModelVersion:
    counts: dict[str, int] = p["n"]
    images = sum(counts.values())
    mean = round(p["sum"] / images, 3) if images else None
    top = round(p["max"], 3) if p["max"] is not None else None
    return ModelVersion(
        model=name.model if name else (NO_MODEL if key is None else f"model {key}"),
        sha256=name.sha256 if name else None,
        plugin=name.plugin if name else None,
        recipe=name.recipe if name else None,
        version=name.version if name and name.registered else None,
        registered=bool(name and name.registered),
        images=images,
        verdicts=counts,
        shares={v: round(n / images, 4) if images else None for v, n in counts.items()},
        latency_ms=VersionLatency(mean=mean, max=top),
    )
