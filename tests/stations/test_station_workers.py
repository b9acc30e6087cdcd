"""Model workers side by side (``station.workers``): records stay in the order the images came
however the workers finish, every image is recorded once; each record's latency is split into
the time spent on the image and its wait behind others (``inspect_ms`` + ``queue_ms``)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from station_kit import files_in

from inspect_stations.config.station import ConfigError, parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.pipeline.model_pool import ModelPool, model_config, pool_plan
from inspect_stations.testing import FakeInspector, MemorySink, write_images


def config(tmp, **station):
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {
                "name": "pool",
                "plugin": "x",
                "recipe": "x",
                "until_empty": True,
                **station,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
        },
        tmp,
    )


class SlowInspector(FakeInspector):
    """A model that takes ``first_s`` on the first image it runs and ``rest_s`` on the others,
    noting the order in which the reader took the images (``preprocess``, by mean grey
    level), the model finished them, and the recorder judged them."""

    def __init__(self, first_s: float, rest_s: float):
        super().__init__()
        self.first_s, self.rest_s = first_s, rest_s
        self.read: list[float] = []
        self.finished: list[float] = []
        self.judged: list[float] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self._calls = 0

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        self.read.append(float(image.mean()))
        return image

    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        with self._lock:
            first, self._calls = self._calls == 0, self._calls + 1
            self.threads.add(threading.current_thread().name)
        time.sleep(self.first_s if first else self.rest_s)
        with self._lock:
            self.finished.append(float(frame.mean()))
        return super().probabilities(frame)

    def judge(self, frame, seg):
        self.judged.append(float(frame.mean()))
        return super().judge(frame, seg)


def run(tmp, inspector, n: int, **station) -> MemorySink:
    write_images(tmp / "inbox", n, size=(24, 32))
    sink = MemorySink()
    st = Station(config(tmp, **station), inspector=inspector, sinks={"mem": sink})
    assert st.run(install_signals=False) == 0
    return sink


def test_several_workers_record_in_the_order_the_images_came(tmp_path):
    """The first image holds one worker while the others finish the next ones: they are held
    back and recorded after it, in the reader's order, each once, and filed."""
    insp = SlowInspector(first_s=0.5, rest_s=0.01)
    sink = run(tmp_path, insp, 12, workers=3)
    assert len(insp.threads) >= 2  # the workers did run side by side
    assert insp.finished != insp.read  # ... and finished out of order
    assert insp.judged == insp.read  # recorded in order all the same
    assert len(sink.items) == 12 and sink.duplicates == 0
    assert len({i.source for i in sink.items}) == 12
    assert files_in(tmp_path / "inbox") == []


def test_latency_is_split_into_inspection_and_queue_wait(tmp_path):
    """One worker, images arriving together: each later image waits behind the ones before it;
    the wait is recorded apart from the time spent on the image, through the journal, and the
    two add up to the latency."""
    insp = SlowInspector(first_s=0.2, rest_s=0.2)
    sink = run(tmp_path, insp, 4, workers=1, threads=1)
    items = sink.items  # in the order recorded, which is the order read
    for i in items:
        assert i.inspect_ms is not None and i.queue_ms is not None
        assert i.queue_ms >= 0 and i.inspect_ms >= 200  # the model's run is inspection time
        assert i.inspect_ms + i.queue_ms == pytest.approx(i.latency_ms, abs=1e-6)
    assert items[2].queue_ms > items[0].queue_ms  # behind two images' model runs
    assert items[2].latency_ms > items[2].inspect_ms


def test_the_pool_plan_per_setting(monkeypatch):
    monkeypatch.delenv("INSPECT_THREADS", raising=False)
    monkeypatch.setattr("inspect_stations.pipeline.model_pool.cores", lambda: 4)
    base = dict(name="s", plugin="p", recipe="r")
    from inspect_stations.builders import model_threads
    from inspect_stations.config.station import StationConfig

    assert pool_plan(StationConfig(**base)) == ModelPool(4, 1)  # one per core, one thread each
    one = pool_plan(StationConfig(**base, workers=1))
    assert one == ModelPool(1, model_threads(0))  # the plan of old: all cores but one
    assert pool_plan(StationConfig(**base, workers=2, threads=2)) == ModelPool(2, 2)
    monkeypatch.setenv("INSPECT_THREADS", "2")
    plan = pool_plan(StationConfig(**base))
    assert plan == ModelPool(4, 2)
    assert model_config(StationConfig(**base), plan).threads == 2


def test_workers_out_of_range_is_refused_with_its_key(tmp_path):
    with pytest.raises(ConfigError, match="station.workers"):
        config(tmp_path, workers=65)
    assert config(tmp_path, workers=2).workers == 2
