"""The station daemon: source -> read/check/decode -> model -> rules -> journal -> sinks, archive.

Threads, joined by small bounded queues (memory stays flat however much arrives):

``reader``   takes items from the source, reads, hashes, checks and decodes them;
``model``    ``station.workers`` of them (default one per core, :mod:`.model_pool`), each
             running the model on up to ``batch`` same-size images at once;
``recorder`` takes the results back in the order the images came, applies the rules, commits
             them to the journal (one fsync'd transaction per group), publishes them on MQTT,
             then lets the source file the images;
``writer``   writes the journal to the sinks in order (see :mod:`inspect_stations.pipeline.writer`).

All but the writer are :class:`inspect_stations.pipeline.threads.Pipeline`; this module builds the
station, starts and stops them.

Decoding, inference and recording overlap; so do the model calls of several workers. An image
leaves the inbox only after its result is committed to the journal; sinks are idempotent on the
record's key, (station, sha256) or (station, capture id), so a restart after ``kill -9`` at any
moment loses no image and records none twice.

A triggered capture (an MQTT trigger) is a record of its own, keyed by its capture id, even
when its pixels equal an earlier frame's (logged as ``frame_repeated``: a frozen camera?). The
same image twice otherwise (same sha256, e.g. a file copied into the inbox under a second name,
or an untriggered frozen stream) is recorded once: the second file is filed beside the first
(``archive/<verdict>/<date>/``, under its own name) without a record of its own, logged as
``already_recorded`` and, with MQTT, answered with the verdict and ``"already_recorded": true``.
After a crash between the journal and the move the same happens to the very file that was
recorded: it goes where its record says.

A sink that fails is retried every ``journal_retry_s``, and made anew now and then (up to every
10 s: a handle opened during the outage may stay broken); the results wait in the journal. When
the failure needs someone (the database's schema is older than this inspect: run
``inspect db upgrade``) it is logged as an error, again every 5 minutes, and shown by
``inspect station status``; the line keeps running. A result a sink refuses for its content is
set aside as a dead letter instead (see :mod:`inspect_stations.pipeline.writer`): the results
behind it
go on.

One station per state folder and per inbox: a second one started on either is refused, naming
the process that holds it (:mod:`inspect_stations.pipeline.locks`); two stations on one inbox would
each record every image. An inbox removed and made again while the station runs is still its
own: a second station on that path is refused, and this one takes files from (and locks) the
new folder, or stops if another station holds it already.

SIGTERM / SIGINT: the source stops, the images already read are finished, the journal is
flushed to the sinks for up to ``flush_timeout_s`` (what remains is written at the next start),
and :meth:`Station.run` returns 0. A second signal exits at once (the journal is durable).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from inspect_core.errors import InspectError
from inspect_core.plugin_api.interfaces import Source
from inspect_core.plugin_api.manager import Registry, get_registry
from inspect_core.runtime.inspector import InspectorBase
from inspect_core.runtime.recipe import Recipe
from inspect_stations.builders import (
    SourceContext,
    as_source,
    build_inspector,
    build_slots,
    build_source,
    config_base,
    load_recipe,
)
from inspect_stations.config.station import StationConfig
from inspect_stations.logs import StationLog
from inspect_stations.mqtt.link import MqttLink
from inspect_stations.pipeline.archive import Archive
from inspect_stations.pipeline.journal import Journal
from inspect_stations.pipeline.model_follow import ModelFollower, open_follower
from inspect_stations.pipeline.model_pool import model_config, pool_plan
from inspect_stations.pipeline.station_folders import take_locks, usable_folders
from inspect_stations.pipeline.status import StatusBoard
from inspect_stations.pipeline.threads import Pipeline
from inspect_stations.pipeline.writer import Writer
from inspect_stations.sources.folder import FolderSource

CLOCK_SANE = 1_704_067_200  # 2024-01-01: an earlier clock is a dead RTC battery, not the date


class Station:
    """One running station. Everything named in the config is resolved through the plugin
    registry unless given directly: ``recipe`` (a Recipe; the config's overrides are applied),
    ``inspector`` (an :class:`~inspect_core.runtime.inspector.InspectorBase`), ``sinks`` (name
    -> sink object or zero-argument factory; replaces the database and [[sinks]]) and
    ``source``."""

    def __init__(
        self,
        config: StationConfig,
        *,
        recipe: Recipe | None = None,
        inspector: InspectorBase | None = None,
        sinks: dict[str, Any] | None = None,
        source: Any = None,
        registry: Registry | None = None,
        log: StationLog | None = None,
        versions: Any = None,
    ) -> None:
        self.cfg = config
        self.log = log or StationLog(config.name)
        self._registry = registry
        self.stop_event = threading.Event()
        self.failed: str | None = None
        self.pool = pool_plan(config)  # model workers, threads per call
        self.model_cfg = model_config(config, self.pool)
        self.inspector = inspector or build_inspector(self.model_cfg, recipe, self.registry)
        self.recipe = self.inspector.recipe
        usable_folders(config)
        self._lock_fd, self._inbox_lock = take_locks(config, own_inbox=source is None)
        self.journal = self._open_journal()
        self.archive = Archive(config.archive, config.quarantine)
        self.status = StatusBoard(config.name, config.plugin, self.recipe.name, config.state_dir)
        self.follower = self._follow(recipe, inspector is not None, versions)
        self.triggers: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self.context = SourceContext(
            config.name,
            self.stop_event,
            config_base(config),
            self.journal,
            self.archive,
            self.log,
            self.triggers,
            config.until_empty,
            config,
        )
        self.slots = build_slots(config, sinks, self.registry if sinks is None else None)
        self.source: Source = (
            as_source(source, "the station's source")
            if source is not None
            else build_source(config, self.context, lambda: self.registry)
        )
        if isinstance(self.source, FolderSource):  # it follows a replaced inbox (.locks)
            self.source.inbox_lock = self._inbox_lock
        self.mqtt: MqttLink | None = None
        self.writer = Writer(self.journal, self.slots, self.log, config.journal_retry_s)
        self.pipeline = Pipeline(
            config,
            self.inspector,
            self.source,
            self.journal,
            self.archive,
            self.writer,
            self.log,
            self.status,
            after_group=self._update_status,
            workers=self.pool.workers,
        )

    def _follow(self, recipe: Recipe | None, injected: bool, versions: Any) -> ModelFollower | None:
        """The model registry follower (``[model]``); the station starts on the version the
        registry names active. An inspector handed in is followed only with ``versions``."""
        if injected and versions is None:
            return None
        base = recipe if recipe is not None else load_recipe(self.cfg)

        def build(r: Recipe) -> InspectorBase:
            return build_inspector(self.model_cfg, r, self.registry)

        f = open_follower(
            self.cfg, self.registry, base, self.inspector, build, self.log, self.status, versions
        )
        if f is not None and (v := f.wanted()) is not False:
            first = f.load(v)  # type: ignore[arg-type]
            if first is not None:
                f.running_sha, self.inspector = first.model_sha256, first
        return f

    def _open_journal(self) -> Journal:
        journal = Journal(Path(self.cfg.state_dir) / "journal.sqlite")
        try:
            journal.prune(30 * 86400)
        except Exception as e:  # housekeeping only (e.g. a full disk): never stop the line for it
            self.log.warning(
                "journal_prune",
                f"could not forget old entries of {journal.path} ({e}); carrying on",
            )
        return journal

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = get_registry()
        return self._registry

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the station to finish the images in hand and return (thread- and signal-safe)."""
        self.stop_event.set()

    def run(self, install_signals: bool = True) -> int:
        """Run until stopped (or the source ends); returns the exit code: 0, or 1 on failure."""
        restore = self._install_signals() if install_signals else {}
        try:
            self._start_mqtt()
            self._announce()
            self.status.state = "running"
            self.status.write(force=True)
            self.writer.start()
            p = self.pipeline
            threads = [
                threading.Thread(target=self._guard, args=(f, name), name=name, daemon=True)
                for name, f in p.bodies()
            ]
            if self.follower is not None and self.cfg.model.check_s > 0:
                follow = (self.stop_event, self.cfg.model.check_s, p.swap)
                threading.Thread(
                    target=self.follower.run, args=follow, name="model_follow", daemon=True
                ).start()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                threads[-1].join(0.2)
            self.status.state = "stopping"
            self.status.write(force=True)
            self._flush()
        finally:
            self.stop_event.set()  # the registry follower too, when the source simply ended
            self._shutdown()
            for sig, old in restore.items():
                signal.signal(sig, old)
        return self._stopped()

    def _announce(self) -> None:
        """The start line, and what needs someone: results for sinks no longer configured, a
        system clock that cannot be right."""
        pending = self.journal.pending()
        self.log.info(
            "start",
            f"station {self.cfg.name}: {self.cfg.plugin}/{self.recipe.name}"
            f", source {self.cfg.source_type}, archive {self.cfg.archive}, {self.pool.describe()}"
            + (f", {pending} journaled result(s) to write" if pending else ""),
            pid=os.getpid(),
            journal_pending=pending,
        )
        names = {s.name for s in self.slots}
        orphans = {k: v for k, v in self.journal.pending_by_sink().items() if k not in names}
        if orphans:
            self.log.warning(
                "journal_orphans",
                "the journal holds results for sink(s) this "
                f"station no longer has ({orphans}); they stay in "
                f"{self.journal.path} until that sink is configured again",
            )
        if time.time() < CLOCK_SANE:
            self.log.warning(
                "clock",
                "the system clock says "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime())}: records "
                "and archive folders carry that date. Set the clock (NTP, or "
                "the machine's RTC battery) and restart the station",
            )

    def _flush(self) -> None:
        """Let the writer write what is journaled, for up to ``flush_timeout_s``."""
        self.writer.finish(self.cfg.flush_timeout_s)
        # a sink stuck in a network call must not keep the station from stopping (docker
        # stop would kill it): what it has not written stays journaled
        self.writer.join(self.cfg.flush_timeout_s + 5.0)
        if self.writer.is_alive():
            self.log.warning(
                "flush_timeout",
                "a sink did not answer within "
                f"{self.cfg.flush_timeout_s + 5:g} s; stopping anyway (its "
                "results stay in the local journal and are written at the next "
                "start)",
            )

    def _stopped(self) -> int:
        """Close the journal and the lock, log the stop line; the exit code."""
        left = self.journal.pending()
        self.status.state = "failed" if self.failed else "stopped"
        self._update_status(force=True)
        if not self.writer.is_alive():  # else it may still touch the journal: the OS closes it
            self.journal.close()
        if self._inbox_lock is not None:
            self._inbox_lock.close()
        os.close(self._lock_fd)
        blocked = [f"{s.name} ({s.last_error})" for s in self.slots if s.needs_action]
        self.log.info(
            "stop",
            f"station {self.cfg.name} stopped after {self.status.total} image(s)"
            + (f"; {left} result(s) stay journaled until the next start" if left else "")
            + (f"; not written because of: {'; '.join(blocked)}" if left and blocked else ""),
            images=self.status.total,
            journal_pending=left,
        )
        return 1 if self.failed else 0

    def _install_signals(self) -> dict[signal.Signals, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old: dict[signal.Signals, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop_event.is_set():
                os._exit(130)  # second signal: leave now; journaled results survive
            self.log.info(
                "signal",
                f"{signal.Signals(signum).name}: finishing the current images, then stopping",
            )
            self.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
        return old

    def _start_mqtt(self) -> None:
        m = self.cfg.mqtt
        if m is None:
            return

        def on_trigger(trig: dict[str, Any]) -> None:
            try:
                self.triggers.put_nowait(trig)
            except queue.Full:
                if self.mqtt is not None:  # set below, before any trigger can arrive
                    self.mqtt.publish_error(
                        trig.get("id"), "station busy: too many triggers waiting"
                    )

        self.mqtt = MqttLink(
            m, self.cfg.name, self.log, on_trigger if self.cfg.source_type != "folder" else None
        ).start()
        self.pipeline.mqtt = self.mqtt

    def _shutdown(self) -> None:
        for what, fn in (
            ("source", self.source.close),
            ("mqtt", self.mqtt.close if self.mqtt else None),
        ):
            if fn is None:
                continue
            try:
                fn()
            except Exception as e:
                self.log.warning("close_failed", f"closing the {what} failed: {e}")

    def _guard(self, fn: Callable[[], None], name: str) -> None:
        """Run one pipeline thread; a crash stops the station with a clear message."""
        try:
            fn()
        except Exception as e:
            self.failed = f"{type(e).__name__}: {e}"
            self.log.error(
                "failed",
                f"{name} stopped: {self.failed}",
                exc_info=not isinstance(e, InspectError),
            )
            self.stop_event.set()
            self.pipeline.abort.set()

    def _update_status(self, force: bool = False) -> None:
        s = self.status
        fresh = force or time.monotonic() - s._written >= 1  # journal counts: once a second
        s.extra.update(
            queue_depth=self.source.queue_depth,
            in_flight=self.pipeline.in_flight,
            journal_pending=self.journal.pending() if fresh else s.extra.get("journal_pending", 0),
            dead_letters=self.journal.dead_letters().to_dict()
            if fresh
            else s.extra.get("dead_letters", {}),
            sinks=[
                {
                    "name": x.name,
                    "up": x.up,
                    "down_since": x.down_since,
                    "last_error": x.last_error,
                    "written": x.written,
                    "needs_action": x.needs_action,
                }
                for x in self.slots
            ],
            journal_error=self.writer.error,
            mqtt=None if self.mqtt is None else self.mqtt.status(),
        )
        s.write(force)
