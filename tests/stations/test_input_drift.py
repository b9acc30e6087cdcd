"""Input drift (issue 25 item 4): a station says once when the share of unfamiliar or
poor-quality images over its last N passes ``[drift] limit``, and once when it recovers."""

from __future__ import annotations

import json
import queue
import socket
import threading
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from station_kit import folder_config, running

from inspect_core.types import InputHealth, QualityProblem
from inspect_stations.config.drift import DriftOptions
from inspect_stations.config.station import ConfigError, parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.drift import DRIFT_KEY, DriftTracker
from inspect_stations.pipeline.status import format_status, read_status
from inspect_stations.testing import FakeInspector, MemorySink, wait_for

HOST, PORT = "127.0.0.1", 1883


def _feed(t: DriftTracker, flags: list) -> list[str]:
    return [c.event for c in map(t.add, flags) if c is not None]


# -- the tracker -----------------------------------------------------------------------------
def test_drift_is_said_once_then_recovery_once():
    t = DriftTracker(DriftOptions(window=10, limit=0.2))
    assert _feed(t, ["ok"] * 10) == []
    # 3 of the last 10 unfamiliar: 0.3 > 0.2, said at the third, not again at the fourth
    assert _feed(t, ["unfamiliar", "quality", "unfamiliar"]) == ["input_drift"]
    assert _feed(t, ["unfamiliar"] * 5) == []
    assert t.drifting
    assert _feed(t, ["ok"] * 20) == ["input_drift_recovered"]
    assert not t.drifting
    assert _feed(t, ["unfamiliar"] * 3) == ["input_drift"]  # a new drift: said again


def test_drift_change_carries_share_window_and_flags():
    t = DriftTracker(DriftOptions(window=4, limit=0.25))
    changes = [c for c in map(t.add, ["ok", "ok", "unfamiliar", "quality"]) if c]
    assert len(changes) == 1
    c = changes[0]
    assert (c.event, c.share, c.images, c.unfamiliar, c.quality) == ("input_drift", 0.5, 4, 1, 1)
    assert "50.0% of the last 4" in c.message and "[drift] limit" in c.message


def test_hysteresis_holds_the_state_between_recover_and_limit():
    """Recovered only below 0.8 x limit: a share at the limit, or just under it, neither
    recovers nor alerts again."""
    t = DriftTracker(DriftOptions(window=20, limit=0.25))  # recovered below 0.2
    assert _feed(t, ["unfamiliar"] * 6 + ["ok"] * 14) == ["input_drift"]  # 6/20 = 0.3
    # each ok pushes an unfamiliar out of the ring: 0.25, then 0.2 (not below 0.2): held
    assert _feed(t, ["ok", "ok"]) == [] and t.share == pytest.approx(0.2) and t.drifting
    assert _feed(t, ["ok"]) == ["input_drift_recovered"]  # 0.15
    assert _feed(t, ["unfamiliar"] * 3) == []  # in for the 3 unfamiliar out: 0.15 still
    # up to 0.25, at the limit but not above it: no alert; above it: one
    assert _feed(t, ["unfamiliar"] * 2) == [] and t.share == pytest.approx(0.25)
    assert _feed(t, ["unfamiliar"]) == ["input_drift"]


def test_unmeasured_images_are_not_counted():
    t = DriftTracker(DriftOptions(window=4, limit=0.25))
    assert _feed(t, ["ok", "ok", "ok", "unfamiliar"]) == []  # 0.25: not above the limit
    assert _feed(t, [None] * 50) == []  # not measured: the ring keeps its images
    assert len(t.ring) == 4 and t.share == 0.25
    assert _feed(t, ["quality"]) == ["input_drift"]  # 2 of 4


def test_min_images_and_flags_counted():
    t = DriftTracker(DriftOptions(window=10, limit=0.2, min_images=5))
    assert _feed(t, ["unfamiliar"] * 4) == []  # 4 images: not judged yet
    assert _feed(t, ["ok"]) == ["input_drift"]  # 5 seen, 0.8
    only = DriftTracker(DriftOptions(window=4, limit=0.2, flags=["unfamiliar"]))
    assert _feed(only, ["quality"] * 4) == []  # quality does not count here
    assert _feed(only, ["unfamiliar"]) == ["input_drift"]


def test_drift_table_in_a_station_file(tmp_path):
    raw = {
        "station": {"name": "s", "plugin": "x", "recipe": "x"},
        "source": {"type": "folder", "path": "inbox"},
        "drift": {"window": 50, "limit": 0.2, "flags": ["unfamiliar"]},
    }
    (tmp_path / "inbox").mkdir()
    cfg = parse_config(raw, tmp_path)
    assert (cfg.drift.window, cfg.drift.limit, cfg.drift.flags) == (50, 0.2, ["unfamiliar"])
    assert cfg.drift.least == 50
    assert parse_config({k: v for k, v in raw.items() if k != "drift"}, tmp_path).drift.least == 200
    raw["drift"] = {"window": 10, "min_images": 20, "limit": 1.5, "flags": ["ok"]}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path)
    said = dict(e.value.problems)
    assert "at most 1" in said["drift.limit"]
    assert "'unfamiliar' or 'quality'" in said["drift.flags[0]"]
    assert "min_images (20) is more than window (10)" in said["drift"]


