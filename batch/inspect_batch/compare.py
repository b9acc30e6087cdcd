"""The tally of a backtest: recorded verdict against the candidate's, image by image, kept in
bounded memory whatever the number of images (counts, latencies as float32, and only the first
``max_examples`` changed images for the page)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspect_batch.items import BacktestItem, ItemResult

VERDICTS = ("PASS", "REVIEW", "FAIL")


@dataclass(frozen=True)
class Changed:
    """An image whose verdict the candidate changes, for the page."""

    item: BacktestItem
    result: ItemResult
    reviewed: str | None  # the operator's verdict, if reviewed


@dataclass
class Tally:
    max_examples: int = 200
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {a: dict.fromkeys(VERDICTS, 0) for a in VERDICTS}
    )
    images: int = 0
    changed: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    latencies: array[float] = field(default_factory=lambda: array("f"))
    examples: list[Changed] = field(default_factory=list)
    # reviewed images: how often the recorded and the candidate verdict match the operator's
    reviewed: int = 0
    recorded_agrees: int = 0
    candidate_agrees: int = 0
    # per model that judged the records (a window across a promotion holds two): images, changed
    by_model: dict[str, list[int]] = field(default_factory=dict)

    def add(self, item: BacktestItem, result: ItemResult, human: str | None = None) -> None:
        if result.verdict is None:
            self.errors += 1
            if len(self.error_examples) < 20:
                self.error_examples.append(f"{item.url}: {result.error}")
            return
        self.images += 1
        per_model = self.by_model.setdefault(item.model or "unknown", [0, 0])
        per_model[0] += 1
        per_model[1] += result.verdict != item.recorded
        self.confusion[item.recorded][result.verdict] += 1
        self.latencies.append(result.latency_ms)
        if human is not None:
            self.reviewed += 1
            self.recorded_agrees += item.recorded == human
            self.candidate_agrees += result.verdict == human
        if result.verdict != item.recorded:
            self.changed += 1
            if len(self.examples) < self.max_examples:
                self.examples.append(Changed(item, result, human))

    def summary(self) -> dict[str, Any]:
        """The JSON ``inspect backtest --json`` prints."""
        lat = np.frombuffer(self.latencies, np.float32) if self.latencies else None
        out: dict[str, Any] = {
            "images": self.images,
            "changed": self.changed,
            "agreement": (1 - self.changed / self.images) if self.images else None,
            "confusion": self.confusion,
            "errors": self.errors,
            "latency_ms": None
            if lat is None
            else {
                "median": round(float(np.median(lat)), 2),
                "p95": round(float(np.percentile(lat, 95)), 2),
                "mean": round(float(lat.mean()), 2),
            },
            "reviewed": {
                "images": self.reviewed,
                "recorded_agrees": self.recorded_agrees,
                "candidate_agrees": self.candidate_agrees,
            },
            "recorded_by": {
                m: {"images": n, "changed": k} for m, (n, k) in sorted(self.by_model.items())
            },
        }
        if self.error_examples:
            out["error_examples"] = list(self.error_examples)
        return out
