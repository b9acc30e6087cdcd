"""One image's way through a station: read and check it, run the model, judge, build the record.

These are the steps the daemon's threads run; they never raise for a bad image: a problem
becomes ``Work.error`` and, later, an ERROR inspection whose ``error`` says why.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from inspect_core.plugin_api.interfaces import FileFacts, SourceItem
from inspect_core.runtime.inspector import InspectorBase, Result
from inspect_core.runtime.overlay import fit_name, render_overlay, save_overlay
from inspect_core.runtime.preprocess import Chain, Resize
from inspect_core.types import Decision, Inspection, Verdict
from inspect_stations.config.station import Limits
from inspect_stations.inputs.image_check import BadImage, Header, check_bytes, decode
from inspect_stations.inputs.regular_files import (
    NotRegularFile,
    open_regular,
    special_kind,
    special_reason,
)
from inspect_stations.inputs.work_limit import WorkShape, check_work
from inspect_stations.pipeline.journal import Journal, Known

Preprocess = Callable[[np.ndarray], np.ndarray]


class NotReady(Exception):
    """The file changed while it was read (still being written): look at it again later."""


@dataclass
class Work:
    """One image on its way through the station's threads (reader -> model -> recorder)."""

    item: SourceItem
    t0: float = field(default_factory=time.perf_counter)
    data: bytes | None = None  # the encoded image (a camera frame is encoded as PNG)
    sha256: str = ""
    image: np.ndarray | None = None  # decoded, after the recipe's preprocess
    width: int = 0
    height: int = 0
    error: str | None = None
    known_verdict: str | None = None  # already recorded (before a crash): file it, no re-run
    error_before: Known | None = None  # recorded as ERROR before: inspected again
    replaces: str | None = None  # the path key of its ERROR when it could not be read
    probs: np.ndarray | None = None
    features: np.ndarray | None = None  # from the same model run: its familiarity (issue 25)
    result: Result | None = None
    inspection: Inspection | None = None
    inspector: InspectorBase | None = None  # the model that ran on it (set by the model thread)
    seq: int = 0  # its place in the station's order (records keep it)
    waited: float = 0.0  # seconds it spent waiting for the station's threads so far
    queued_at: float | None = None  # when it last started waiting (None: being worked on)

    @property
    def needs_model(self) -> bool:
        return self.error is None and self.known_verdict is None and self.image is not None

    def queued(self) -> None:
        """It waits from now (put into a queue, or kept back until the images ahead of it are
        recorded)."""
        self.queued_at = time.perf_counter()

    def taken(self, now: float | None = None) -> None:
        """A thread works on it from ``now``: the wait since :meth:`queued` is added up."""
        if self.queued_at is not None:
            self.waited += (now if now is not None else time.perf_counter()) - self.queued_at
            self.queued_at = None


def _facts(item: SourceItem, st: os.stat_result) -> FileFacts:
    """The item's :class:`FileFacts`; made from ``st`` for a source that gave none."""
    if item.file is None:
        item.file = FileFacts(st.st_size, st.st_mtime_ns)
    return item.file


def _refuse(w: Work, reason: str, key: str, journal: Journal | None) -> Work:
    """A file that is not read. Its key, as there is no content to hash, is the file as it is
    now: the same file is the same key after a restart; a new one under that name (a camera
    that reuses one name) is not. A name that is not valid UTF-8 keeps its bytes in the key."""
    w.sha256 = _path_key(key, w.item.file)
    w.error = reason
    return _known(w, journal)


def _path_key(key: str, f: FileFacts | None) -> str:
    """The sha256 that keys the record of a file refused unread: ``key`` and its size and
    modification time."""
    stamp = f"{f.size}:{f.mtime_ns}" if f is not None else ":"
    return hashlib.sha256(f"{key}:{stamp}".encode("utf-8", "surrogatepass")).hexdigest()


