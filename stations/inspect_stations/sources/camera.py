"""Camera source: OpenCV ``VideoCapture`` on a device index, a video file or a stream URL.

Trigger modes (``source.trigger``):

``interval``
    one frame every ``interval_ms``: wall-clock time for a live camera or stream, video time for
    a file (so a recorded clip replays the same captures, as fast as the station can go).
``mqtt``
    one frame per message on the MQTT trigger topic (``{"id": ..., "part_id": ..., "lot": ...}``);
    the result is published on the result topic with the same id. A live camera's frame is the
    first one captured after the trigger arrived (or one at most ``frame_max_age_ms`` older),
    taken as the trigger arrives, and it must come within ``trigger_max_age_ms``: a camera that
    is away, or a station so busy that the trigger waited longer, records the part as ERROR
    (``no frame from the camera ...``, ``trigger expired ...``) instead of filing an older or a
    later part's frame under its id (:mod:`inspect_stations.sources.camera_triggers`). A video file
    gives each trigger its next frame.
``motion``
    a frame when at least ``motion_threshold`` of the pixels changed by more than
    ``motion_delta`` grey levels since the previous frame, then no capture for
    ``motion_cooldown_ms``.

Live cameras are read continuously by a grabber thread (so a capture is the newest frame, not
one stale in the driver's buffer) that reconnects every ``reconnect_s`` when frames stop, and
forgets the last frame when they do (a capture is never a frame from before the outage).
A video file ends the source when it ends, unless ``loop = true``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from inspect_core.plugin_api.interfaces import BaseSource, SourceItem
from inspect_stations.config.station import CameraOptions
from inspect_stations.sources.camera_triggers import TriggerFrames, arrival, trigger_fields
from inspect_stations.urls import mask_url

if TYPE_CHECKING:
    from inspect_stations.builders import SourceContext as StationContext

REPORT_S = 60.0  # a camera that stays away is reported again this often


class CameraError(Exception):
    pass


@dataclass
class Frame:
    """A frame of a live camera, with when the grabber got it."""

    image: np.ndarray
    at: float  # time.time()
    mono: float  # time.monotonic()
    number: int


def motion_fraction(prev: np.ndarray | None, cur: np.ndarray, delta: int) -> float:
    """Share of pixels whose (blurred, downscaled) grey level changed by more than ``delta``."""
    if prev is None or prev.shape != cur.shape:
        return 0.0
    return float((cv2.absdiff(prev, cur) > delta).mean())


def small_gray(frame: np.ndarray) -> np.ndarray:
    g = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = g.shape
    if w > 160:
        g = cv2.resize(g, (160, max(1, round(h * 160 / w))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (5, 5), 0)


def to_rgb(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class CameraSource(BaseSource):
    """Frames of one camera, video file or stream, captured as ``source.trigger`` says (see the
    module docstring). The station saves each frame into the archive itself, so ``done`` and
    ``destination`` keep the defaults."""

    def __init__(self, options: CameraOptions, context: StationContext):
        self.opt = options
        self.ctx = context
        self.stop: threading.Event = context.stop
        self.is_file = options.url is not None and "://" not in options.url
        # what logs, status and records show: the URL without its password
        self.name = mask_url(options.url) if options.url is not None else f"camera:{options.device}"
        self.cap: cv2.VideoCapture | None = None
        self.captured = 0
        self.frame_no = 0
        self._latest: Frame | None = None
        self._latest_lock = threading.Condition()
        self._grabber: threading.Thread | None = None
        self._pairer: TriggerFrames | None = None  # trigger = "mqtt" on a live camera
        self._halt = threading.Event()  # close() stops the grabber, not the station
        self.queue_depth = 0
        self._down_since: float | None = None  # wall time the camera stopped delivering
        self._failures = 0
        self._reported = -1e9

    @property
    def down_since(self) -> float | None:
        """The wall-clock time the camera stopped delivering frames, None while it delivers."""
        return self._down_since

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() or self._halt.is_set()

    # -- opening -----------------------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture:
        if self.is_file and self.opt.url is not None and not os.path.isfile(self.opt.url):
            raise CameraError(f"video file {self.opt.url} not found (source.url)")
        # camera_options: exactly one of source.url and source.device
        cap = cv2.VideoCapture(
            self.opt.url if self.opt.url is not None else cast(int, self.opt.device)
        )
        if not cap.isOpened():
            what = (
                f"video file {self.opt.url}"
                if self.is_file
                else f"stream {self.name}"
                if self.opt.url
                else f"camera device {self.opt.device}"
            )
            raise CameraError(
                f"cannot open {what}: check that it exists, is connected and is "
                "not used by another program"
            )
        if self.opt.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.opt.width)
        if self.opt.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.opt.height)
        return cap

    def _file_frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """(frame, video time in ms) for every frame of the file; loops when asked."""
        while not self.stop.is_set():
            cap = self.cap = self._open()
            fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            idx = 0
            while not self.stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                self.frame_no += 1
                yield frame, idx * 1000.0 / fps
                idx += 1
            cap.release()
            self.cap = None
            if not self.opt.loop:
                return

    def _trouble(self, event: str, msg: str) -> None:
        """Report a camera problem at once, then at most every REPORT_S while it lasts (a
        camera unplugged for the night must not write a line every ``reconnect_s``)."""
        now = time.monotonic()
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.time()
        if now - self._reported >= REPORT_S:
            self._reported = now
            since = time.strftime("%H:%M:%S", time.localtime(self._down_since))
            again = (
                "" if self._failures == 1 else f" (still, {self._failures} attempts since {since})"
            )
            self.ctx.log.error(
                event,
                msg + again + f"; retrying every {self.opt.reconnect_s:g} s",
                camera=self.name,
                attempts=self._failures,
            )

    def _back(self) -> None:
        if self._down_since is not None:
            self.ctx.log.info(
                "camera_back",
                f"{self.name} delivers frames again after {time.time() - self._down_since:.0f} s",
                camera=self.name,
            )
        self._down_since, self._failures, self._reported = None, 0, -1e9

    def _grab_loop(self) -> None:
        """Live camera / stream: keep the newest frame; reconnect when frames stop."""
        while not self.stopping:
            try:
                cap = self.cap = self._open()
            except CameraError as e:
                self._forget()
                self._trouble("camera_unavailable", str(e))
                self._halt.wait(self.opt.reconnect_s)
                continue
            while not self.stopping:
                ok, frame = cap.read()
                if not ok:
                    self._forget()
                    self._trouble(
                        "camera_lost",
                        f"{self.name}: no frame (disconnected, or the "
                        "stream stopped); reconnecting",
                    )
                    break
                if self._down_since is not None:
                    self._back()
                with self._latest_lock:
                    self.frame_no += 1
                    self._latest = Frame(frame, time.time(), time.monotonic(), self.frame_no)
                    self._latest_lock.notify_all()
            cap.release()
            self.cap = None
            if not self.stopping:
                self._halt.wait(self.opt.reconnect_s)

    def _forget(self) -> None:
        """The camera stopped delivering: its last frame is no capture of anything after now."""
        with self._latest_lock:
            self._latest = None

    def _start_grabber(self) -> None:
        if self._grabber is None:
            self._grabber = threading.Thread(
                target=self._grab_loop, name="camera-grabber", daemon=True
            )
            self._grabber.start()

    def _live_frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """Each new frame of a live source, (frame, wall-clock ms)."""
        self._start_grabber()
        last = 0
        while not self.stop.is_set():
            with self._latest_lock:
                if self._latest is None or self._latest.number == last:
                    self._latest_lock.wait(0.2)
                    continue
                f = self._latest
            last = f.number
            yield f.image, f.at * 1000.0

    def frame_since(self, earliest: float, deadline: float) -> Frame | None:
        """The newest frame captured at or after ``earliest`` (``time.monotonic()``), waiting
        for one until ``deadline``; None when none came (the camera is away)."""
        self._start_grabber()
        with self._latest_lock:
            while not self.stopping:
                f = self._latest
                if f is not None and f.mono >= earliest:
                    return f
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._latest_lock.wait(min(left, 0.1))
        return None

    # -- the source protocol -------------------------------------------------------------------
    def _item(
        self, frame: np.ndarray, frame_no: int, at: float | None = None, **kw: Any
    ) -> SourceItem:
        self.captured += 1
        return SourceItem(
            source=f"{self.name}#frame={frame_no}",
            frame=to_rgb(frame),
            captured_at=at if at is not None else time.time(),
            frame_no=frame_no,
            **kw,
        )

    def _limit_reached(self) -> bool:
        return bool(self.opt.max_frames) and self.captured >= self.opt.max_frames

    def items(self) -> Iterator[SourceItem]:
        mode = self.opt.trigger
        if mode == "mqtt":
            yield from self._on_trigger()
            return
        frames = self._file_frames() if self.is_file else self._live_frames()
        next_t, prev, cooldown_until = 0.0, None, -1.0
        for frame, t_ms in frames:
            if self._limit_reached():
                return
            if mode == "interval":
                if t_ms + 1e-6 >= next_t:
                    next_t = (next_t if self.is_file else t_ms) + self.opt.interval_ms
                    if next_t <= t_ms:  # a file at low fps: no catching up in bursts
                        next_t = t_ms + self.opt.interval_ms
                    yield self._item(frame, self.frame_no)
            else:  # motion
                cur = small_gray(frame)
                moved = motion_fraction(prev, cur, self.opt.motion_delta)
                prev = cur
                if moved >= self.opt.motion_threshold and t_ms >= cooldown_until:
                    cooldown_until = t_ms + self.opt.motion_cooldown_ms
                    yield self._item(frame, self.frame_no)

    def _on_trigger(self) -> Iterator[SourceItem]:
        """One item per trigger: its frame, or no frame and the reason (recorded as ERROR)."""
        if self.is_file:
            yield from self._file_triggers()
            return
        self._start_grabber()
        if self._pairer is None:
            self._pairer = TriggerFrames(self, self.ctx.triggers).start()
        while not self.stop.is_set() and not self._limit_reached():
            self.queue_depth = self._pairer.waiting()
            pair = self._pairer.get(timeout=0.2)
            if pair is None:
                continue
            trig, got, reason = pair
            kw = trigger_fields(trig)
            if got is None:
                yield SourceItem(source=self.name, refuse=reason, captured_at=arrival(trig), **kw)
            else:
                yield self._item(got.image, got.number, got.at, **kw)

    def _file_triggers(self) -> Iterator[SourceItem]:
        """A video file (tests, replays): each trigger takes the file's next frame."""
        triggers: queue.Queue[dict[str, Any]] = self.ctx.triggers
        file_frames: Iterator[tuple[np.ndarray, float]] | None = self._file_frames()
        while not self.stop.is_set() and not self._limit_reached():
            try:
                trig = triggers.get(timeout=0.2)
            except queue.Empty:
                if self.ctx.until_empty and self.frame_no and file_frames is None:
                    return
                continue
            kw = trigger_fields(trig)
            frame = next(file_frames, None) if file_frames is not None else None
            if frame is None:
                file_frames = None
                reason = f"no frame from {self.name}: the video file has ended"
                yield SourceItem(source=self.name, refuse=reason, captured_at=arrival(trig), **kw)
                continue
            yield self._item(frame[0], self.frame_no, **kw)

    def close(self) -> None:
        self._halt.set()
        if self._pairer is not None:
            self._pairer.join(timeout=5)
        if self._grabber is not None:
            self._grabber.join(timeout=5)
        if self.cap is not None:
            self.cap.release()
