"""The typed result of a backtest (:meth:`inspect_batch.compare.Tally.result`), what its JSON,
terminal summary and page are made of: verdicts compared, latency compared with the records',
agreement with the operators, and why each changed verdict changed."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspect_batch.items import BacktestItem, ItemResult
from inspect_batch.why import WhyChanged


@dataclass(frozen=True)
class Spread:
    """Milliseconds over a set of images: how many, median, 95th percentile, max, mean."""

    count: int
    median: float
    p95: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: array[float]) -> Spread | None:
        """The spread of ``values`` (a float32 array); None for no values."""
        if not values:
            return None
        v = np.frombuffer(values, np.float32).astype(np.float64)
        return cls(
            len(v),
            round(float(np.median(v)), 2),
            round(float(np.percentile(v, 95)), 2),
            round(float(v.max()), 2),
            round(float(v.mean()), 2),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median": self.median,
            "p95": self.p95,
            "max": self.max,
            "mean": self.mean,
        }


@dataclass(frozen=True)
class Latency:
    """The candidate's model time per image against what the records say of the same images:
    ``latency_ms`` (taken up to recorded, the station's queue included) and ``inspect_ms``
    (the station's time on the image: reading, decoding, model, rules; records made before
    it was split have none)."""

    candidate_model_ms: Spread | None
    recorded_latency_ms: Spread | None
    recorded_inspect_ms: Spread | None


@dataclass(frozen=True)
class Disagreement:
    """An image an operator decided on where the candidate's verdict is not the operator's."""

    inspection_id: int
    station: str
    url: str
    recorded: str
    candidate: str
    operator: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "station": self.station,
            "url": self.url,
            "recorded": self.recorded,
            "candidate": self.candidate,
            "operator": self.operator,
        }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Operators:
    """On the images an operator decided on (a decision in force, not undone): how often the
    recorded and the candidate's verdict agree with the operator's, and the images where the
    candidate disagrees (the first ``max_examples``; ``candidate_disagrees`` counts all)."""

    images: int
    recorded_agrees: int
    candidate_agrees: int
    disagreements: tuple[Disagreement, ...]

    @property
    def candidate_disagrees(self) -> int:
        return self.images - self.candidate_agrees

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "recorded_agrees": self.recorded_agrees,
            "candidate_agrees": self.candidate_agrees,
            "recorded_share": share(self.recorded_agrees, self.images),
            "candidate_share": share(self.candidate_agrees, self.images),
            "candidate_disagrees": self.candidate_disagrees,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


@dataclass(frozen=True)
class Changed:
    """An image whose verdict the candidate changes, and why (None: its record was not found
    when the results came in)."""

    item: BacktestItem
    result: ItemResult
    reviewed: str | None  # the operator's verdict, if reviewed
    why: WhyChanged | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inspection_id": self.item.inspection_id,
            "station": self.item.station,
            "url": self.item.url,
            "recorded": self.item.recorded,
            "candidate": self.result.verdict,
            "operator": self.reviewed,
            "why": None if self.why is None else self.why.to_dict(),
        }


@dataclass(frozen=True)
class BacktestResult:
    """All a backtest found; :meth:`to_dict` is what ``inspect backtest --json`` prints
    (without the candidate and window, which the command adds)."""

    images: int
    changed: int
    confusion: dict[str, dict[str, int]]
    errors: int
    error_examples: tuple[str, ...]
    latency: Latency
    operators: Operators
    recorded_by: dict[str, tuple[int, int]]  # model -> (images, changed)
    changed_images: tuple[Changed, ...]  # the first ones (the page's)

    @property
    def agreement(self) -> float | None:
        return (1 - self.changed / self.images) if self.images else None

    def why_classes(self) -> dict[str, int]:
        """Per class, in how many of :attr:`changed_images` its regions differ (most first)."""
        n: dict[str, int] = {}
        for c in self.changed_images:
            for cls in c.why.classes if c.why else ():
                n[cls.class_name] = n.get(cls.class_name, 0) + 1
        return dict(sorted(n.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency
        out: dict[str, Any] = {
            "images": self.images,
            "changed": self.changed,
            "agreement": self.agreement,
            "confusion": self.confusion,
            "errors": self.errors,
            "latency_ms": _spread(lat.candidate_model_ms),  # the candidate's model step
            "recorded_latency_ms": _spread(lat.recorded_latency_ms),
            "recorded_inspect_ms": _spread(lat.recorded_inspect_ms),
            "reviewed": self.operators.to_dict(),
            "recorded_by": {
                m: {"images": n, "changed": k} for m, (n, k) in sorted(self.recorded_by.items())
            },
            "changed_images": [c.to_dict() for c in self.changed_images],
            "why_classes": self.why_classes(),
        }
        if self.error_examples:
            out["error_examples"] = list(self.error_examples)
        return out


def _spread(s: Spread | None) -> dict[str, Any] | None:
    return None if s is None else s.to_dict()