def _unread_error(w: Work, st: os.stat_result, journal: Journal) -> None:
    """``w.replaces``: the key of this very file's ERROR from when it could not be read
    (unreadable, over limits.max_bytes; after a chmod, a raised limit or a move back from
    quarantine it has the same path, inode, size and time), so its verdict takes that
    record's place."""
    f = FileFacts(st.st_size, st.st_mtime_ns)
    path = w.item.path or ""
    for key in (f"unreadable:{path}", f"oversize:{path}:{st.st_ino}"):
        sha = _path_key(key, f)
        known = journal.known(sha)
        if known is not None and known.verdict == "ERROR":
            w.replaces = sha
            return


def _oversize(w: Work, st: os.stat_result, limits: Limits, journal: Journal | None) -> Work:
    """A file above ``limits.max_bytes``, refused from its size alone: nothing of it is read
    (an 8 GB sparse file would take the reader half a minute to hash), so it is keyed like
    an unreadable file, by its path, inode, size and modification time."""
    facts = _facts(w.item, st)
    if facts.ino is None:
        facts.ino = st.st_ino
    reason = (
        f"file is {st.st_size} bytes, above the station limit of "
        f"{limits.max_bytes} (limits.max_bytes); if such images are expected, "
        "raise limits.max_bytes"
    )
    return _refuse(w, reason, f"oversize:{w.item.path}:{st.st_ino}", journal)


def read_file(
    item: SourceItem,
    limits: Limits,
    preprocess: Preprocess | None = None,
    journal: Journal | None = None,
    shape: WorkShape | None = None,
) -> Work:
    """Read, hash, check and decode one file of a folder source. Only a regular file is
    opened; with ``shape``, an image too large for the recipe's model is refused from its
    header (:func:`inspect_stations.inputs.work_limit.check_work`)."""
    w = Work(item)
    path = item.path or ""
    if item.refuse:  # a symlink out of the folder, a pipe, a socket: never read
        try:
            key = f"symlink:{path}->{os.readlink(path)}"
        except OSError:
            key = f"special:{path}"
        return _refuse(w, item.refuse, key, journal)
    try:
        st = os.stat(path)
        kind = special_kind(st.st_mode)
        if kind:
            raise NotRegularFile(kind, path)
        if st.st_size > limits.max_bytes:
            return _oversize(w, st, limits, journal)
        with open_regular(path) as f:  # a pipe that took the name meanwhile: refused too
            data = f.read()
            st2 = os.fstat(f.fileno())
    except FileNotFoundError:
        raise NotReady(f"{path} vanished") from None
    except NotRegularFile as e:
        return _refuse(w, special_reason(e.kind), f"special:{path}", journal)
    except OSError as e:
        hint = (
            "check the permissions of the file (the station's user must be able to read it)"
            if isinstance(e, PermissionError)
            else "check the disk or network share it is on"
        )
        return _refuse(
            w, f"cannot read the file ({e.strerror or e}); {hint}", f"unreadable:{path}", journal
        )
    seen = item.file.size if item.file is not None else st.st_size
    if len(data) != st2.st_size or st2.st_mtime_ns != st.st_mtime_ns or st.st_size != seen:
        raise NotReady(f"{path} changed while it was read")
    # what was read, so the file is filed only if it is still this one (see FolderSource.done)
    _facts(item, st).ino = st2.st_ino
    w.data = data
    w.sha256 = hashlib.sha256(data).hexdigest()
    if journal is not None:
        _known(w, journal)
        if w.known_verdict is not None:
            return w
        _unread_error(w, st, journal)
    return _decode(w, data, os.path.splitext(path)[1], limits, preprocess, shape)


def _decode(
    w: Work,
    data: bytes,
    ext: str,
    limits: Limits,
    preprocess: Preprocess | None,
    shape: WorkShape | None,
) -> Work:
    """Check the header of the bytes read (and the work they make), decode, preprocess."""
    try:
        hdr = check_bytes(data, ext, limits)
        w.width, w.height = hdr.width, hdr.height
        if shape is not None:
            check_work(hdr, shape)
        img = decode(data, hdr, limits)
    except BadImage as e:
        w.error = str(e)
        return w
    w.data = None  # the file stays on disk; only a camera frame's bytes are needed later
    return _preprocess(w, img, preprocess, shape)


