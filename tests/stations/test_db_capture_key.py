"""Every triggered part gets its own record (issue 10, item 13).

Two MQTT-triggered parts whose frames were byte-identical used to collapse into one record (the
key was the image's sha256), the second part id surviving only in the log. Triggered captures
are now keyed by station and capture id (``Inspection.capture_id``, from the trigger); files
keep the content key. Revision 0003 adds the column and changes the unique keys; it is tested
on SQLite and PostgreSQL, upgrading a database that already holds records.
"""

from __future__ import annotations

import sqlalchemy as sa
from db_support import make_inspection, region
from test_station_deadletter import Logs, db_rows, frame, pending, run_station, station_config

from inspect_db.engine import make_engine
from inspect_db.migrate import head_revision, upgrade
from inspect_db.records.recorder import Recorder
from inspect_stations.pipeline.journal import decode, encode


def test_identical_frames_of_two_triggers_are_two_records(db_url):
    first, second = make_inspection(1), make_inspection(1)
    first.capture_id, second.capture_id = "T1@1.000000#3", "T2@1.250000#3"
    second.part_id = "P2"
    with Recorder(db_url) as rec:
        assert rec.record(first) and rec.record(second)
        assert rec.record(second) is False  # a replay of the same capture: still one
        assert rec.record(make_inspection(1)) is True  # the same image as a file: content key
        assert rec.record(make_inspection(1)) is False
        assert rec.has("line-1", first.image_sha256)
        assert rec.has("line-1", first.image_sha256, capture_id="T2@1.250000#3")
        assert not rec.has("line-1", first.image_sha256, capture_id="T9@1.0#1")
        assert not rec.has("line-2", first.image_sha256, capture_id="T1@1.000000#3")
    assert db_rows(db_url, "part_id, capture_id") == [
        ("P1", "T1@1.000000#3"),
        ("P2", "T2@1.250000#3"),
        ("P1", None),
    ]


def test_capture_id_survives_the_journal():
    insp = make_inspection(4)
    insp.capture_id = "A-7@1714640103.120000#12"
    assert decode(encode(insp)).capture_id == insp.capture_id
    old = encode(make_inspection(5)).replace(',"capture_id":null', "")  # an older journal row
    assert '"capture_id"' not in old and decode(old).capture_id is None


def test_a_station_records_each_triggered_part_even_when_the_frames_are_identical(db_url, tmp_path):
    _, cfg = station_config(tmp_path, db_url)
    items = [
        frame(90, rid="T1", part_id="P1", frame_no=5),
        frame(90, rid="T2", part_id="P2", frame_no=5),  # the camera delivered the same pixels
        frame(90, rid="T2", part_id="P3", frame_no=6),  # a PLC reusing a trigger id
        frame(90, frame_no=7),  # an interval capture of a frozen stream: not a new part
        frame(90, frame_no=8),
    ]
    with Logs() as logs:
        run_station(cfg, items)
    rows = db_rows(db_url, "part_id, capture_id, image_sha256")
    assert [r[0] for r in rows] == ["P1", "P2", "P3"] and len({r[2] for r in rows}) == 1
    assert all(r[1] and r[1].startswith(("T1@", "T2@")) for r in rows)
    assert len({r[1] for r in rows}) == 3 and pending(tmp_path) == 0
    repeats = logs.of("frame_repeated")  # still said: the camera may be frozen
    assert len(repeats) == 4 and any("P3" in m for m in repeats)


def test_a_very_long_trigger_id_still_gives_a_distinct_bounded_key(db_url, tmp_path):
    _, cfg = station_config(tmp_path, db_url)
    long = "X" * 500
    run_station(cfg, [frame(1, rid=long + "1"), frame(1, rid=long + "2")])
    ids = [r[0] for r in db_rows(db_url, "capture_id")]
    assert len(ids) == 2 and ids[0] != ids[1] and all(len(i) <= 128 for i in ids)


def _fill_at_0002(engine) -> None:
    """Rows as inspect at revision 0002 wrote them: two inspections, three regions."""
    at = "2025-11-20 10:00:00"
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO station (name, plugin, recipe, config_hash, created_at) "
                "VALUES ('line-1', 'industrial', 'steel', '', :at)"
            ),
            {"at": at},
        )
        sid = c.execute(sa.text("SELECT id FROM station")).scalar_one()
        for i, n in ((1, 2), (2, 1)):
            c.execute(
                sa.text(
                    "INSERT INTO inspection (station_id, plugin, recipe, source, image_sha256, "
                    "width, height, inspected_at, inspected_hour, latency_ms, verdict, fired, "
                    "thresholds, part_id, n_regions, defect_area_px) VALUES (:s, 'industrial', "
                    "'steel', 'x.png', :sha, 8, 8, :at, 0, 1.0, 'FAIL', '[]', '{}', :p, :n, :n)"
                ),
                {"s": sid, "sha": f"{i:064x}", "at": at, "n": n, "p": f"P{i}"},
            )
            iid = c.execute(
                sa.text("SELECT id FROM inspection WHERE image_sha256 = :sha"), {"sha": f"{i:064x}"}
            ).scalar_one()
            for _ in range(n):
                c.execute(
                    sa.text(
                        "INSERT INTO region (inspection_id, station_id, inspected_at, verdict, "
                        "plugin, recipe, class_id, class_name, bbox_x, bbox_y, bbox_w, bbox_h, "
                        "area_px, centroid_x, centroid_y, max_prob, mean_prob, polygon) VALUES "
                        "(:i, :s, :at, 'FAIL', 'industrial', 'steel', 1, 'dent', 0, 0, 1, 1, 1, 0, "
                        "0, 0.9, 0.9, '[]')"
                    ),
                    {"i": iid, "s": sid, "at": at},
                )


