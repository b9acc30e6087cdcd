"""The tally of a backtest: recorded verdict against the candidate's, image by image, kept in
bounded memory whatever the number of images (counts, latencies as float32, and only the first
``max_examples`` changed images and operator disagreements, for the JSON and the page)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from inspect_batch.items import BacktestItem, ItemResult
from inspect_batch.result import (
    BacktestResult,
    Changed,
    Disagreement,
    Latency,
    Operators,
    Spread,
)
from inspect_batch.why import RecordedSide, explain

VERDICTS = ("PASS", "REVIEW", "FAIL")

__all__ = ["VERDICTS", "Changed", "Tally"]


def _floats() -> array[float]:
    return array("f")


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
    latencies: array[float] = field(default_factory=_floats)  # the candidate's model step
    recorded_latencies: array[float] = field(default_factory=_floats)  # the records' latency_ms
    recorded_inspect: array[float] = field(default_factory=_floats)  # the records' inspect_ms
    examples: list[Changed] = field(default_factory=list)
    # reviewed images: how often the recorded and the candidate verdict match the operator's
    reviewed: int = 0
    recorded_agrees: int = 0
    candidate_agrees: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    # per model that judged the records (a window across a promotion holds two): images, changed
    by_model: dict[str, list[int]] = field(default_factory=dict)

    def wants_example(self) -> bool:
        """Whether the next changed image is kept (with its overlay and why) for the page."""
        return len(self.examples) < self.max_examples

    def add(
        self,
        item: BacktestItem,
        result: ItemResult,
        human: str | None = None,
        recorded: RecordedSide | None = None,
    ) -> None:
        """Count one image; ``human`` is the operator's verdict in force, ``recorded`` the
        record's regions and rules fired (for a changed image kept as an example)."""
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
        self._times(item, result)
        if human is not None:
            self._operator(item, result, human)
        if result.verdict != item.recorded:
            self.changed += 1
            if self.wants_example():
                why = None if recorded is None else explain(recorded, result)
                self.examples.append(Changed(item, result, human, why))

    def _times(self, item: BacktestItem, result: ItemResult) -> None:
        self.latencies.append(result.latency_ms)
        if item.latency_ms is not None:
            self.recorded_latencies.append(item.latency_ms)
        if item.inspect_ms is not None:
            self.recorded_inspect.append(item.inspect_ms)

    def _operator(self, item: BacktestItem, result: ItemResult, human: str) -> None:
        self.reviewed += 1
        self.recorded_agrees += item.recorded == human
        self.candidate_agrees += result.verdict == human
        if result.verdict != human and len(self.disagreements) < self.max_examples:
            self.disagreements.append(
                Disagreement(
                    item.inspection_id,
                    item.station,
                    item.url,
                    item.recorded,
                    str(result.verdict),
                    human,
                )
            )

    def result(self) -> BacktestResult:
        """What the tally found, as the typed result."""
        return BacktestResult(
            images=self.images,
            changed=self.changed,
            confusion={a: dict(row) for a, row in self.confusion.items()},
            errors=self.errors,
            error_examples=tuple(self.error_examples),
            latency=Latency(
                Spread.of(self.latencies),
                Spread.of(self.recorded_latencies),
                Spread.of(self.recorded_inspect),
            ),
            operators=Operators(
                self.reviewed,
                self.recorded_agrees,
                self.candidate_agrees,
                tuple(self.disagreements),
            ),
            recorded_by={m: (n, k) for m, (n, k) in self.by_model.items()},
            changed_images=tuple(self.examples),
        )

    def summary(self) -> dict[str, Any]:
        """The JSON ``inspect backtest --json`` prints (:meth:`BacktestResult.to_dict`)."""
        return self.result().to_dict()
