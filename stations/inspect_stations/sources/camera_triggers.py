"""A live camera's frame for each MQTT trigger: taken as the trigger arrives, never an older or a
later part's frame.

:class:`TriggerFrames` runs a thread that takes each trigger off the station's trigger queue as
soon as it arrives and pairs it with the first frame the camera captured after it (or one at
most ``source.frame_max_age_ms`` older). The pairs wait, holding their frames, while the station
inspects earlier parts (at most ``PAIRED_MAX``; then the triggers wait unpaired). A trigger gets
no frame, and its part is recorded as ERROR, when

* no frame comes within ``source.trigger_max_age_ms`` of its arrival (the camera is away: the
  grabber forgets the last frame when frames stop, so a frame from before an outage never
  serves a trigger during it), or
* it waited longer than that before it could be paired (a burst of triggers, or a station slower
  than the line): "trigger expired", as the frame at hand would be a later part's.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspect_stations.sources.camera import CameraSource, Frame

PAIRED_MAX = 16  # triggers holding their frame while the station inspects earlier ones
Pair = tuple[dict[str, Any], "Frame | None", "str | None"]  # (trigger, frame, why none)


def trigger_fields(trig: dict[str, Any]) -> dict[str, Any]:
    """The :class:`SourceItem` fields a trigger fills in."""
    return dict(request_id=trig.get("id"), part_id=trig.get("part_id"), lot=trig.get("lot"))


def arrival(trig: dict[str, Any]) -> float:
    """The wall-clock time a trigger arrived (its ``received`` is ``time.monotonic()``; a
    trigger without one arrives now)."""
    received: float = trig.get("received", time.monotonic())
    return time.time() - (time.monotonic() - received)


class TriggerFrames:
    """Pairs each trigger of ``triggers`` with its frame of ``camera`` (module docstring)."""

    def __init__(self, camera: CameraSource, triggers: queue.Queue[dict[str, Any]]):
        self.camera, self.triggers = camera, triggers
        self.pairs: queue.Queue[Pair] = queue.Queue(maxsize=PAIRED_MAX)
        self._thread = threading.Thread(target=self._loop, name="camera-triggers", daemon=True)

    def start(self) -> TriggerFrames:
        self._thread.start()
        return self

    def get(self, timeout: float) -> Pair | None:
        """The next (trigger, frame or None, why none), or None when none came in ``timeout``."""
        try:
            return self.pairs.get(timeout=timeout)
        except queue.Empty:
            return None

    def waiting(self) -> int:
        """Triggers not yet inspected (paired or not)."""
        return self.pairs.qsize() + self.triggers.qsize()

    def join(self, timeout: float) -> None:
        """Wait for the thread, which ends when the camera is stopping."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self.camera.stopping:
            try:
                trig = self.triggers.get(timeout=0.2)
            except queue.Empty:
                continue
            pair = self.pair(trig)
            while not self.camera.stopping:
                try:
                    self.pairs.put(pair, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def pair(self, trig: dict[str, Any]) -> Pair:
        """``trig`` with its frame, or with the reason it gets none."""
        cam = self.camera
        o = cam.opt
        arrived = trig.get("received", time.monotonic())
        max_age = o.trigger_max_age_ms / 1000.0
        waited = time.monotonic() - arrived
        if waited > max_age:
            return (
                trig,
                None,
                f"trigger expired: it waited {waited:.1f} s for the station, busy with earlier "
                f"triggers (source.trigger_max_age_ms = {o.trigger_max_age_ms}); its part has "
                "moved on, so no frame is taken for it",
            )
        got = cam.frame_since(arrived - o.frame_max_age_ms / 1000.0, arrived + max_age)
        if got is not None:
            return trig, got, None
        since = cam.down_since
        away = (
            f"it has delivered none since {time.strftime('%H:%M:%S', time.localtime(since))}; "
            if since is not None
            else ""
        )
        return (
            trig,
            None,
            f"no frame from the camera {cam.name} within {o.trigger_max_age_ms} ms of the "
            f"trigger (source.trigger_max_age_ms): {away}is it disconnected, or the stream "
            "stopped?",
        )
