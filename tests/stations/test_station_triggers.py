"""Triggers as the line sends them, and what the station must not do with them: act on a
retained message, run on its own results, take invisible characters into a part id."""

from __future__ import annotations

import json

import pytest

from inspect_stations.mqtt.trigger import TriggerError, parse_trigger


@pytest.mark.parametrize(
    "field, value, code",
    [
        ("part_id", "P-\u202e1234", "U+202E"),  # right-to-left override: shows as "P-4321"
        ("part_id", "P-77\u200b", "U+200B"),  # zero-width space: looks like "P-77"
        ("lot", "L\u2028INFO forged", "U+2028"),  # line separator
        ("lot", "L\u2029x", "U+2029"),  # paragraph separator
        ("id", "F-5\ufeff", "U+FEFF"),  # byte-order mark
        ("id", "A\u061c1", "U+061C"),  # Arabic letter mark (a bidi control)
        ("part_id", "P\ue000", "U+E000"),  # private use: no agreed meaning
        ("part_id", "P\u0085", "U+0085"),  # C1 control (next line)
    ],
)
def test_invisible_characters_in_a_trigger_field_are_refused_by_code_point(field, value, code):
    """ "P-77" and "P-77\\u200b" would be two parts that look the same in every report."""
    msg = {"id": "T-1", field: value} if field != "id" else {"id": value}
    with pytest.raises(TriggerError) as e:
        parse_trigger(json.dumps(msg).encode())
    text = str(e.value)
    assert f'field "{field}"' in text and code in text, text
    assert value not in text


def test_visible_text_of_any_script_is_taken():
    t = parse_trigger(
        json.dumps({"id": "Ä-1", "part_id": "Prüfteil 漢字", "lot": "لوط-5"}).encode()
    )
    assert t["part_id"] == "Prüfteil 漢字" and t["lot"] == "لوط-5"
    assert parse_trigger(json.dumps({"id": "A", "part_id": "\u00a0"}).encode())["part_id"] is None


# -- against a private broker ------------------------------------------------------------------
def _camera_station(tmp_path, broker_port: int, topic: str, rec, inspector=None):
    from test_station_camera import write_video

    from inspect_stations.config.station import parse_config
    from inspect_stations.logs import StationLog
    from inspect_stations.pipeline.daemon import Station
    from inspect_stations.testing import FakeInspector, MemorySink

    write_video(tmp_path / "clip.avi", frames=12)
    cfg = parse_config(
        {
            "station": {"name": "cam", "plugin": "x", "recipe": "x"},
            "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
            "mqtt": {
                "port": broker_port,
                "trigger_topic": f"{topic}/trigger",
                "result_topic": f"{topic}/result",
            },
            "database": {"enabled": False},
        },
        tmp_path,
    )
    sink = MemorySink()
    station = Station(
        cfg,
        inspector=inspector or FakeInspector(),
        sinks={"db": sink},
        log=StationLog("cam", rec.logger),
    )
    return station, sink


def _running(station):
    import threading

    from inspect_stations.testing import wait_for

    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    try:
        wait_for(
            lambda: station.mqtt is not None and station.mqtt.connected,
            timeout=30,
            what="the station to connect",
        )
    except BaseException:
        station.stop()
        t.join(30)
        raise
    return t


@pytest.fixture
def broker(tmp_path):
    from broker_kit import MOSQUITTO, Mosquitto

    pytest.importorskip("paho.mqtt.client")
    if not __import__("os").access(MOSQUITTO, __import__("os").X_OK):
        pytest.skip("mosquitto is not installed")
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_a_retained_trigger_is_logged_never_acted_on(tmp_path, broker):
    """One retained trigger and three restarts gave three records of the old part."""
    import uuid

    from broker_kit import Records, Subscriber

    topic = f"test/{uuid.uuid4().hex}"
    old = Subscriber(broker.port, f"{topic}/none")
    old.c.publish(f"{topic}/trigger", json.dumps({"id": "A-1", "part_id": "P-OLD"}), 1, True)
    old.close()
    results = Subscriber(broker.port, f"{topic}/result")
    for restart in range(2):
        rec = Records()
        station, sink = _camera_station(tmp_path, broker.port, topic, rec)
        t = _running(station)
        try:
            results.c.publish(f"{topic}/trigger", json.dumps({"id": f"N-{restart}"}), 1)
            answer = results.take(1)[0]
        finally:
            station.stop()
            t.join(30)
        assert answer["id"] == f"N-{restart}" and [i.part_id for i in sink.items] == [None]
        assert rec.events.count("retained_trigger") == 1
        text = rec.text("retained_trigger")
        assert f"{topic}/trigger" in text and "-r -n" in text
    results.close()


def test_a_message_on_the_result_topic_is_never_a_trigger():
    """`trigger_topic = "line/#"` with `result_topic = "line/result"` is refused by the
    configuration; the link itself ignores its own result topic too (one result used to be an
    endless capture loop)."""
    from broker_kit import Records

    from inspect_stations.config.mqtt import MqttOptions
    from inspect_stations.logs import StationLog
    from inspect_stations.mqtt.link import MqttLink

    got: list = []
    rec = Records()
    opt = MqttOptions(trigger_topic="line/#", result_topic="line/result")
    link = MqttLink(opt, "cam", StationLog("cam", rec.logger), got.append)
    msg = type("Msg", (), {"topic": "line/result", "payload": b'{"id": "A-1"}', "retain": False})
    link._on_message(None, None, msg())
    link._on_message(None, None, msg())
    assert got == [] and rec.events == ["trigger_loop"]
    msg.topic = "line/trigger"
    link._on_message(None, None, msg())
    assert [g["id"] for g in got] == ["A-1"] and isinstance(got[0]["received"], float)
