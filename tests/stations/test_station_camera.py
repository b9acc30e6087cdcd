"""Camera source on a video file the test writes itself (MJPG .avi): interval and motion
triggers; each captured frame is saved into the archive and recorded like a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspect_core.runtime.recipe import Recipe
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.sources.camera import motion_fraction, small_gray
from inspect_stations.testing import MemorySink

FPS = 10


def write_video(path: Path, frames: int = 30, square: tuple[int, int] = (10, 20)) -> Path:
    """64x48 grey frames with a 2x2 marker that moves one pixel a frame (so every frame is a
    different image, but not "motion"), and a bright 20x20 square from frame square[0] to
    square[1] (two motion events)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    assert w.isOpened(), "OpenCV cannot write MJPG .avi here"
    for i in range(frames):
        f = np.full((48, 64, 3), 100, np.uint8)
        f[44:46, 2 * i % 60 : 2 * i % 60 + 2] = 255
        if square[0] <= i < square[1]:
            f[10:30, 20:40] = 240
        w.write(f)
    w.release()
    return path


def _station(tmp: Path, model: Path, **source) -> tuple[Station, MemorySink]:
    cfg = parse_config(
        {
            "station": {
                "name": "cam",
                "plugin": "tiny",
                "recipe": "tiny",
                "until_empty": True,
                "batch": 2,
            },
            "source": {"type": "camera", "url": str(tmp / "clip.avi"), **source},
        },
        tmp,
    )
    sink = MemorySink()
    recipe = Recipe(name="tiny", model=model, rules=[{"type": "min_area", "min": 1}])
    return Station(cfg, recipe=recipe, sinks={"db": sink}), sink


def _frame_no(insp) -> int:
    return int(Path(insp.source).stem.rsplit("-", 1)[1])


def test_interval_trigger_saves_and_records_every_capture(tmp_path, tiny_model):
    write_video(tmp_path / "clip.avi")
    station, sink = _station(tmp_path, tiny_model, trigger="interval", interval_ms=500)
    assert station.run(install_signals=False) == 0
    # 30 frames at 10 fps = 3 s of video: captures at 0, 0.5, ... 2.5 s
    assert [_frame_no(i) for i in sink.items] == [1, 6, 11, 16, 21, 26]
    for insp in sink.items:
        p = Path(insp.source)
        assert p.is_file() and p.parent.parent.parent == tmp_path / "archive"
        assert p.parent.parent.name == insp.verdict.decision.value
        assert hashlib.sha256(p.read_bytes()).hexdigest() == insp.image_sha256
        assert (insp.width, insp.height) == (64, 48) and insp.error is None
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img.shape[:2] == (48, 64)
    assert len({i.image_sha256 for i in sink.items}) == 6


def test_motion_trigger_captures_when_the_scene_changes(tmp_path, tiny_model):
    write_video(tmp_path / "clip.avi")
    station, sink = _station(
        tmp_path, tiny_model, trigger="motion", motion_threshold=0.05, motion_cooldown_ms=300
    )
    assert station.run(install_signals=False) == 0
    assert [_frame_no(i) for i in sink.items] == [11, 21]  # the square comes, the square goes


def test_max_frames_and_motion_measure():
    a = np.full((48, 64, 3), 100, np.uint8)
    b = a.copy()
    b[10:30, 20:40] = 240
    assert motion_fraction(None, small_gray(a), 25) == 0.0
    assert 0.1 < motion_fraction(small_gray(a), small_gray(b), 25) < 0.2


def test_max_frames_stops_the_source(tmp_path, tiny_model):
    write_video(tmp_path / "clip.avi")
    station, sink = _station(
        tmp_path, tiny_model, trigger="interval", interval_ms=100, max_frames=4
    )
    assert station.run(install_signals=False) == 0
    assert len(sink.items) == 4


def test_a_missing_video_file_is_a_clear_error(tmp_path, tiny_model):
    station, sink = _station(tmp_path, tiny_model, trigger="interval")
    assert station.run(install_signals=False) == 1
    assert "video file" in station.failed and "not found" in station.failed
    assert sink.items == []


def test_camera_config_needs_exactly_one_of_device_or_url(tmp_path):
    from inspect_stations.config.station import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "station": {"name": "c", "plugin": "p", "recipe": "r"},
                "source": {"type": "camera", "trigger": "sometimes"},
            },
            tmp_path,
        )
    keys = [k for k, _ in e.value.problems]
    assert "source.device" in keys and "source.trigger" in keys