# -- a station -------------------------------------------------------------------------------
class HealthInspector(FakeInspector):
    """Every frame measured: a bright one (mean above 128) unfamiliar, a dark one ok, a grey
    one (mean 100..128) breaking a quality limit."""

    def judge_probs(self, frame, probs, features=None):
        result = super().judge_probs(frame, probs, features)
        mean = float(np.mean(frame))
        problems = ()
        if 100 <= mean <= 128:
            problems = (QualityProblem("focus", 0.05, "min", 0.15, "out of focus"),)
        result.health = InputHealth(None, problems, 0.1 if mean > 128 else 0.9, mean > 128)
        return result


def _images(inbox: Path, prefix: str, n: int, grey: int) -> None:
    rng = np.random.default_rng(sum(map(ord, prefix)))
    for i in range(n):
        img = (grey + rng.integers(0, 4, (32, 48))).astype(np.uint8)  # distinct, mean ~grey
        ok, buf = cv2.imencode(".png", img)
        assert ok
        tmp = inbox / f".{prefix}{i:03d}.tmp"
        tmp.write_bytes(buf.tobytes())
        tmp.rename(inbox / f"{prefix}{i:03d}.png")


def _drift_station(tmp_path: Path, mqtt: dict | None = None) -> tuple[Station, MemorySink]:
    cfg = folder_config(tmp_path, until_empty=False)
    cfg.drift = DriftOptions(window=10, limit=0.3)
    if mqtt is not None:
        raw = {
            "station": {"name": "drift", "plugin": "x", "recipe": "x", "until_empty": False},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
            "drift": {"window": 10, "limit": 0.3},
            "mqtt": mqtt,
        }
        cfg = parse_config(raw, tmp_path)
    sink = MemorySink()
    return Station(cfg, inspector=HealthInspector(), sinks={"mem": sink}), sink


def _burst(tmp_path: Path, station: Station, sink: MemorySink, logs) -> None:
    """10 ok images, then 5 unfamiliar and 1 of poor quality: one alert; then 12 ok images:
    one recovery."""
    inbox = tmp_path / "inbox"
    _images(inbox, "a-ok", 10, 20)
    wait_for(lambda: len(sink.items) >= 10, what="10 ok images")
    assert logs.of("input_drift") == []
    _images(inbox, "b-bright", 5, 200)
    _images(inbox, "c-blur", 1, 110)
    wait_for(lambda: len(sink.items) >= 16, what="the burst")
    wait_for(lambda: logs.of("input_drift"), what="the drift alert")
    needs = station.status.snapshot()["needs_action"]
    assert [n["key"] for n in needs] == [DRIFT_KEY]
    assert "input drift" in needs[0]["reason"] and "of the last 10" in needs[0]["reason"]
    station.status.write(force=True)  # what `inspect station status` shows
    shown = format_status(read_status(tmp_path / "state"))
    assert "NEEDS ACTION" in shown and "input drift:" in shown
    _images(inbox, "d-ok", 12, 30)
    wait_for(lambda: len(sink.items) >= 28, what="the ok images after the burst")
    wait_for(lambda: logs.of("input_drift_recovered"), what="the recovery")


def test_station_alerts_once_on_a_burst_and_recovers(tmp_path):
    station, sink = _drift_station(tmp_path)
    with running(station) as logs:
        _burst(tmp_path, station, sink, logs)
        assert station.status.snapshot()["needs_action"] == []
    flags = [r.health.flag for r in sink.items if r.health is not None]
    assert flags.count("unfamiliar") == 5 and flags.count("quality") == 1
    alerts = logs.of("input_drift")
    assert len(alerts) == 1 and len(logs.of("input_drift_recovered")) == 1
    rec = next(r for r in logs.records if getattr(r, "event", None) == "input_drift")
    assert rec.levelname == "WARNING"
    f = rec.fields
    assert (f["window"], f["limit"]) == (10, 0.3) and f["share"] > 0.3
    assert f["unfamiliar"] + f["quality"] == round(f["share"] * 10)


def _broker_up() -> bool:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _broker_up(), reason="no MQTT broker on 127.0.0.1:1883")
def test_drift_events_are_published_on_the_event_topic(tmp_path):
    mqtt_client = pytest.importorskip("paho.mqtt.client")
    topic = f"test/{uuid.uuid4().hex}/events"
    got: queue.Queue = queue.Queue()
    ready = threading.Event()
    c = mqtt_client.Client(mqtt_client.CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex)
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, u, m: got.put(json.loads(m.payload))
    c.connect(HOST, PORT)
    c.loop_start()
    try:
        assert ready.wait(10)
        station, sink = _drift_station(tmp_path, {"host": HOST, "port": PORT, "event_topic": topic})
        with running(station) as logs:
            wait_for(lambda: station.mqtt is not None and station.mqtt.connected)
            _burst(tmp_path, station, sink, logs)
            first, second = got.get(timeout=30), got.get(timeout=30)
        assert [first["event"], second["event"]] == ["input_drift", "input_drift_recovered"]
        assert first["station"] == "drift" and first["window"] == 10 and first["limit"] == 0.3
        assert first["share"] > 0.3 and first["unfamiliar"] >= 1
        assert second["share"] < 0.24
        assert got.empty()
    finally:
        c.loop_stop()
        c.disconnect()


def test_an_event_topic_matching_the_trigger_topic_is_refused(tmp_path):
    (tmp_path / "inbox").mkdir()
    raw = {
        "station": {"name": "s", "plugin": "x", "recipe": "x"},
        "source": {"type": "folder", "path": "inbox"},
        "mqtt": {"trigger_topic": "line/#", "event_topic": "line/events"},
    }
    with pytest.raises(ConfigError, match="mqtt.event_topic"):
        parse_config(raw, tmp_path)
