"""``<state_dir>/status.json``: what a running station is doing, for ``inspect station status``.

The daemon rewrites it atomically (temporary file + rename) about once a second: state, queue
depth (files waiting in the inbox), images in flight, journal backlog, images per minute over
the last minute, verdict counts, the last verdicts and the last errors, and the dead letters
(results a sink refused for their content, set aside: NEEDS ACTION until replayed).
"""

from __future__ import annotations

import collections
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inspect_core.cards import MAX_SMALL_FILE, read_small_file
from inspect_core.errors import InspectError
from inspect_core.text import terminal_text
from inspect_core.text import terminal_text as t

STATUS_FILE = "status.json"
KEEP = 20


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists (False for anything but a positive process id: 0 would
    ask about this process's group)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class NeedsAction:
    """One thing the station cannot fix by itself (a promoted model that failed its check, an
    archive that cannot take images): shown as NEEDS ACTION with its reason until resolved."""

    key: str  # which problem: one entry per key (e.g. "model_switch")
    reason: str  # what went wrong and what to do
    since: float  # time.time() when it was first said


class StatusBoard:
    """Counters the station updates; ``snapshot()`` is what goes into status.json."""

    def __init__(self, station: str, plugin: str, recipe: str, state_dir: Path):
        self.path = Path(state_dir) / STATUS_FILE
        self.lock = threading.Lock()
        self.base = {
            "station": station,
            "plugin": plugin,
            "recipe": recipe,
            "pid": os.getpid(),
            "started_at": time.time(),
        }
        self.state = "starting"
        self.total = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP)
        self.errors: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP)
        self.minute: collections.deque[float] = collections.deque()  # monotonic, last 60 s
        self.extra: dict[str, Any] = {}
        self.needs: dict[str, NeedsAction] = {}  # key -> what needs someone, until resolved
        self._written = 0.0
        self._t0: float | None = None  # the first write: the rate counts from there

    def inspected(self, source: str, verdict: str, error: str | None = None, **kw: Any) -> None:
        now = time.monotonic()
        with self.lock:
            self.total += 1
            self.counts[verdict] += 1
            self.minute.append(now)
            while self.minute and self.minute[0] < now - 60:
                self.minute.popleft()
            entry = {"at": time.time(), "source": source, "verdict": verdict, **kw}
            self.recent.append(entry)
            if error:
                self.errors.append({**entry, "error": error})

    def error(self, source: str, error: str) -> None:
        with self.lock:
            self.errors.append({"at": time.time(), "source": source, "error": error})

    def needs_action(self, key: str, reason: str) -> None:
        """Show ``reason`` as NEEDS ACTION under ``key`` until :meth:`resolved` (said again:
        the reason is updated, the time it began is kept)."""
        with self.lock:
            old = self.needs.get(key)
            self.needs[key] = NeedsAction(key, reason, old.since if old else time.time())

    def resolved(self, key: str) -> None:
        """The problem under ``key`` is gone: no longer shown."""
        with self.lock:
            self.needs.pop(key, None)

    def images_per_min(self) -> float:
        now = time.monotonic()
        with self.lock:
            while self.minute and self.minute[0] < now - 60:
                self.minute.popleft()
            n = len(self.minute)
        up = min(60.0, now - self._t0) if self._t0 is not None else 60.0
        return round(n * 60.0 / max(up, 1.0), 1)

    def snapshot(self) -> dict[str, Any]:
        ipm = self.images_per_min()
        with self.lock:
            return {
                **self.base,
                "state": self.state,
                "updated_at": time.time(),
                "images_total": self.total,
                "images_per_min": ipm,
                "verdicts": dict(self.counts),
                "last_verdicts": list(self.recent)[::-1],
                "last_errors": list(self.errors)[::-1],
                "needs_action": [asdict(n) for n in self.needs.values()],
                **self.extra,
            }

    def write(self, force: bool = False, every_s: float = 1.0) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        if not force and now - self._written < every_s:
            return
        self._written = now
        try:
            write_atomic(self.path, self.snapshot())
        except OSError:
            pass  # status is informative; never stop the line for it


def read_status(state_dir: Path) -> dict[str, Any]:
    """The status a station last wrote, with ``running``; :class:`InspectError` saying what to
    do when the file is missing or damaged. Values of the wrong kind are shown as they are."""
    path = Path(state_dir) / STATUS_FILE
    try:
        data = json.loads(read_small_file(path, MAX_SMALL_FILE))
        problem = None if isinstance(data, dict) else f"a JSON {type(data).__name__}, not an object"
    except FileNotFoundError:
        raise InspectError(
            f"no station status in {state_dir} ({STATUS_FILE} not found): the "
            "station has not run with this state folder yet"
        ) from None
    except OSError as e:
        problem = e.strerror or str(e)
    except ValueError as e:  # not UTF-8, not JSON
        problem = f"not JSON: {e}"
    if problem is not None:
        raise InspectError(
            f"cannot read the station status {path} ({problem}); it is damaged (written "
            "during a crash or on a full disk?). Remove it: a running station writes it again "
            "within a second, a stopped one at its next start"
        )
    age = _seconds(time.time()) - _seconds(data.get("updated_at"))
    running = data.get("state") not in ("stopped", "failed") and pid_alive(data.get("pid"))
    data["running"] = bool(running and abs(age) < 30)
    status: dict[str, Any] = data
    return status


