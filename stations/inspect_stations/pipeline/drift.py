"""Input drift (issue 25): the share of unfamiliar or poor-quality images over a station's last
N measured images.

:class:`DriftTracker` is pure: fed each inspection's health flag, it says when the share passes
``[drift] limit`` (once) and when it falls back below ``RECOVER`` x the limit (once): between the
two, the state holds, so a share that hovers around the limit is not said again and again.
:class:`DriftWatch` is the station's side: it logs ``input_drift`` (warning) and
``input_drift_recovered``, shows the drift as NEEDS ACTION in ``inspect station status`` while
it lasts, and publishes both on the ``[mqtt] event_topic``.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from inspect_core.types import HealthFlag, Inspection
from inspect_stations.config.drift import DriftOptions
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.status import StatusBoard

if TYPE_CHECKING:
    from inspect_stations.mqtt.link import MqttLink

RECOVER = 0.8  # recovered below this share of the limit (hysteresis)
DRIFT_KEY = "input_drift"  # the status board's key while the input drifts
DriftEvent = Literal["input_drift", "input_drift_recovered"]


@dataclass(frozen=True)
class DriftChange:
    """The drift state changed: ``event`` says which way, with the share over the ``images``
    of the window (``unfamiliar`` and ``quality`` of them flagged so)."""

    event: DriftEvent
    share: float
    images: int
    unfamiliar: int
    quality: int
    limit: float

    @property
    def message(self) -> str:
        """One line for the person at the line."""
        seen = f"{self.unfamiliar} unfamiliar, {self.quality} of poor quality"
        share = f"{self.share:.1%} of the last {self.images} measured images"
        if self.event == "input_drift":
            return (
                f"input drift: {share} are flagged ({seen}), above the limit of "
                f"{self.limit:.1%} ([drift] limit). The parts, camera or lighting may have "
                "changed: look at the latest images (inspect station status, the archive) "
                "and fix the setup, or retrain the model on the new parts"
            )
        return (
            f"input drift over: {share} are flagged ({seen}), below "
            f"{RECOVER * self.limit:.1%} ({RECOVER:g} x the limit)"
        )


class DriftTracker:
    """A ring buffer of the last ``window`` measured images: flagged (one of ``flags``) or not."""

    def __init__(self, options: DriftOptions):
        self.options = options
        self.counted = frozenset(options.flags)
        self.ring: collections.deque[HealthFlag] = collections.deque(maxlen=options.window)
        self.counts: collections.Counter[HealthFlag] = collections.Counter()
        self.drifting = False

    @property
    def flagged(self) -> int:
        return sum(n for f, n in self.counts.items() if f in self.counted)

    @property
    def share(self) -> float:
        return self.flagged / len(self.ring) if self.ring else 0.0

    def add(self, flag: HealthFlag | None) -> DriftChange | None:
        """One inspection's health flag (None: not measured, not counted); the change of
        state it makes, if any."""
        if flag is None:
            return None
        if len(self.ring) == self.ring.maxlen:
            self.counts[self.ring[0]] -= 1
        self.ring.append(flag)
        self.counts[flag] += 1
        if len(self.ring) < self.options.least:
            return None
        share, limit = self.share, self.options.limit
        if not self.drifting and share > limit:
            self.drifting = True
            return self._change("input_drift")
        if self.drifting and share < RECOVER * limit:
            self.drifting = False
            return self._change("input_drift_recovered")
        return None

    def _change(self, event: DriftEvent) -> DriftChange:
        c = self.counted
        return DriftChange(
            event,
            self.share,
            len(self.ring),
            self.counts["unfamiliar"] if "unfamiliar" in c else 0,
            self.counts["quality"] if "quality" in c else 0,
            self.options.limit,
        )


def event_message(station: str, change: DriftChange) -> dict[str, Any]:
    """The MQTT event of a drift change (on ``[mqtt] event_topic``)."""
    return {
        "event": change.event,
        "station": station,
        "at": time.time(),
        "share": round(change.share, 4),
        "limit": change.limit,
        "window": change.images,
        "unfamiliar": change.unfamiliar,
        "quality": change.quality,
        "message": change.message,
    }


class DriftWatch:
    """The station's drift alarm: fed each newly recorded inspection (by the recorder
    thread, one at a time)."""

    def __init__(self, station: str, options: DriftOptions, log: StationLog, status: StatusBoard):
        self.station, self.log, self.status = station, log, status
        self.tracker = DriftTracker(options)

    def seen(self, insp: Inspection | None, mqtt: MqttLink | None) -> None:
        """Count ``insp``'s health; say a change of the drift state."""
        if insp is None or insp.health is None:
            return
        change = self.tracker.add(insp.health.flag)
        if change is None:
            return
        fields = {
            "share": round(change.share, 4),
            "window": change.images,
            "limit": change.limit,
            "unfamiliar": change.unfamiliar,
            "quality": change.quality,
        }
        if change.event == "input_drift":
            self.log.warning(change.event, change.message, **fields)
            self.status.needs_action(DRIFT_KEY, change.message)
        else:
            self.log.info(change.event, change.message, **fields)
            self.status.resolved(DRIFT_KEY)
        if mqtt is not None:
            mqtt.publish_event(event_message(self.station, change))