def _known(w: Work, journal: Journal | None) -> Work:
    """Fill in what the journal says about ``w.sha256``: recorded before (a crash between the
    journal and the move, or another file with the same content), so it is filed, not recorded
    again; an ERROR is not a verdict and is tried again. The record's destination is kept only
    for this very file (same inbox path)."""
    if journal is None:
        return w
    known = journal.known(w.sha256)
    if known is None:
        return w
    if known.verdict == "ERROR":
        # refused before (damaged, over a pixel limit, the model failed): what refused it may
        # be fixed now, so it is inspected again; a verdict replaces the ERROR record (the sql
        # sink), an ERROR again is only filed (see repeated_error)
        w.error_before = known
        return w
    w.known_verdict = known.verdict
    _file_as_recorded(w, known)
    return w


def _file_as_recorded(w: Work, known: Known) -> None:
    """For this very file (same inbox path), where its record says it is filed:
    FolderSource.destination files it there."""
    if known.src is not None and known.src == w.item.path and w.item.file is not None:
        w.item.file.known_dest = known.dest


def repeated_error(w: Work) -> None:
    """After ``w`` was inspected again: an ERROR again, of an image recorded as ERROR before,
    is not recorded or published again, only filed (where its record says, for this very
    file: a crash between the journal and the move)."""
    before = w.error_before
    if before is None or w.result is not None:
        return
    w.known_verdict = "ERROR"
    _file_as_recorded(w, before)


def read_frame(
    item: SourceItem, preprocess: Preprocess | None = None, shape: WorkShape | None = None
) -> Work:
    """A camera frame: encoded as PNG (what the archive keeps and the sha256 is taken of);
    with ``shape``, one too large for the recipe's model is kept and refused."""
    w = Work(item)
    if item.frame is None:
        w.error = item.refuse or "no frame"
        return w
    img = item.frame
    bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        w.error = "could not encode the frame as PNG"
        return w
    w.data = buf.tobytes()
    w.sha256 = hashlib.sha256(w.data).hexdigest()
    w.height, w.width = img.shape[:2]
    if shape is not None:
        try:
            check_work(Header("frame", w.width, w.height), shape)
        except BadImage as e:
            w.error = f"{e} (set the camera's width and height lower)"
            return w
    return _preprocess(w, img, preprocess, shape)


def _preprocess(
    w: Work, img: np.ndarray, preprocess: Preprocess | None, shape: WorkShape | None = None
) -> Work:
    w.height, w.width = img.shape[:2]
    if preprocess is not None:
        try:
            img = preprocess(img)
        except Exception as e:
            w.error = f"the recipe's preprocessing failed on this image: {type(e).__name__}: {e}"
            return w
        if shape is not None:  # the work as the model will see it (a plugin's own resizing)
            try:
                check_work(
                    Header("preprocessed", img.shape[1], img.shape[0]), replace(shape, resizes=())
                )
            except BadImage as e:
                w.error = f"after the recipe's preprocessing: {e}"
                return w
    w.image = img
    return w


def work_shape(inspector: InspectorBase, limits: Limits) -> WorkShape:
    """How the inspector's model runs over an image (tile, overlap, stride, test-time copies,
    the recipe's resize steps) and the station's limit on that work (``limits.max_work_mpx``)."""
    recipe, meta = inspector.recipe, inspector.meta
    pre = recipe.preprocess
    steps = pre.steps if isinstance(pre, Chain) else [pre]
    return WorkShape(
        recipe=recipe.name,
        tile=int(recipe.tile or meta.tile or 1 << 30),
        overlap=float(recipe.tile_overlap),
        stride=int(meta.stride or 1),
        copies=1 + len(meta.tta or ()),
        budget_mpx=float(limits.max_work_mpx),
        resizes=tuple((s.width, s.max_side) for s in steps if isinstance(s, Resize)),
    )