def _seconds(value: Any) -> float:
    """A time from status.json as a number (NaN for anything that is not one)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def ago(at: Any) -> str:
    """How long ago ``at`` was: seconds, minutes, else the date and time ("?" for a value
    that is not a time)."""
    if at is None or at == 0:
        return "-"
    t = _seconds(at)
    s = time.time() - t
    if not math.isfinite(s):
        return "?"
    if 0 <= s < 120:
        return f"{s:.0f} s ago"
    if 0 <= s < 7200:
        return f"{s / 60:.0f} min ago"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (OverflowError, ValueError, OSError):
        return "?"


def format_status(d: dict[str, Any]) -> str:
    """The status as text for a terminal; names and errors from the station (file names, error
    messages) are printed literally, one line each (:func:`inspect_core.text.terminal_text`).
    A part of a damaged status.json that cannot be shown is named, and the rest is shown."""
    lines: list[str] = []
    for part, show in (
        ("summary", _summary_lines),
        ("needs_action", _needs_action_lines),
        ("sinks", _sink_lines),
        ("dead_letters", lambda d: _dead_letter_lines(d.get("dead_letters") or {})),
        ("mqtt", lambda d: _mqtt_lines(d.get("mqtt"))),
        ("last verdicts and errors", _recent_lines),
    ):
        try:
            lines += show(d)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as e:
            why = terminal_text(f"{type(e).__name__}: {e}")
            lines.append(f"  ({part}: cannot be shown, status.json is damaged here: {why})")
    return "\n".join(lines)


def _summary_lines(d: dict[str, Any]) -> list[str]:
    """The station, its state, queue, rate, verdict counts and journal backlog."""
    state = t(d.get("state", "?"))
    if not d.get("running") and state not in ("stopped", "failed"):
        state = f"not running (last update {ago(d.get('updated_at'))}, was {state})"
    verdicts = ", ".join(f"{t(k)} {v}" for k, v in sorted(d.get("verdicts", {}).items()))
    return [
        f"station   {t(d.get('station'))}  ({t(d.get('plugin'))}/{t(d.get('recipe'))}, "
        f"pid {d.get('pid')})",
        f"state     {state}",
        f"queue     {d.get('queue_depth', 0)} waiting, {d.get('in_flight', 0)} in flight",
        f"rate      {d.get('images_per_min', 0)} images/min, {d.get('images_total', 0)} since "
        f"start ({ago(d.get('started_at'))})",
        f"verdicts  {verdicts or 'none yet'}",
        f"journal   {d.get('journal_pending', 0)} result(s) waiting for a sink",
    ]


def _needs_action_lines(d: dict[str, Any]) -> list[str]:
    """What the station cannot fix by itself (:meth:`StatusBoard.needs_action`), with why."""
    return [
        f"NEEDS ACTION since {ago(n.get('since'))}: {t(n.get('reason'))}"
        for n in d.get("needs_action") or []
    ]


def _sink_lines(d: dict[str, Any]) -> list[str]:
    """Each journaled sink: up, or DOWN / NEEDS ACTION since when and why; a journal error."""
    lines = []
    for s in d.get("sinks", []):
        if s.get("up"):
            lines.append(f"  sink {t(s['name'])}: up")
            continue
        how = "NEEDS ACTION" if s.get("needs_action") else "DOWN"
        lines.append(
            f"  sink {t(s['name'])}: {how} since {ago(s.get('down_since'))}: "
            f"{t(s.get('last_error'))}"
        )
    if d.get("journal_error"):
        lines.append(f"  JOURNAL ERROR: {t(d['journal_error'])}")
    return lines


def _recent_lines(d: dict[str, Any]) -> list[str]:
    """The last ten verdicts and the last ten errors, newest first."""
    lines = []
    if d.get("last_verdicts"):
        lines.append("last verdicts:")
        lines += [
            f"  {ago(e['at']):>12}  {t(e['verdict']):6} {t(e['source'])}"
            for e in d["last_verdicts"][:10]
        ]
    if d.get("last_errors"):
        lines.append("last errors:")
        lines += [
            f"  {ago(e['at']):>12}  {t(e['source'])}: {t(e['error'])}"
            for e in d["last_errors"][:10]
        ]
    return lines


def _mqtt_lines(m: Any) -> list[str]:
    """The MQTT link (:meth:`inspect_stations.mqtt.link.MqttLink.status`): NEEDS ACTION while the
    broker is away, with what waits in its queue and what was dropped."""
    if isinstance(m, dict):
        waiting = f"{m.get('queued', 0)} result(s) queued, {m.get('dropped', 0)} dropped"
        if m.get("connected"):
            return [f"mqtt      connected ({waiting})"]
        return [
            f"mqtt      NEEDS ACTION since {ago(m.get('down_since'))}: "
            f"{t(m.get('last_error') or 'broker not reachable')} ({waiting})"
        ]
    if m is not None:
        return [f"mqtt      {'connected' if m else 'disconnected'}"]
    return []


def _dead_letter_lines(dead: dict[str, Any]) -> list[str]:
    """The dead letters of a status: NEEDS ACTION while any is set aside, the newest reasons."""
    n = int(dead.get("count") or 0)
    if not n:
        return []
    sinks = ", ".join(f"{k} {v}" for k, v in sorted((dead.get("by_sink") or {}).items()))
    out = [
        f"dead      {n} result(s) refused by a sink ({sinks}), set aside: NEEDS ACTION (fix "
        "the cause, then `inspect station replay CONFIG`)"
    ]
    for e in dead.get("latest") or []:
        what = terminal_text(e.get("source") or f"journal row {e.get('seq')}")
        if e.get("part_id"):
            what += f" (part {terminal_text(e['part_id'])})"
        out.append(
            f"  {ago(e.get('failed_at')):>12}  {terminal_text(e.get('sink'))}: {what}: "
            f"{terminal_text(e.get('reason'))}"
        )
    return out
