"""The MQTT broker away (a closed port, a broker stopped and restarted, another client taking
the station's client id) never stops the line: results are recorded as usual, their MQTT
messages wait in a bounded queue (the oldest dropped, and counted, when it is full) and go out,
in order, when the link is back. It used to kill the recorder thread: `inspect station run`
exited 1 with "Message publish failed: The client is not currently connected"."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from broker_kit import Mosquitto, Records, Subscriber, needs_mosquitto

from inspect_stations.config.mqtt import MqttOptions
from inspect_stations.config.station import parse_config
from inspect_stations.logs import StationLog
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, free_port, wait_for, write_images

pytest.importorskip("paho.mqtt.client")


def _link(opt: MqttOptions, rec: Records):
    from inspect_stations.mqtt.link import MqttLink

    return MqttLink(opt, "line1", StationLog("line1", rec.logger)).start()


def test_a_station_whose_broker_is_down_keeps_inspecting_and_recording(tmp_path):
    (tmp_path / "inbox").mkdir()
    cfg = parse_config(
        {
            "station": {"name": "nobroker", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "mqtt": {
                "host": "127.0.0.1",
                "port": free_port(),
                "result_topic": "line1/result",
                "max_queued": 3,
            },
            "database": {"enabled": False},
        },
        tmp_path,
    )
    rec = Records()
    sink = MemorySink()
    write_images(tmp_path / "inbox", 5, seed=81)
    station = Station(
        cfg, inspector=FakeInspector(), sinks={"db": sink}, log=StationLog("nobroker", rec.logger)
    )
    assert station.run(install_signals=False) == 0
    assert len(sink.items) == 5 and not list((tmp_path / "inbox").iterdir())
    st = station.mqtt.status()
    assert st["connected"] is False and st["needs_action"] is True
    assert st["queued"] == 3 and st["dropped"] == 2 and "not reachable" in st["last_error"]
    assert "keeps trying" in rec.text("mqtt_unavailable")
    assert "dropping the oldest" in rec.text("mqtt_dropped")
    assert "3 MQTT result message(s) not delivered" in rec.text("mqtt_undelivered")


@needs_mosquitto
def test_results_queued_while_the_broker_is_away_arrive_after_it_returns(tmp_path):
    """A private broker stopped and restarted on the same port: the messages published
    meanwhile wait (the oldest dropped beyond max_queued) and arrive in order afterwards."""
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    topic = f"test/{uuid.uuid4().hex}/result"
    sub = Subscriber(broker.port, topic, client_id=f"sub-{uuid.uuid4().hex}")
    rec = Records()
    link = _link(MqttOptions(port=broker.port, result_topic=topic, max_queued=4), rec)
    try:
        assert link.connected
        link.publish(topic, {"id": "before"})
        assert sub.take(1)[0]["id"] == "before"
        broker.stop()
        wait_for(lambda: not link.connected, timeout=10, what="the link to notice")
        for i in range(6):
            link.publish(topic, {"id": i})
        st = link.status()
        assert st["needs_action"] and st["queued"] == 4 and st["dropped"] == 2
        assert "reconnecting, results are queued" in rec.text("mqtt_lost")
        broker.start()
        got = [m["id"] for m in sub.take(4, timeout=30)]
        assert got == [2, 3, 4, 5]  # the oldest two were dropped, the rest in order
        wait_for(lambda: link.status()["queued"] == 0, timeout=10, what="the acknowledgements")
        assert not link.status()["needs_action"]
        assert "sending 4 queued result(s)" in rec.text("mqtt_connected")
        assert "2 older result(s) were dropped" in rec.text("mqtt_connected")
    finally:
        link.close()
        sub.close()
        broker.stop()


@needs_mosquitto
def test_another_client_taking_the_client_id_does_not_lose_results(tmp_path):
    """A second client connecting with the station's client id makes the broker close the
    station's connection; the station reconnects (taking it back) and sends what waited."""
    mqtt = pytest.importorskip("paho.mqtt.client")
    broker = Mosquitto(tmp_path / "broker").start()
    topic = f"test/{uuid.uuid4().hex}/result"
    cid = f"inspect-clash-{uuid.uuid4().hex[:8]}"
    sub = Subscriber(broker.port, topic)
    rec = Records()
    link = _link(MqttOptions(port=broker.port, result_topic=topic, client_id=cid), rec)
    intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    try:
        assert link.connected
        intruder.connect("127.0.0.1", broker.port)  # no loop thread: it does not fight back
        intruder.loop(0.5)
        wait_for(lambda: not link.connected, timeout=10, what="the broker to kick the station")
        for i in range(3):
            link.publish(topic, {"id": f"A-{i}"})
        assert [m["id"] for m in sub.take(3, timeout=30)] == ["A-0", "A-1", "A-2"]
        assert link.connected and "lost" in rec.text("mqtt_lost")
    finally:
        intruder.disconnect()
        link.close()
        sub.close()
        broker.stop()


def test_a_connection_closed_again_and_again_names_the_client_id():
    """Two stations configured with the same client_id kick each other off every few seconds:
    after three such drops the log says which client id clashes and what to do."""
    from inspect_stations.mqtt.link import MqttLink

    rec = Records()
    link = MqttLink(MqttOptions(client_id="line1"), "line1", StationLog("line1", rec.logger))
    for _ in range(3):
        link._on_connect(link.client, None, None, type("RC", (), {"is_failure": False})())
        link._on_disconnect(link.client, None, None, "session taken over")
    assert link.status()["needs_action"]
    msg = rec.text("mqtt_client_id_clash")
    assert "'line1'" in msg and "its own mqtt.client_id" in msg
    assert rec.events.count("mqtt_lost") == 1  # not a line per drop


def test_status_shows_needs_action_while_the_broker_is_away(tmp_path):
    """status.json carries the link's state; `inspect station status` shows NEEDS ACTION with
    the reason and the results waiting."""
    from inspect_core.errors import InspectError
    from inspect_stations.pipeline.status import format_status, read_status

    (tmp_path / "inbox").mkdir()
    cfg = parse_config(
        {
            "station": {"name": "st", "plugin": "x", "recipe": "x"},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "mqtt": {"port": free_port(), "result_topic": "line1/result"},
            "database": {"enabled": False},
        },
        tmp_path,
    )
    station = Station(
        cfg,
        inspector=FakeInspector(),
        sinks={"db": MemorySink()},
        log=StationLog("st", Records().logger),
    )
    t = threading.Thread(target=station.run, kwargs={"install_signals": False})
    t.start()
    try:
        write_images(tmp_path / "inbox", 2, seed=82)

        def queued() -> bool:
            try:
                m = read_status(cfg.state_dir).get("mqtt")
            except InspectError:  # not written yet
                return False
            return isinstance(m, dict) and m.get("queued") == 2

        wait_for(queued, timeout=20, what="status.json to show the queued results")
        d = read_status(cfg.state_dir)
    finally:
        station.stop()
        t.join(30)
    assert d["mqtt"]["needs_action"] is True and d["mqtt"]["connected"] is False
    text = format_status(json.loads(json.dumps(d)))
    assert "mqtt      NEEDS ACTION" in text and "not reachable" in text
    assert "2 result(s) queued" in text
