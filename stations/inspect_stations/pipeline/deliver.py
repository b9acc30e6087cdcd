"""After an image is recorded (or known): answer the line, file the image, say what happened.

The last step of the recorder (:mod:`inspect_stations.pipeline.threads`) for each image: the result
goes out on MQTT (a repeat is answered with ``"already_recorded": true``), the source files the
image (archive or quarantine; a failure leaves it in the inbox, to be filed, not inspected, on
a later try), and the station log and status board get one line about it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from inspect_core.plugin_api.interfaces import Source
from inspect_core.types import Inspection
from inspect_stations.logs import StationLog
from inspect_stations.mqtt.trigger import result_message
from inspect_stations.pipeline.archive import fs_hint
from inspect_stations.pipeline.status import StatusBoard
from inspect_stations.pipeline.work import Work

if TYPE_CHECKING:
    from inspect_stations.mqtt.link import MqttLink

FILING = "filing"  # the status board's key while images cannot be filed


def settle(
    w: Work, *, source: Source, mqtt: MqttLink | None, log: StationLog, status: StatusBoard
) -> None:
    """File the image of ``w`` and report its result (see the module docstring)."""
    if mqtt:
        _answer(w, mqtt)
    _file(w, source, log, status)
    if w.known_verdict is None:
        _report_new(w, log, status)
    elif w.item.path is None:
        _report_repeated_frame(w, log, status)
    else:
        _report_known(w, log)


def _answer(w: Work, mqtt: MqttLink) -> None:
    """The result on MQTT, under the id a PLC matches on: the trigger's, else the name the
    file had in the inbox (not the archive name, which gets a suffix when taken)."""
    insp, item = _recorded(w), w.item
    rid = (
        item.request_id
        if item.request_id is not None
        else (os.path.basename(item.path) if item.path else None)
    )
    if w.known_verdict is None:
        mqtt.publish_result(insp, rid)
    else:  # answered again (at least once): the details are in the first record
        mqtt.publish(mqtt.opt.result_topic, {**result_message(insp, rid), "already_recorded": True})


def _file(w: Work, source: Source, log: StationLog, status: StatusBoard) -> None:
    """The source files the image; a failure leaves it in the inbox (logged, on the board, and
    NEEDS ACTION in ``inspect station status`` until an image is filed again)."""
    insp, item = _recorded(w), w.item
    try:
        source.done(item, insp)
    except Exception as e:
        verdict = insp.verdict.decision.value
        shown = item.path or insp.source
        into = insp.source if insp.source != shown else "the archive"
        status.needs_action(
            FILING,
            f"images cannot be filed: {shown} could not be filed into {into} "
            f"({type(e).__name__}: {e}): {fs_hint(e)}. Recorded images wait in the inbox "
            "and are filed once this is fixed",
        )
        log.error(
            "file_failed",
            f"{shown}: recorded as {verdict}, but could not be filed "
            f"into {into} ({type(e).__name__}: {e}): "
            f"{fs_hint(e)}. It stays in the inbox and is filed on a later try "
            + (
                "(checked again first: an ERROR is not a verdict)"
                if verdict == "ERROR"
                else "(not inspected again)"
            ),
            path=shown,
            error=str(e),
        )
        status.error(shown, f"recorded as {verdict} but could not be filed: {e}")
        source.release(item)
    else:
        status.resolved(FILING)


def _report_repeated_frame(w: Work, log: StationLog, status: StatusBoard) -> None:
    """A camera delivering the very same pixels again is usually a frozen stream."""
    insp, item = _recorded(w), w.item
    verdict = insp.verdict.decision.value
    log.warning(
        "frame_repeated",
        f"{item.source}: this frame is identical, pixel for pixel, to one "
        f"already recorded (sha256 {w.sha256[:12]}, {verdict}); is the "
        "camera image frozen? The result is not recorded again"
        + (f" (part {item.part_id})" if item.part_id else ""),
        sha256=w.sha256,
        verdict=verdict,
        request_id=item.request_id,
        part_id=item.part_id,
    )
    status.inspected(
        insp.source,
        verdict,
        "frame identical to one already recorded (camera frozen?)",
        id=item.request_id,
    )


def _report_known(w: Work, log: StationLog) -> None:
    """A file whose image is recorded already (a copy, or recorded before a crash)."""
    insp, item = _recorded(w), w.item
    verdict = insp.verdict.decision.value
    where = _filed_as(w)
    log.info(
        "already_recorded",
        f"{item.path or insp.source}: the same image (sha256 "
        f"{w.sha256[:12]}) is already recorded as {verdict}; not recorded "
        "again" + (f", filed as {where}" if where else ""),
        sha256=w.sha256,
        verdict=verdict,
        filed_as=where,
    )


def _report_new(w: Work, log: StationLog, status: StatusBoard) -> None:
    insp, item = _recorded(w), w.item
    verdict = insp.verdict.decision.value
    where = _filed_as(w)
    status.inspected(insp.source, verdict, insp.error, id=item.request_id)
    if verdict == "ERROR":
        log.warning(
            "quarantined",
            f"{item.path or item.source}: {insp.error}" + (f" -> {where}" if where else ""),
            sha256=insp.image_sha256,
            reason=insp.error,
            filed_as=where,
            request_id=item.request_id,
        )
    else:
        log.info(
            "inspected",
            f"{verdict:6} {item.path or insp.source}",
            verdict=verdict,
            ms=round(insp.latency_ms, 1),
            regions=len(insp.verdict.regions),
            fired=[h.rule for h in insp.verdict.hits],
            filed_as=where,
            request_id=item.request_id,
            sha256=insp.image_sha256,
        )


def _recorded(w: Work) -> Inspection:
    """The inspection of ``w``: build_inspection sets it before an image is settled."""
    return cast(Inspection, w.inspection)


def _filed_as(w: Work) -> str | None:
    return w.item.file.filed_as if w.item.file is not None else None
