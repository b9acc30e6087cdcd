"""A triggered capture is the part the trigger announced, or an ERROR record: never a frame from
before a camera outage, never a later part's frame for a trigger that waited too long.

A fake live camera (``CameraSource._open`` replaced) stamps each frame with its number; the
camera can be unplugged and plugged back in."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

import inspect_stations.sources.camera as camera
import inspect_stations.sources.camera_triggers as camera_triggers
from inspect_stations.config.station import CameraOptions
from inspect_stations.sources.camera import CameraSource


class FakeCamera:
    """Frames every ``period`` seconds while ``up``; unplugged, reads and opens fail."""

    def __init__(self, period: float = 0.02):
        self.period = period
        self.up = threading.Event()
        self.up.set()
        self.n = 0

    def open(self, source: CameraSource):
        if not self.up.is_set():
            raise camera.CameraError("cannot open camera device 7: check that it is connected")
        return self

    def read(self):
        time.sleep(self.period)
        if not self.up.is_set():
            return False, None
        self.n += 1
        f = np.zeros((8, 8, 3), np.uint8)
        f[0, 0], f[0, 1] = self.n % 256, self.n // 256
        return True, f

    def release(self):
        pass


def _number(item) -> int:
    return int(item.frame[0, 0, 0]) + 256 * int(item.frame[0, 1, 0])


@pytest.fixture
def live(monkeypatch):
    """(fake camera, source, send(trigger) -> the trigger dict, next_item())"""
    from inspect_stations.logs import StationLog

    cam = FakeCamera()
    monkeypatch.setattr(CameraSource, "_open", lambda self: cam.open(self))
    ctx = type(
        "Ctx",
        (),
        {
            "stop": threading.Event(),
            "log": StationLog("cam"),
            "triggers": queue.Queue(),
            "until_empty": False,
        },
    )()
    opt = CameraOptions(device=7, trigger="mqtt", reconnect_s=0.05, trigger_max_age_ms=400)
    src = CameraSource(opt, ctx)
    items = src.items()

    def send(i: int, received: float | None = None) -> dict:
        trig = {"id": f"T{i}", "part_id": f"P{i}", "lot": None}
        trig["received"] = time.monotonic() if received is None else received
        ctx.triggers.put(trig)
        return trig

    yield cam, src, send, lambda: next(items)
    ctx.stop.set()
    src.close()


def test_a_trigger_gets_a_frame_captured_after_it_arrived(live):
    cam, src, send, next_item = live
    cam.period = 0.15  # a slow camera: the frame at hand is older than the trigger
    assert src.frame_since(0.0, time.monotonic() + 5) is not None
    time.sleep(0.05)
    before, trig = cam.n, send(1)
    item = next_item()
    assert item.refuse is None and item.part_id == "P1" and item.request_id == "T1"
    assert _number(item) > before  # not the frame that was there when the trigger came
    assert item.captured_at >= camera_triggers.arrival(trig) - 0.01


def test_during_a_camera_outage_triggers_get_no_stale_frame(live):
    """The camera was unplugged: every trigger used to get the last frame from before the
    outage, recorded as a real verdict under its own part id."""
    cam, src, send, next_item = live
    send(1)
    first = next_item()
    assert first.refuse is None
    cam.up.clear()  # cable pulled
    time.sleep(0.2)
    for i in (2, 3):
        send(i)
        item = next_item()
        assert item.frame is None and item.part_id == f"P{i}", _number(item)
        assert item.refuse.startswith("no frame from the camera camera:7")
        assert "trigger_max_age_ms" in item.refuse and item.captured_at is not None
    cam.up.set()  # plugged back in
    send(4)
    item = next_item()
    assert item.refuse is None and _number(item) > _number(first) and item.part_id == "P4"


def test_a_trigger_that_waited_too_long_expires(live):
    """Triggers waited in a queue of 1000 with no age limit, and took the frame of the moment
    they were dequeued: under a burst, the frame of a later part under this part's id."""
    cam, src, send, next_item = live
    send(1, received=time.monotonic() - 5.0)
    item = next_item()
    assert item.frame is None and item.part_id == "P1"
    assert item.refuse.startswith("trigger expired: it waited 5.")
    assert "source.trigger_max_age_ms = 400" in item.refuse
    send(2)
    assert next_item().refuse is None


def test_the_new_keys_are_checked(tmp_path):
    from inspect_stations.config.station import ConfigError, parse_config

    raw = {
        "station": {"name": "c", "plugin": "p", "recipe": "r"},
        "source": {"type": "camera", "device": 0, "trigger_max_age_ms": 0, "frame_max_age_ms": -1},
    }
    with pytest.raises(ConfigError) as e:
        parse_config(raw, tmp_path)
    keys = dict(e.value.problems)
    assert "source.trigger_max_age_ms" in keys and "source.frame_max_age_ms" in keys
    raw["source"].update(trigger_max_age_ms=250, frame_max_age_ms=40)
    c = parse_config(raw, tmp_path).camera
    assert (c.trigger_max_age_ms, c.frame_max_age_ms) == (250, 40)


def test_a_part_that_got_no_frame_is_recorded_as_error(tmp_path, monkeypatch):
    """Only an MQTT answer used to tell of it: the part was missing from the records and from
    the yield. Now it is an ERROR inspection under its part id, and the answer says why."""
    import os
    import uuid

    from broker_kit import MOSQUITTO, Mosquitto, Records, Subscriber

    from inspect_stations.config.station import parse_config
    from inspect_stations.logs import StationLog
    from inspect_stations.pipeline.daemon import Station
    from inspect_stations.testing import FakeInspector, MemorySink, wait_for

    pytest.importorskip("paho.mqtt.client")
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip("mosquitto is not installed")
    cam = FakeCamera()
    cam.up.clear()  # unplugged from the start
    monkeypatch.setattr(CameraSource, "_open", lambda self: cam.open(self))
    broker = Mosquitto(tmp_path / "broker").start()
    topic = f"test/{uuid.uuid4().hex}"
    cfg = parse_config(
        {
            "station": {"name": "cam", "plugin": "x", "recipe": "x"},
            "source": {
                "type": "camera",
                "device": 7,
                "trigger": "mqtt",
                "reconnect_s": 0.05,
                "trigger_max_age_ms": 300,
            },
            "mqtt": {
                "port": broker.port,
                "trigger_topic": f"{topic}/t",
                "result_topic": f"{topic}/r",
            },
            "database": {"enabled": False},
        },
        tmp_path,
    )
    sink, rec = MemorySink(), Records()
    station = Station(
        cfg, inspector=FakeInspector(), sinks={"db": sink}, log=StationLog("cam", rec.logger)
    )
    plc = Subscriber(broker.port, f"{topic}/r")
    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    try:
        wait_for(
            lambda: station.mqtt is not None and station.mqtt.connected, timeout=30, what="MQTT"
        )
        plc.c.publish(f"{topic}/t", '{"id": "T-1", "part_id": "P-1", "lot": "L-1"}', 1)
        answer = plc.take(1)[0]
        wait_for(lambda: sink.items, timeout=30, what="the record")
    finally:
        station.stop()
        t.join(30)
        plc.close()
        broker.stop()
    assert answer["id"] == "T-1" and answer["verdict"] == "ERROR" and answer["part_id"] == "P-1"
    assert answer["error"].startswith("no frame from the camera camera:7")
    [insp] = sink.items
    assert insp.verdict.decision.value == "ERROR" and (insp.part_id, insp.lot) == ("P-1", "L-1")
    assert insp.error == answer["error"] and insp.capture_id.startswith("T-1@")
    assert "no_frame" in rec.events