def _count(engine, table: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_upgrade_from_0002_keeps_the_records_and_changes_the_key(db_url):
    engine = make_engine(db_url)
    assert upgrade(engine, "0002") == (None, "0002")
    _fill_at_0002(engine)
    assert upgrade(engine) == ("0002", head_revision())
    assert (_count(engine, "inspection"), _count(engine, "region")) == (2, 3)
    assert db_rows(db_url, "part_id, capture_id") == [("P1", None), ("P2", None)]
    with Recorder(engine=engine) as rec:
        again = make_inspection(1, station="line-1")  # an old record's image, as a file
        assert rec.record(again) is False
        again.capture_id = "T1@5.0#1"  # the same pixels under a trigger: a record of its own
        assert rec.record(again) is True and rec.record(again) is False
        assert rec.record(make_inspection(3, verdict="FAIL", regions=[region()]))
    assert (_count(engine, "inspection"), _count(engine, "region")) == (4, 4)
    engine.dispose()


def test_downgrade_to_0002_when_no_captures_share_an_image(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with Recorder(engine=engine) as rec:
        rec.record(make_inspection(1, regions=[region()]))
        capture = make_inspection(2)
        capture.capture_id = "T1@1.0#1"
        rec.record(capture)
    from alembic import command

    from inspect_db.migrate import alembic_config

    with engine.begin() as c:
        cfg = alembic_config()
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0002")
    assert (_count(engine, "inspection"), _count(engine, "region")) == (2, 1)
    engine.dispose()


def test_two_mqtt_triggers_on_a_frozen_camera_are_two_records(tmp_path):
    """End to end with the Mosquitto broker: the PLC triggers twice, the camera delivers the
    same pixels twice; both parts are recorded and answered as new results."""
    import json
    import queue
    import socket
    import threading
    import uuid

    import cv2
    import numpy as np
    import pytest

    from inspect_stations.config.station import parse_config
    from inspect_stations.pipeline.daemon import Station
    from inspect_stations.testing import FakeInspector, wait_for

    HOST, PORT = "127.0.0.1", 1883
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    mqtt = pytest.importorskip("paho.mqtt.client")
    w = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(4):
        w.write(np.full((48, 64, 3), 90, np.uint8))
    w.release()
    prefix = f"test/{uuid.uuid4().hex}"
    url = f"sqlite:///{tmp_path / 'records.db'}"
    cfg = parse_config(
        {
            "station": {
                "name": "frozen",
                "plugin": "tiny",
                "recipe": "tiny",
                "journal_retry_s": 0.1,
            },
            "source": {"type": "camera", "url": "clip.avi", "trigger": "mqtt"},
            "mqtt": {
                "host": HOST,
                "port": PORT,
                "trigger_topic": f"{prefix}/trigger",
                "result_topic": f"{prefix}/result",
            },
            "database": {"url": url},
        },
        tmp_path,
    )
    station = Station(cfg, inspector=FakeInspector())
    answers: queue.Queue = queue.Queue()
    subscribed = threading.Event()
    plc = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plc-{uuid.uuid4().hex}")
    plc.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{prefix}/result", qos=1)
    plc.on_subscribe = lambda *a: subscribed.set()
    plc.on_message = lambda c, u, m: answers.put(json.loads(m.payload))
    plc.connect(HOST, PORT)
    plc.loop_start()
    t = threading.Thread(target=lambda: setattr(t, "code", station.run(install_signals=False)))
    t.start()
    try:
        assert subscribed.wait(10), "could not subscribe"
        wait_for(
            lambda: station.mqtt is not None and station.mqtt.connected,
            timeout=30,
            what="the station to connect",
        )
        for i in (1, 2):
            plc.publish(
                f"{prefix}/trigger", json.dumps({"id": f"T{i}", "part_id": f"P{i}"}), qos=1
            ).wait_for_publish(10)
        results = [answers.get(timeout=30) for _ in range(2)]
        wait_for(lambda: station.journal.pending() == 0, what="the records written")
    finally:
        station.stop()
        t.join(30)
        plc.disconnect()
        plc.loop_stop()
    assert t.code == 0
    assert sorted(r["id"] for r in results) == ["T1", "T2"]
    assert not any(r.get("already_recorded") for r in results)
    assert len({r["image_sha256"] for r in results}) == 1  # the same pixels
    assert sorted(r[0] for r in db_rows(url, "part_id")) == ["P1", "P2"]
