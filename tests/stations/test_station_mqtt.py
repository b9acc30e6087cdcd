"""MQTT as a PLC uses it, against the Mosquitto broker on 127.0.0.1:1883: trigger -> capture ->
result with the same id; results of folder stations; the journaled mqtt sink; lazy import."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from test_station_camera import write_video

from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import parse_config
from inspect_stations.mqtt.trigger import parse_trigger
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, wait_for, write_images

HOST, PORT = "127.0.0.1", 1883


def _broker_up() -> bool:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
        return True
    except OSError:
        return False


needs_broker = pytest.mark.skipif(not _broker_up(), reason="no MQTT broker on 127.0.0.1:1883")


class Client:
    """A PLC stand-in: subscribes to a topic, collects JSON messages, publishes triggers."""

    def __init__(self, topic: str):
        mqtt = pytest.importorskip("paho.mqtt.client")
        self.messages: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plc-{uuid.uuid4().hex}")
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = lambda c, u, m: self.messages.put(json.loads(m.payload))
        self.c.connect(HOST, PORT)
        self.c.loop_start()
        assert self.ready.wait(10), "could not subscribe"

    def publish(self, topic: str, payload) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.c.publish(topic, data, qos=1).wait_for_publish(10)

    def take(self, n: int, timeout: float = 30) -> list[dict]:
        return [self.messages.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _run(station: Station) -> threading.Thread:
    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    return t


def test_parse_trigger():
    assert parse_trigger(b'{"id": 7, "part_id": 12, "lot": "L"}') == {
        "id": 7,
        "part_id": "12",
        "lot": "L",
    }
    assert parse_trigger(b'"A-1"')["id"] == "A-1"
    for bad, words in (
        (b"GO", "not JSON"),
        (b'{"part_id": 1}', 'no "id"'),
        (b"[1, 2]", "JSON object"),
    ):
        with pytest.raises(ValueError, match=words):
            parse_trigger(bad)


def _strict(raw: bytes) -> dict:
    """Parse as RFC 8259 JSON: NaN / Infinity (Python's json default) are refused."""

    def refuse(word):
        raise ValueError(f"not JSON: {word}")

    return json.loads(raw, parse_constant=refuse)


BAD_FIELDS = [  # (payload, the field the answer names, the id the answer may carry)
    ({"id": [1, 2]}, "id", None),
    ({"id": {"a": 1}}, "id", None),
    ({"id": True}, "id", None),
    (b'{"id": 1e308}', "id", None),
    (b'{"id": NaN}', "id", None),
    (b'{"id": -Infinity}', "id", None),
    ({"id": "x" * 200}, "id", None),
    ({"id": 2**70}, "id", None),
    ({"id": "A\u0000"}, "id", None),
    (b"[1, 2]", None, None),
    (b"true", None, None),
    (b"1.5", None, None),
    ({"id": "A", "part_id": "P" * 200}, "part_id", "A"),
    ({"id": 7, "part_id": "P\u0000X"}, "part_id", 7),
    ({"id": "A", "lot": "L\n1"}, "lot", "A"),
    (b'{"id": "A", "lot": "\\ud800"}', "lot", "A"),
    ({"id": "A", "part_id": [1]}, "part_id", "A"),
    ({"id": "A", "lot": 1.5}, "lot", "A"),
    ({"id": "A", "part_id": {"x": "y" * 1000}}, "part_id", "A"),
]


@pytest.mark.parametrize("payload, field, rid", BAD_FIELDS)
def test_a_bad_trigger_field_is_refused_naming_it_without_echoing_it(payload, field, rid):
    """Wrong types, NaN, control characters, lone surrogates and over-long values are refused
    at the edge (a 200-character or NUL part_id used to break the PostgreSQL insert; a NaN id
    made the result invalid JSON; a 1 MB id made 1 MB results)."""
    from inspect_stations.mqtt.trigger import TriggerError

    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(TriggerError) as e:
        parse_trigger(data)
    msg = str(e.value)
    if field:
        assert f'field "{field}"' in msg
    assert len(msg) < 200 and "xxxx" not in msg and "PPPP" not in msg and "yyyy" not in msg
    assert e.value.request_id == rid


def test_trigger_fields_are_normalised_and_bounded():
    from inspect_stations.mqtt.trigger import (
        MAX_FIELD_CHARS,
        MAX_ID_CHARS,
        MAX_TRIGGER_BYTES,
        TriggerError,
    )

    ok = parse_trigger(
        json.dumps(
            {"id": "A" * MAX_ID_CHARS, "part_id": "  P-1 ", "lot": "", "extra": [1]}
        ).encode()
    )
    assert ok == {"id": "A" * MAX_ID_CHARS, "part_id": "P-1", "lot": None}
    assert (
        parse_trigger(json.dumps({"id": -(2**63 - 1), "lot": "L" * MAX_FIELD_CHARS}).encode())[
            "lot"
        ]
        == "L" * MAX_FIELD_CHARS
    )
    assert parse_trigger('{"id": "Ä-1", "part_id": "Prüfteil"}'.encode())["part_id"] == "Prüfteil"
    assert MAX_FIELD_CHARS <= 128  # the part_id and lot columns in db/inspect_db/models.py
    with pytest.raises(TriggerError, match=f"at most {MAX_TRIGGER_BYTES}"):
        parse_trigger(json.dumps({"id": "x" * 1_000_000}).encode())
    with pytest.raises(TriggerError, match="not JSON"):
        parse_trigger(b"[" * 3000)
    with pytest.raises(TriggerError, match="not JSON"):
        parse_trigger(b"\xff\xfe")


def test_result_messages_are_strict_json():
    from inspect_stations.mqtt.trigger import encode

    raw = encode({"id": "A", "regions": [{"confidence": float("nan"), "area": float("inf")}]})
    assert _strict(raw.encode()) == {"id": "A", "regions": [{"confidence": None, "area": None}]}


@needs_broker
def test_bad_triggers_get_a_short_valid_error_answer_and_no_record(tmp_path, tiny_model):
    prefix = f"test/{uuid.uuid4().hex}"
    write_video(tmp_path / "clip.avi", frames=12)
    cfg = parse_config(
        {
            "station": {"name": "edge", "plugin": "tiny", "recipe": "tiny"},
            "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
            "mqtt": {
                "host": HOST,
                "port": PORT,
                "trigger_topic": f"{prefix}/trigger",
                "result_topic": f"{prefix}/result",
            },
        },
        tmp_path,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    station = Station(cfg, recipe=recipe, sinks={"db": sink})
    plc = Client(f"{prefix}/result")
    raw: list[bytes] = []
    plc.c.on_message = lambda c, u, m: (raw.append(m.payload), plc.messages.put(m.payload))
    t = _run(station)
    try:
        wait_for(
            lambda: station.mqtt is not None and station.mqtt.connected,
            timeout=30,
            what="the station to connect",
        )
        for bad in (
            b'{"id": NaN}',
            json.dumps({"id": "x" * 1_000_000}).encode(),
            json.dumps({"id": "B-1", "part_id": "P" * 200}).encode(),
            json.dumps({"id": "B-2", "part_id": "P\u0000X"}).encode(),
        ):
            plc.publish(f"{prefix}/trigger", bad)
        plc.publish(f"{prefix}/trigger", {"id": "B-3", "part_id": "P3"})
        answers = [_strict(m) for m in plc.take(5)]
    finally:
        station.stop()
        t.join(30)
        plc.close()
    assert t.code == 0 and all(len(m) < 1000 for m in raw)
    errors = [a for a in answers if a["verdict"] == "ERROR"]
    assert [a["id"] for a in errors] == [None, None, "B-1", "B-2"]
    assert '"part_id"' in errors[2]["error"] and "U+0000" in errors[3]["error"]
    assert [i.part_id for i in sink.items] == ["P3"]


@needs_broker
def test_trigger_captures_inspects_and_answers_with_the_same_id(tmp_path, tiny_model):
    prefix = f"test/{uuid.uuid4().hex}"
    write_video(tmp_path / "clip.avi", frames=12)
    cfg = parse_config(
        {
            "station": {"name": "plc-cam", "plugin": "tiny", "recipe": "tiny"},
            "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
            "mqtt": {
                "host": HOST,
                "port": PORT,
                "trigger_topic": f"{prefix}/trigger",
                "result_topic": f"{prefix}/result",
            },
        },
        tmp_path,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=tiny_model, rules=[{"type": "min_area", "min": 1}])
    station = Station(cfg, recipe=recipe, sinks={"db": sink})
    plc = Client(f"{prefix}/result")
    t = _run(station)
    try:
        wait_for(
            lambda: station.mqtt is not None and station.mqtt.connected,
            timeout=30,
            what="the station to connect",
        )
        for i in range(3):
            plc.publish(f"{prefix}/trigger", {"id": f"A-{i}", "part_id": f"P{i}", "lot": "L7"})
        results = plc.take(3)
        plc.publish(f"{prefix}/trigger", b"GO!")
        plc.publish(f"{prefix}/trigger", {"part_id": "P9"})
        errors = plc.take(2)
    finally:
        station.stop()
        t.join(30)
        plc.close()
    assert t.code == 0
    assert sorted(r["id"] for r in results) == ["A-0", "A-1", "A-2"]
    for r in results:
        assert r["station"] == "plc-cam" and r["lot"] == "L7" and r["part_id"] == "P" + r["id"][-1]
        assert r["verdict"] in ("PASS", "REVIEW", "FAIL")
        assert isinstance(r["fired"], list) and isinstance(r["regions"], list)
        assert all("polygon" not in g and "bbox" in g for g in r["regions"])
        assert (r["verdict"] == "PASS") == (not r["fired"])
        assert Path(r["source"]).is_file()  # the frame is in the archive
        assert r["inspect_ms"] > 0 and r["queue_ms"] >= 0  # as recorded, apart
        assert r["inspect_ms"] + r["queue_ms"] == pytest.approx(r["latency_ms"], abs=0.11)
    assert [e["verdict"] for e in errors] == ["ERROR", "ERROR"]
    assert "not JSON" in errors[0]["error"] and 'no "id"' in errors[1]["error"]
    recorded = {i.part_id: i for i in sink.items}
    assert sorted(recorded) == ["P0", "P1", "P2"] and recorded["P1"].lot == "L7"


@needs_broker
def test_folder_station_publishes_every_result(tmp_path):
    prefix = f"test/{uuid.uuid4().hex}"
    (tmp_path / "inbox").mkdir()
    cfg = parse_config(
        {
            "station": {"name": "plc-folder", "plugin": "x", "recipe": "x"},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "mqtt": {"host": HOST, "port": PORT, "result_topic": f"{prefix}/result"},
            "database": {"enabled": False},
        },
        tmp_path,
    )
    plc = Client(f"{prefix}/result")
    station = Station(cfg, inspector=FakeInspector(fail_above=128), sinks={})
    t = _run(station)
    try:
        paths = write_images(tmp_path / "inbox", 3, seed=61)
        (tmp_path / "inbox" / "junk.png").write_bytes(b"junk")
        results = plc.take(4)
    finally:
        station.stop()
        t.join(30)
        plc.close()
    by_id = {r["id"]: r for r in results}
    assert set(by_id) == {p.name for p in paths} | {"junk.png"}
    assert by_id["junk.png"]["verdict"] == "ERROR" and "not an image" in by_id["junk.png"]["error"]


@needs_broker
def test_folder_results_carry_the_inbox_name_and_a_repeat_is_answered(tmp_path):
    """The id is the name the file had in the inbox, also when the archive already holds that
    name (the archived copy gets a suffix); a second file with the same content is not recorded
    again but still answered, marked already_recorded (the first record has the details)."""
    from inspect_stations.pipeline.archive import day

    prefix = f"test/{uuid.uuid4().hex}"
    (tmp_path / "inbox").mkdir()
    taken = tmp_path / "archive" / "PASS" / day() / "img00000.png"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"yesterday's part, same name")
    cfg = parse_config(
        {
            "station": {"name": "plc-names", "plugin": "x", "recipe": "x"},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "mqtt": {"host": HOST, "port": PORT, "result_topic": f"{prefix}/result"},
            "database": {"enabled": False},
        },
        tmp_path,
    )
    plc = Client(f"{prefix}/result")
    sink = MemorySink()
    station = Station(cfg, inspector=FakeInspector(), sinks={"db": sink})
    t = _run(station)
    try:
        (p,) = write_images(tmp_path / "inbox", 1, seed=71)
        (tmp_path / "inbox" / ".copy.tmp").write_bytes(p.read_bytes())
        (tmp_path / "inbox" / ".copy.tmp").rename(tmp_path / "inbox" / "copy.png")
        results = plc.take(2)
    finally:
        station.stop()
        t.join(30)
        plc.close()
    by_id = {r["id"]: r for r in results}
    assert set(by_id) == {"img00000.png", "copy.png"}
    assert [r.get("already_recorded", False) for r in results].count(True) == 1
    assert {r["verdict"] for r in results} == {"PASS"} and len(sink.items) == 1
    assert sink.items[0].source != str(taken)  # filed under another name, nothing replaced


@needs_broker
def test_mqtt_sink_goes_through_the_journal(tmp_path):
    prefix = f"test/{uuid.uuid4().hex}"
    (tmp_path / "inbox").mkdir()
    cfg = parse_config(
        {
            "station": {"name": "sink", "plugin": "x", "recipe": "x", "until_empty": True},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.05},
            "database": {"enabled": False},
            "sinks": [{"type": "mqtt", "host": HOST, "port": PORT, "topic": f"{prefix}/all"}],
        },
        tmp_path,
    )
    plc = Client(f"{prefix}/all")
    try:
        write_images(tmp_path / "inbox", 4, seed=62)
        assert Station(cfg, inspector=FakeInspector()).run(install_signals=False) == 0
        got = plc.take(4)
    finally:
        plc.close()
    assert sorted(m["id"] for m in got) == [f"img0000{i}.png" for i in range(4)]


def test_paho_is_imported_only_when_mqtt_is_used():
    code = (
        "import sys, inspect_stations.plugin, inspect_stations.commands, "
        "inspect_stations.pipeline.daemon, inspect_stations.sources.folder, "
        "inspect_stations.sources.camera, "
        "inspect_stations.config.check, inspect_stations.mqtt.sink, inspect_stations.demo; "
        "from inspect_core.plugin_api.manager import get_registry; get_registry(); "
        "assert not [m for m in sys.modules if m.startswith('paho')], 'paho imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_longest_id_fits_the_capture_key_column():
    """A triggered capture is recorded under "<id>@<time>#<frame>" (capture_id, String(128) in
    db/inspect_db/models.py): the longest id accepted must leave room for the rest."""
    from inspect_stations.mqtt.trigger import MAX_ID_CHARS

    key = f"{'x' * MAX_ID_CHARS}@{1e10 - 1:.6f}#{2**32}"
    assert len(key) <= 128