def run_model(inspector: InspectorBase, works: list[Work]) -> None:
    """Probabilities for every work that needs the model, by the inspector's ``forward``
    (same-size images share a batch; an image the model fails on gets its own error)."""
    todo = [w for w in works if w.needs_model]
    images = cast(list[np.ndarray], [w.image for w in todo])  # needs_model: an image each
    for w, run in zip(todo, inspector.forward(images)):
        w.probs, w.features, w.error = run.probs, run.features, run.error


def build_inspection(inspector: InspectorBase, w: Work, station: str, plugin: str) -> Inspection:
    """The rules on the model's output (or the verdict known from before, or ERROR) -> the
    :class:`Inspection` to record, kept as ``w.inspection``; its ``latency_ms`` split into the
    time spent waiting for the station's threads (``queue_ms``) and the rest (``inspect_ms``)."""
    w.taken()
    if w.probs is not None and w.error is None:
        try:
            # w.image is set: probabilities come only of a decoded image (needs_model)
            w.result = inspector.judge_probs(cast(np.ndarray, w.image), w.probs, w.features)
        except Exception as e:
            w.error = f"post-processing or rules failed: {type(e).__name__}: {e}"
    w.probs = w.features = None  # free memory early
    if w.result is not None:
        verdict = w.result.verdict
    elif w.known_verdict is not None:
        verdict = Verdict(Decision(w.known_verdict))
    else:
        verdict = Verdict(Decision.ERROR)
        if w.error is None:
            w.error = "not inspected"
    it = w.item
    w.inspection = inspector.record(
        str(it.path or it.source),
        w.sha256,
        (w.width, w.height),
        verdict,
        w.t0,
        station=station,
        plugin=plugin,
        captured_at=it.captured_at,
        part_id=it.part_id,
        lot=it.lot,
        error=w.error if w.result is None else None,
        capture_id=capture_id(it),
        health=w.result.health if w.result is not None else None,
    )
    insp = w.inspection
    insp.replaces = w.replaces
    insp.queue_ms = min(w.waited * 1000, insp.latency_ms)
    insp.inspect_ms = insp.latency_ms - insp.queue_ms
    return insp


def capture_id(item: SourceItem) -> str | None:
    """The key of a triggered capture (a record of its own even when its pixels repeat an
    earlier frame's): trigger id, capture time, frame number; None for a file or an untriggered
    frame, whose key is their content."""
    if item.path is not None or item.request_id is None:
        return None
    rid = str(item.request_id)
    if len(rid) > 64:  # bounded (the column holds 128), still distinct
        digest = hashlib.sha256(rid.encode("utf-8", "surrogatepass")).hexdigest()
        rid = f"{rid[:40]}~{digest[:16]}"
    at = item.captured_at if item.captured_at is not None else time.time()
    return f"{rid}@{at:.6f}#{item.frame_no}"


def frame_name(station: str, item: SourceItem) -> str:
    """The archive name of a camera frame: station, capture time, frame number."""
    t = item.captured_at or time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + f"-{int(t * 1000) % 1000:03d}"
    return f"{station}-{stamp}-{item.frame_no:07d}.png"


def archive_overlay(inspector: InspectorBase, w: Work, folder: Path) -> str | None:
    """Draw the classes and the verdict over the image the model saw and write the PNG into
    ``folder`` (the archive's overlays of the day); its path, or None without a result."""
    if w.result is None or w.inspection is None:
        return None
    ov = render_overlay(w.result.image, w.result.labels, w.result.verdict, inspector.classes)
    stem = Path(w.inspection.source).stem
    return str(save_overlay(folder / fit_name(f"{stem}-{w.sha256[:8]}.png"), ov))
