"""The station's pipeline threads: reader -> model -> recorder, joined by small bounded queues.

``reader``   takes items from the source, reads, hashes, checks and decodes them
             (:func:`~inspect_stations.work.read_file`, :func:`~inspect_stations.work.read_frame`);
``model``    runs the inspector's ``forward`` on up to ``batch`` images at once;
``recorder`` applies the rules, commits the results to the journal (one fsync'd transaction per
             group), publishes them on MQTT, then lets the source file the images
             (:func:`~inspect_stations.deliver.settle`).

:class:`inspect_stations.daemon.Station` builds one :class:`Pipeline`, runs its three thread
bodies and the writer thread, and stops them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspect_core.errors import InspectError
from inspect_core.plugin_api.interfaces import Source, SourceItem
from inspect_core.runtime.inspector import InspectorBase
from inspect_core.types import Inspection
from inspect_stations.archive import Archive, day
from inspect_stations.config import StationConfig
from inspect_stations.deliver import settle
from inspect_stations.journal import Journal, JournalEntry, SeenFile
from inspect_stations.logs import StationLog
from inspect_stations.status import StatusBoard
from inspect_stations.work import (
    NotReady,
    Work,
    archive_overlay,
    build_inspection,
    frame_name,
    read_file,
    read_frame,
    run_model,
    work_shape,
)
from inspect_stations.writer import Writer

END = object()  # the end of the stream, passed down the queues
GROUP_MAX = 64  # results committed to the journal in one transaction, at most


class Pipeline:
    """The three pipeline threads of one station and the queues between them. ``abort`` set
    (by the station, when one of them crashed) makes the others give up too."""

    def __init__(
        self,
        cfg: StationConfig,
        inspector: InspectorBase,
        source: Source,
        journal: Journal,
        archive: Archive,
        writer: Writer,
        log: StationLog,
        status: StatusBoard,
        after_group: Callable[[], None],
    ):
        self.cfg, self.inspector, self.source = cfg, inspector, source
        self.journal, self.archive, self.writer = journal, archive, writer
        self.log, self.status, self.after_group = log, status, after_group
        self.mqtt: Any = None  # the MqttLink, once the station has started it
        self.abort = threading.Event()
        # small queues: enough to overlap the stages, and a bound on the images (and model
        # outputs, which are large) held in memory
        self.q_model: queue.Queue = queue.Queue(maxsize=max(2, cfg.batch))
        self.q_record: queue.Queue = queue.Queue(maxsize=max(2, cfg.batch))
        self._next: InspectorBase | None = None  # a model to switch to before the next batch
        self._swap_lock = threading.Lock()

    def swap(self, inspector: InspectorBase) -> None:
        """Switch to ``inspector`` between two batches (thread-safe: the model thread takes
        it before its next batch; images already run are judged by the model that ran)."""
        with self._swap_lock:
            self._next = inspector

    def _current(self) -> InspectorBase:
        with self._swap_lock:
            nxt, self._next = self._next, None
        if nxt is not None:
            self.inspector = nxt
        return self.inspector

    @property
    def in_flight(self) -> int:
        return self.q_model.qsize() + self.q_record.qsize()

    def _put(self, q: queue.Queue, item) -> bool:
        while not self.abort.is_set():
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                pass
        return False

    # -- the thread bodies -----------------------------------------------------------------
    def reader(self) -> None:
        pre = self.inspector.preprocess
        journal = self.journal if self.cfg.source_type == "folder" else None
        shape = work_shape(self.inspector, self.cfg.limits)  # the model's work per image
        try:
            for item in self.source.items():
                try:
                    if item.path is not None:
                        w = read_file(item, self.cfg.limits, pre, journal, shape=shape)
                    else:
                        w = read_frame(item, pre, shape=shape)
                except NotReady as e:
                    self.log.debug("not_ready", str(e))
                    self.source.release(item)
                    continue
                if not self._put(self.q_model if w.needs_model else self.q_record, w):
                    break
        finally:
            self._put(self.q_model, END)

    def model(self) -> None:
        while not self.abort.is_set():
            try:
                first = self.q_model.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first] if first is not END else []
            ended = first is END
            while not ended and len(batch) < self.cfg.batch:
                try:
                    w = self.q_model.get_nowait()
                except queue.Empty:
                    break
                if w is END:
                    ended = True
                else:
                    batch.append(w)
            if batch:
                inspector = self._current()
                run_model(inspector, batch)
                for w in batch:
                    w.inspector = inspector
                    self._put(self.q_record, w)
            if ended:
                self._put(self.q_record, END)
                return

    def recorder(self) -> None:
        ended = False
        while not ended and not self.abort.is_set():
            group: list[Work] = []
            try:
                w = self.q_record.get(timeout=0.5)
                while True:
                    if w is END:
                        ended = True
                        break
                    group.append(w)
                    if len(group) >= GROUP_MAX:
                        break
                    w = self.q_record.get_nowait()
            except queue.Empty:
                pass
            if group:
                self.record(group)
            self.after_group()

    # -- recording -------------------------------------------------------------------------
    def record(self, group: list[Work]) -> None:
        """Judge, journal (one transaction), then answer and file every image of ``group``."""
        c = self.cfg
        entries: list[JournalEntry] = []
        filed: list[Work] = []
        missed: list[Work] = []  # triggers that got no frame: recorded as ERROR, answered
        shas: set[str] = set()  # recorded by this group
        for w in group:
            insp = build_inspection(w.inspector or self.inspector, w, c.name, c.plugin)
            if w.item.path is None and w.data is None:  # a trigger that got no frame
                if insp.capture_id is not None:  # its part is in the records, as ERROR
                    entries.append(JournalEntry(insp, [s.name for s in self.writer.slots]))
                missed.append(w)
                continue
            self._place(w, insp)
            entry = self._entry(w, insp, shas)
            if entry is not None:
                shas.add(w.sha256)
                entries.append(entry)
            filed.append(w)
        if entries:
            try:  # durable from here on: the inbox may be emptied
                self.journal.commit(entries)
            except Exception as e:
                raise InspectError(
                    f"cannot write the local journal {self.journal.path} ({e}); "
                    "check free disk space and that station.state_dir is "
                    "writable. Images not recorded stay in the inbox"
                ) from e
            self.writer.wake.set()
        for w in missed:
            self._no_frame(w.item, w.inspection)
        for w in filed:
            settle(w, source=self.source, mqtt=self.mqtt, log=self.log, status=self.status)

    def _no_frame(self, item: SourceItem, insp: Inspection) -> None:
        reason = insp.error or "no frame"
        self.log.error("no_frame", reason, request_id=item.request_id, part_id=item.part_id)
        if self.mqtt:
            self.mqtt.publish_result(insp, item.request_id)
        self.status.error(item.source, reason)

    def _place(self, w: Work, insp: Inspection) -> None:
        """Where the image goes, set as the record's source: a camera frame saved into the
        archive, a file where its source will file it; and the overlay, if asked for."""
        c, item = self.cfg, w.item
        if item.path is None:  # a camera frame: keep it in the archive, record that path
            try:
                saved = self.archive.save(
                    w.data,
                    frame_name(c.name, item),
                    insp.verdict.decision.value,
                    w.sha256,
                    insp.inspected_at,
                )
                insp.source = str(saved)
            except OSError as e:
                self.log.error(
                    "archive_failed",
                    f"cannot save frame {item.source} into {c.archive}: {e}; recording it anyway",
                )
        if c.overlays and w.result is not None:
            try:
                folder = Path(c.archive) / "overlays" / day(insp.inspected_at)
                insp.overlay_path = archive_overlay(w.inspector or self.inspector, w, folder)
            except OSError as e:
                self.log.warning("overlay_failed", f"overlay for {insp.source}: {e}")
        if item.path is not None:
            try:
                insp.source = self.source.destination(item, insp) or insp.source
            except OSError as e:
                self.log.warning("plan_failed", f"{insp.source}: {e}")

    def _entry(self, w: Work, insp: Inspection, shas: set[str]) -> JournalEntry | None:
        """The journal entry of a new result; None for an image recorded before (by this group,
        a moment ago, or before a crash), which is only filed."""
        item = w.item
        if (
            w.known_verdict is None
            and w.sha256
            and (w.sha256 in shas or self.journal.verdict_of(w.sha256) is not None)
        ):
            if insp.capture_id is not None:  # a new trigger: a part, recorded; but say it
                self._frame_repeated(item, insp)
            else:
                # the same image twice in flight (two names, one content; or two identical
                # frames untriggered), recorded by this group or a moment ago: one record;
                # the second file is filed beside the first like any later copy
                w.known_verdict = insp.verdict.decision.value
        if w.known_verdict is not None:
            return None
        seen = None
        folder = self.cfg.folder
        if folder is not None and folder.after == "leave" and item.path:
            f = item.file
            seen = SeenFile(item.path, f.size if f else -1, f.mtime_ns if f else -1)
            if f is not None:
                f.seen_recorded = True
        return JournalEntry(insp, [s.name for s in self.writer.slots], seen, item.path)

    def _frame_repeated(self, item: SourceItem, insp: Inspection) -> None:
        self.log.warning(
            "frame_repeated",
            f"{item.source}: the frame of trigger {item.request_id} is identical, "
            f"pixel for pixel, to one already recorded (sha256 "
            f"{insp.image_sha256[:12]}); is the camera image frozen? Recorded as "
            "this trigger's own result" + (f" (part {item.part_id})" if item.part_id else ""),
            sha256=insp.image_sha256,
            request_id=item.request_id,
            part_id=item.part_id,
            capture_id=insp.capture_id,
        )