def test_a_stream_is_read_by_the_grabber_which_reconnects(tmp_path, tiny_model):
    """A URL (here file://, as rtsp:// would be) is read continuously by the grabber thread;
    when the stream ends it reconnects, and captures take the newest frame."""
    write_video(tmp_path / "clip.avi", frames=8)
    station, sink = _station(
        tmp_path, tiny_model, trigger="interval", interval_ms=50, max_frames=3, reconnect_s=0.05
    )
    station.cfg.camera.url = station.source.opt.url = f"file://{tmp_path / 'clip.avi'}"
    station.source.is_file = False
    assert station.run(install_signals=False) == 0
    assert station.status.total == 3 and station.source.captured == 3
    saved = list((tmp_path / "archive").rglob("*.png"))
    assert len(saved) == 3  # every capture is kept; identical frames are one record (sha256)
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in saved}
    assert {i.image_sha256 for i in sink.items} == shas


def test_a_camera_that_stays_away_is_reported_once_a_minute_not_every_retry(tmp_path, monkeypatch):
    """Unplugged for the night: one error line, then one a minute, and a line when it is back
    (it used to be one line every reconnect_s: 1,800 an hour at the default)."""
    import logging
    import threading
    import time

    import inspect_stations.sources.camera as camera
    from inspect_stations.config.station import CameraOptions
    from inspect_stations.logs import StationLog

    records: list = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("test.camera")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    up = threading.Event()

    class Cap:
        def read(self):
            return True, np.zeros((4, 4, 3), np.uint8)

        def release(self):
            pass

    def fake_open(self):
        if not up.is_set():
            raise camera.CameraError("cannot open camera device 7: check that it is connected")
        return Cap()

    monkeypatch.setattr(camera.CameraSource, "_open", fake_open)
    ctx = type("Ctx", (), {"stop": threading.Event(), "log": StationLog("cam", log)})()
    src = camera.CameraSource(CameraOptions(device=7, reconnect_s=0.01), ctx)
    try:
        assert src.frame_since(0.0, time.monotonic() + 0.6) is None  # ~60 failed attempts
        events = [r.event for r in records]
        assert events == ["camera_unavailable"], events
        assert "device 7" in records[0].getMessage()
        up.set()
        assert src.frame_since(0.0, time.monotonic() + 5) is not None
        for _ in range(100):
            if "camera_back" in [r.event for r in records]:
                break
            time.sleep(0.02)
        assert [r.event for r in records] == ["camera_unavailable", "camera_back"]
    finally:
        src.close()
        log.removeHandler(handler)


def test_a_frozen_camera_is_reported_not_recorded_again(tmp_path, tiny_model):
    """The same pixels frame after frame (a stream stuck on one image): one record, and a
    warning per repeat instead of results that look like fresh inspections."""
    import logging

    w = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for _ in range(5):
        w.write(np.full((48, 64, 3), 90, np.uint8))
    w.release()
    records: list = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("inspect.station")
    level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        station, sink = _station(tmp_path, tiny_model, trigger="interval", interval_ms=100)
        assert station.run(install_signals=False) == 0
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert len(sink.items) == 1 and sink.duplicates == 0
    repeats = [r for r in records if getattr(r, "event", None) == "frame_repeated"]
    assert len(repeats) == 4 and "frozen" in repeats[0].getMessage()


def test_a_camera_password_is_never_shown(tmp_path, tiny_model):
    """rtsp://admin:pass@... used to appear in `camera_unavailable` lines and in the output of
    `station check`; it is masked like a database URL's password."""
    import logging
    import threading
    import time

    from click.testing import CliRunner

    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins
    from inspect_stations.config.station import CameraOptions
    from inspect_stations.logs import StationLog
    from inspect_stations.sources.camera import CameraSource
    from inspect_stations.testing import free_port, recipe_file
    from inspect_stations.urls import mask_url

    assert (
        mask_url("rtsp://admin:pa:ss@cam1.test:554/s?ch=1&password=x")
        == "rtsp://admin:***@cam1.test:554/s?ch=1&password=***"
    )
    assert mask_url("/videos/clip.avi") == "/videos/clip.avi"
    url = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/stream1"
    records: list = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("test.camera.mask")
    log.addHandler(handler)
    log.propagate = False
    ctx = type("Ctx", (), {"stop": threading.Event(), "log": StationLog("cam", log)})()
    src = CameraSource(CameraOptions(url=url, reconnect_s=0.05), ctx)
    try:
        assert src.frame_since(0.0, time.monotonic() + 1.0) is None
    finally:
        src.close()
        log.removeHandler(handler)
    assert [r.event for r in records][:1] == ["camera_unavailable"]
    shown = " ".join(r.getMessage() + str(r.fields) for r in records)
    assert "admin:***@127.0.0.1" in shown and "s3cret" not in shown

    recipe_file(tmp_path, tiny_model)
    (tmp_path / "cam.toml").write_text(
        f'[station]\nname = "cam"\nrecipe_file = "tiny.toml"\n'
        f'[source]\ntype = "camera"\nurl = "{url}"\n'
    )
    if "station" not in cli.commands:
        load_cli_plugins(cli)
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "cam.toml")])
    assert res.exit_code == 0 and "admin:***@" in res.output and "s3cret" not in res.output
