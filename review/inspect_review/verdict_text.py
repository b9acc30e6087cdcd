"""Why the model gave its verdict, in words for the item page's banner and its list of rules.

A rule that fired is recorded as :class:`inspect_core.types.RuleHit` (``inspection.fired``):
its name, the decision it asks for, its message, its regions. The review band
(``review_band``, :class:`inspect_core.rules.builtin.ReviewBand`) runs last and lowers a FAIL
that rests only on regions of middling confidence to REVIEW: the hit keeps the rule's name, its
decision becomes REVIEW and its message gains ``" (confidence in [LOW, HIGH): review)"``. So a
hit with that ending asked for FAIL and was lowered; the page says both, with the confidence of
its regions (on the band's ``on``: ``mean_prob`` unless the recorded rules say otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from inspect_review.storage.types import ItemView, RegionView, RuleView

#: the note the review band appends to a FAIL hit it lowers to REVIEW
BAND_NOTE = re.compile(r" \(confidence in \[([^,\]]+), ([^)\]]+)\): review\)$")
CONFIDENCE = {"mean_prob": "mean confidence", "max_prob": "max confidence"}


@dataclass(frozen=True)
class RuleLine:
    """A rule that fired, as the page tells it: what it ``asked`` for, what was recorded
    (``decision``), and, for one the review band lowered, why (``lowered``)."""

    rule: str
    asked: str
    decision: str
    message: str  # the rule's own message (without the band's note)
    regions: tuple[int, ...]
    lowered: str = ""  # "lowered to REVIEW by the review band (mean confidence 0.62 < 0.8)"

    @property
    def summary(self) -> str:
        said = f"{self.rule} asked for {self.asked}"
        return f"{said}, {self.lowered}" if self.lowered else said


@dataclass(frozen=True)
class VerdictText:
    """The banner: the model's verdict and why (each rule's summary)."""

    verdict: str
    rules: list[RuleLine]

    @property
    def why(self) -> str:
        if not self.rules:
            return "no rule fired" if self.verdict != "ERROR" else "the image could not be judged"
        return "; ".join(r.summary for r in self.rules)


def verdict_text(item: ItemView) -> VerdictText:
    """What the page says of ``item``'s verdict."""
    on = band_on(item.thresholds)
    return VerdictText(item.verdict, [rule_line(h, item.regions, on) for h in item.rules])


def rule_line(hit: RuleView, regions: list[RegionView], on: str) -> RuleLine:
    """``hit`` in words; a hit the review band lowered says so, with its regions' confidence."""
    m = BAND_NOTE.search(hit.message)
    if hit.decision != "REVIEW" or m is None:
        return RuleLine(hit.rule, hit.decision, hit.decision, hit.message, hit.regions)
    high = m.group(2).strip()
    return RuleLine(
        hit.rule,
        "FAIL",
        hit.decision,
        hit.message[: m.start()],
        hit.regions,
        f"lowered to REVIEW by the review band ({_confidence(hit, regions, on)} < {high})",
    )


def _confidence(hit: RuleView, regions: list[RegionView], on: str) -> str:
    """The highest confidence among the hit's regions, as the band read it."""
    by_number = {r.number: r for r in regions}
    values = [getattr(by_number[n], on) for n in hit.regions if n in by_number]
    what = CONFIDENCE[on]
    if not values:
        return what
    top = max(values)
    return f"{'highest ' if len(values) > 1 else ''}{what} {top:.2f}"


def band_on(thresholds: dict[str, Any]) -> str:
    """Which confidence the recorded review band judges (``mean_prob``, its default, when the
    record does not say)."""
    rules = thresholds.get("rules") if isinstance(thresholds, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict) and rule.get("type") == "review_band":
            on = rule.get("on")
            return on if on in CONFIDENCE else "mean_prob"
    return "mean_prob"
