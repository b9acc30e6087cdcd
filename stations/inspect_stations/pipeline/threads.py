"""The station's pipeline threads: reader -> model workers -> recorder, joined by small bounded
queues.

``reader``   takes items from the source, reads, hashes, checks and decodes them
             (:func:`~inspect_stations.pipeline.work.read_file`,
             :func:`~inspect_stations.pipeline.work.read_frame`)
             and numbers them in the order the source gave them;
``model``    ``workers`` threads (``station.workers``), each running the inspector's
             ``forward`` on up to ``batch`` images at once, side by side: with ONNX Runtime on
             one thread per call, two workers keep two cores busy while the reader decodes and
             the recorder records;
``recorder`` takes the results back in the reader's order (a worker may finish a later image
             first), applies the rules, commits the results to the journal (one fsync'd
             transaction per group), publishes them on MQTT, then lets the source file the
             images (:func:`~inspect_stations.pipeline.deliver.settle`).

At most ``limit`` images are between the reader and the recorder at any time (read, queued,
in a worker, or held back for order): memory stays bounded however slow one image is.
Every image's time waiting in a queue or held back is added up (``Work.waited``) so the
record can tell it from the time spent on the image itself.

:class:`inspect_stations.pipeline.daemon.Station` builds one :class:`Pipeline`, runs its
thread bodies (:meth:`Pipeline.bodies`) and the writer thread, and stops them.
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
from inspect_stations.config.station import StationConfig
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.archive import Archive, day, fs_hint
from inspect_stations.pipeline.deliver import settle
from inspect_stations.pipeline.drift import DriftWatch
from inspect_stations.pipeline.journal import Journal, JournalEntry, SeenFile
from inspect_stations.pipeline.status import StatusBoard
from inspect_stations.pipeline.work import (
    NotReady,
    Work,
    archive_overlay,
    build_inspection,
    frame_name,
    read_file,
    read_frame,
    repeated_error,
    run_model,
    work_shape,
)
from inspect_stations.pipeline.writer import Writer

END = object()  # the end of the stream, passed down the queues
GROUP_MAX = 64  # results committed to the journal in one transaction, at most
SAVING = "archive"  # the status board's key while camera frames cannot be saved


class Pipeline:
    """The pipeline threads of one station and the queues between them. ``abort`` set (by the
    station, when one of them crashed) makes the others give up too."""

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
        workers: int = 1,
    ):
        self.cfg, self.inspector, self.source = cfg, inspector, source
        self.journal, self.archive, self.writer = journal, archive, writer
        self.log, self.status, self.after_group = log, status, after_group
        self.mqtt: Any = None  # the MqttLink, once the station has started it
        self.drift = DriftWatch(cfg.name, cfg.drift, log, status)
        self.abort = threading.Event()
        self.workers = max(1, workers)
        # small queues: enough to keep every worker fed, and a bound on the images (and model
        # outputs, which are large) held in memory
        depth = max(2, cfg.batch)
        self.limit = self.workers * cfg.batch + 2 * depth  # images in flight, at most
        self._slots = threading.Semaphore(self.limit)
        # Work items, then END
        self.q_model: queue.Queue[Any] = queue.Queue(maxsize=depth * self.workers)
        self.q_record: queue.Queue[Any] = queue.Queue()  # bounded by the slots
        self._held: dict[int, Work] = {}  # done out of order: waits for the images before it
        self._next_seq = 0  # the next image to record
        self._running = self.workers  # model workers not yet at the end of the stream
        self._next: InspectorBase | None = None  # a model to switch to before the next batch
        self._swap_lock = threading.Lock()

    def bodies(self) -> list[tuple[str, Callable[[], None]]]:
        """The thread bodies to run, by name: the reader, the model workers, the recorder
        (last: the station waits for it)."""
        names = ["model"] if self.workers == 1 else [f"model-{i}" for i in range(self.workers)]
        return [
            ("reader", self.reader),
            *((n, self.model) for n in names),
            ("recorder", self.recorder),
        ]

    def swap(self, inspector: InspectorBase) -> None:
        """Switch to ``inspector`` between two batches (thread-safe: each model worker takes
        it before its next batch; images already run are judged by the model that ran)."""
        with self._swap_lock:
            self._next = inspector

    def _current(self) -> InspectorBase:
        with self._swap_lock:
            if self._next is not None:
                self.inspector, self._next = self._next, None
            return self.inspector

    @property
    def in_flight(self) -> int:
        return self.q_model.qsize() + self.q_record.qsize() + len(self._held)

    def _put(self, q: queue.Queue[Any], item: object) -> bool:
        if isinstance(item, Work):
            item.queued()
        while not self.abort.is_set():
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                pass
        return False

    def _slot(self) -> bool:
        """Wait for room for one more image in flight; False when the station aborts."""
        while not self._slots.acquire(timeout=0.5):
            if self.abort.is_set():
                return False
        return True

    # -- the thread bodies -----------------------------------------------------------------
    def _latest(self) -> InspectorBase:
        """The model the next images will meet (a swapped-in one not yet taken up included)."""
        with self._swap_lock:
            return self._next or self.inspector

    def reader(self) -> None:
        journal = self.journal if self.cfg.source_type == "folder" else None
        sized_for: InspectorBase | None = None
        seq = 0
        try:
            for item in self.source.items():
                if not self._slot():
                    break
                if (latest := self._latest()) is not sized_for:  # a new model: its copies, tile
                    sized_for, pre = latest, latest.preprocess
                    shape = work_shape(latest, self.cfg.limits)  # the model's work per image
                try:
                    if item.path is not None:
                        w = read_file(item, self.cfg.limits, pre, journal, shape=shape)
                    else:
                        w = read_frame(item, pre, shape=shape)
                except NotReady as e:
                    self._slots.release()
                    self.log.debug("not_ready", str(e))
                    self.source.release(item)
                    continue
                w.seq, seq = seq, seq + 1
                if not self._put(self.q_model, w):  # in order, model or not
                    break
        finally:
            for _ in range(self.workers):
                self._put(self.q_model, END)

    def model(self) -> None:
        """One model worker: batches from ``q_model`` through the current inspector; the
        images that need no model pass through, so that every image keeps its place."""
        try:
            while not self.abort.is_set():
                batch, ended = self._take_batch()
                if batch:
                    inspector = self._current()
                    run_model(inspector, batch)
                    for w in batch:
                        w.inspector = inspector
                        self._put(self.q_record, w)
                if ended:
                    return
        finally:
            with self._swap_lock:
                self._running -= 1
                last = self._running == 0
            if last:  # every image is in q_record before it
                self._put(self.q_record, END)

    def _take_batch(self) -> tuple[list[Work], bool]:
        """Up to ``batch`` images waiting for the model (fewer if no more wait), and whether
        the end of the stream came."""
        try:
            first = self.q_model.get(timeout=0.5)
        except queue.Empty:
            return [], False
        if first is END:
            return [], True
        batch = [first]
        while len(batch) < self.cfg.batch:
            try:
                w = self.q_model.get_nowait()
            except queue.Empty:
                break
            if w is END:
                return self._taken(batch), True
            batch.append(w)
        return self._taken(batch), False

    @staticmethod
    def _taken(batch: list[Work]) -> list[Work]:
        for w in batch:
            w.taken()
        return batch

    def recorder(self) -> None:
        ended = False
        while not self.abort.is_set():
            if not ended:  # wait for more only when the next image is not here yet
                ended = self._gather(block=self._next_seq not in self._held)
            group = self._in_order()
            if group:
                self.record(group)
                for _ in group:
                    self._slots.release()
            self.after_group()
            if ended and self._next_seq not in self._held:
                break
        if ended and self._held and not self.abort.is_set():
            raise InspectError(
                f"station {self.cfg.name}: {len(self._held)} image(s) reached the recorder but "
                f"image {self._next_seq} before them never did; they stay in the inbox and are "
                "read again at the next start. Please report this"
            )

    def _gather(self, block: bool) -> bool:
        """Take the results waiting in ``q_record`` (waiting up to 0.5 s for one with
        ``block``) into the held ones; True when the end of the stream came."""
        try:
            w = self.q_record.get(timeout=0.5) if block else self.q_record.get_nowait()
            while w is not END:
                self._held[w.seq] = w
                w = self.q_record.get_nowait()
            return True
        except queue.Empty:
            return False

    def _in_order(self) -> list[Work]:
        """The images that are next in order, up to ``GROUP_MAX``, taken from the held ones."""
        group: list[Work] = []
        while len(group) < GROUP_MAX and self._next_seq in self._held:
            group.append(self._held.pop(self._next_seq))
            self._next_seq += 1
        return group

    # -- recording -------------------------------------------------------------------------
    def record(self, group: list[Work]) -> None:
        """Judge, journal (one transaction), then answer and file every image of ``group``."""
        c = self.cfg
        entries: list[JournalEntry] = []
        filed: list[Work] = []
        missed: list[tuple[Work, Inspection]] = []  # triggers with no frame: ERROR, answered
        shas: dict[str, str] = {}  # recorded by this group: sha256 -> verdict
        for w in group:
            insp = build_inspection(w.inspector or self.inspector, w, c.name, c.plugin)
            if w.item.path is None and w.data is None:  # a trigger that got no frame
                if insp.capture_id is not None:  # its part is in the records, as ERROR
                    entries.append(JournalEntry(insp, [s.name for s in self.writer.slots]))
                missed.append((w, insp))
                continue
            repeated_error(w)
            self._place(w, insp)
            entry = self._entry(w, insp, shas)
            if entry is not None:
                shas[w.sha256] = insp.verdict.decision.value
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
        for w, insp in missed:
            self._no_frame(w.item, insp)
        for w in filed:
            settle(w, source=self.source, mqtt=self.mqtt, log=self.log, status=self.status)
            if w.known_verdict is None:  # a new record: its health counts towards drift
                self.drift.seen(w.inspection, self.mqtt)

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
        # a camera frame: keep it in the archive, record that path (a trigger that got no frame,
        # no data, is recorded by record() without coming here)
        if item.path is None and w.data is not None:
            try:
                saved = self.archive.save(
                    w.data,
                    frame_name(c.name, item),
                    insp.verdict.decision.value,
                    w.sha256,
                    insp.inspected_at,
                )
                insp.source = str(saved)
                self.status.resolved(SAVING)
            except OSError as e:
                self.log.error(
                    "archive_failed",
                    f"cannot save frame {item.source} into {c.archive}: {e}; recording it anyway",
                )
                self.status.needs_action(
                    SAVING,
                    f"camera frames cannot be saved into {c.archive} ({e}): {fs_hint(e)}. "
                    "They are recorded without their image until this is fixed",
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

    def _entry(self, w: Work, insp: Inspection, shas: dict[str, str]) -> JournalEntry | None:
        """The journal entry of a new result; None for an image recorded before (by this group,
        a moment ago, or before a crash), which is only filed. A verdict for an image recorded
        as ERROR is new: it replaces the ERROR."""
        item = w.item
        before = None
        if w.known_verdict is None and w.sha256:
            before = shas.get(w.sha256) or self.journal.verdict_of(w.sha256)
        if before is not None and (before != "ERROR" or insp.verdict.decision.value == "ERROR"):
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
