"""A station follows the model registry: it starts on the active version, switches to a newly
promoted one between two images while it runs (no image lost or judged twice, every record
naming the model that judged it), goes back on a rollback, and keeps its model when the new
one cannot load or the registry does not answer."""

from __future__ import annotations

import shutil
import threading
import time

from conftest import make_tiny_model, write_card
from station_kit import StationLogs, running

from inspect_core.cards import sha256_file
from inspect_core.plugin_api.interfaces import ModelVersion
from inspect_core.runtime.model_file import edit_meta
from inspect_stations.config.station import parse_config
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import MemorySink, recipe_file, write_images


class Registry:
    """A version source whose answer the test changes; counts the questions."""

    def __init__(self, version=None):
        self.version, self.asked, self.fail = version, 0, False

    def active(self, plugin, recipe, station):
        self.asked += 1
        if self.fail:
            raise ConnectionError("database away")
        return self.version

    def close(self):
        pass


def _models(tmp):
    a = tmp / "a" / "tiny.onnx"
    b = tmp / "b" / "tiny.onnx"
    for path, seed in ((a, 0), (b, 1)):
        path.parent.mkdir()
        make_tiny_model(path, seed=seed)
        write_card(path)
    return a, b


def _config(tmp, until_empty=True, check_s=0.05):
    (tmp / "inbox").mkdir(exist_ok=True)
    return parse_config(
        {
            "station": {"name": "s1", "recipe_file": "tiny.toml", "until_empty": until_empty},
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.02},
            "model": {"check_s": check_s},
        },
        tmp,
    )


def _version(path, label):
    return ModelVersion(sha256_file(path), str(path), label)


def test_starts_on_the_active_version(tmp_path):
    a, b = _models(tmp_path)
    recipe_file(tmp_path, a)
    write_images(tmp_path / "inbox", 3)
    sink = MemorySink()
    reg = Registry(_version(b, "v2"))
    st = Station(_config(tmp_path), sinks={"mem": sink}, versions=reg)
    assert st.run(install_signals=False) == 0
    assert {i.model_sha256 for i in sink.items} == {sha256_file(b)} and len(sink.items) == 3
    # the inbox is done: the station's registry poller ends with it (inspect demo runs several)
    _wait(lambda: not any(t.name == "model_follow" for t in threading.enumerate()), 10)


def test_a_promote_while_running_switches_between_images_losing_none(tmp_path):
    a, b = _models(tmp_path)
    recipe_file(tmp_path, a)
    sink = MemorySink()
    reg = Registry(None)  # the recipe's own model (a) to begin with
    st = Station(_config(tmp_path, until_empty=False), sinks={"mem": sink}, versions=reg)
    with running(st) as logs:
        write_images(tmp_path / "inbox", 6, prefix="early")
        _wait(lambda: len(sink.items) >= 6)
        reg.version = _version(b, "v2")  # inspect model promote
        _wait(lambda: bool(logs.of("model_switched")))
        write_images(tmp_path / "inbox", 6, seed=1, prefix="late", start=6)
        _wait(lambda: len(sink.items) >= 12)
        reg.version = None  # a rollback to the recipe's model
        _wait(lambda: len(logs.of("model_switched")) == 2)
        write_images(tmp_path / "inbox", 2, seed=2, prefix="back", start=12)
        _wait(lambda: len(sink.items) >= 14)
    shas = {i.source.rsplit("/", 1)[-1][:4]: set() for i in sink.items}
    for i in sink.items:
        shas[i.source.rsplit("/", 1)[-1][:4]].add(i.model_sha256)
    assert len(sink.items) == 14 and sink.duplicates == 0  # none lost, none twice
    assert shas == {"earl": {sha256_file(a)}, "late": {sha256_file(b)}, "back": {sha256_file(a)}}
    assert "v2" in logs.of("model_switched")[0]


def test_a_version_that_cannot_load_or_a_registry_away_keeps_the_running_model(tmp_path):
    a, b = _models(tmp_path)
    recipe_file(tmp_path, a)
    broken = tmp_path / "broken.onnx"
    shutil.copy(b, broken)
    (tmp_path / "broken.json").write_text(
        '{"classes": ["background"], "sha256": "' + "0" * 64 + '"}'
    )
    write_images(tmp_path / "inbox", 2)
    sink = MemorySink()
    reg = Registry(_version(broken, "v3"))
    with StationLogs() as logs:
        st = Station(_config(tmp_path, check_s=0), sinks={"mem": sink}, versions=reg)
        assert st.run(install_signals=False) == 0
        failed = logs.of("model_switch_failed")
        assert len(failed) == 1 and "v3" in failed[0] and "keeping the model" in failed[0]
        assert {i.model_sha256 for i in sink.items} == {sha256_file(a)}
        reg.fail = True
        assert st.follower.check(lambda new: None) is False
        assert st.follower.check(lambda new: None) is False
        away = logs.of("model_registry_unavailable")
        assert len(away) == 1 and "database away" in away[0]  # said once per outage


def _wait(cond, timeout=90.0, what=lambda: ""):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out {what()}"
        time.sleep(0.02)


def test_asking_while_the_recipes_own_model_runs_loads_nothing_again(tmp_path):
    a, b = _models(tmp_path)
    recipe_file(tmp_path, a)
    write_images(tmp_path / "inbox", 1)
    reg = Registry(None)  # nothing promoted: the recipe's own file stays active
    st = Station(_config(tmp_path, check_s=0), sinks={"mem": MemorySink()}, versions=reg)
    assert st.run(install_signals=False) == 0
    builds = []
    real = st.follower.build
    st.follower.build = lambda recipe: builds.append(recipe) or real(recipe)
    for _ in range(3):
        assert st.follower.check(lambda new: None) is False
    assert builds == []  # the running model is the recipe's: no load per poll
    reg.version = _version(b, "v2")
    switched = []
    assert st.follower.check(switched.append) is True and len(builds) == 1
    assert switched[0].model_sha256 == sha256_file(b)


def test_a_version_that_would_not_load_is_tried_again_and_switched_to_once_fixed(tmp_path):
    a, b = _models(tmp_path)
    recipe_file(tmp_path, a)
    write_images(tmp_path / "inbox", 1)
    late = tmp_path / "late.onnx"  # its card not copied yet (a share still syncing)
    shutil.copy(b, late)
    reg = Registry(_version(late, "v2"))
    with StationLogs() as logs:
        st = Station(_config(tmp_path, check_s=0), sinks={"mem": MemorySink()}, versions=reg)
        assert st.run(install_signals=False) == 0
        switched = []
        assert st.follower.check(switched.append) is False  # within retry_s: not tried
        st.follower.retry_s = 0.0
        st.follower.failed = dict.fromkeys(st.follower.failed, 0.0)
        assert st.follower.check(switched.append) is False  # tried, still failing
        assert len(logs.of("model_switch_failed")) == 1  # said once, not per retry
        write_card(late)  # the card arrives
        assert st.follower.check(switched.append) is True
        assert switched[0].model_sha256 == sha256_file(b)
        assert "loads now" in logs.of("model_switch_loads")[0]


def test_after_a_switch_images_are_sized_for_the_model_that_runs(tmp_path):
    a, b = _models(tmp_path)
    edit_meta(b, lambda m: m.update(tta=["h", "v", "hv"]))  # v2 runs four copies per image
    write_card(b)
    recipe_file(tmp_path, a)
    cfg = _config(tmp_path, until_empty=False)
    limits = cfg.limits.model_copy(update={"max_work_mpx": 0.004})  # 32x48 once, not 4x
    cfg = cfg.model_copy(update={"limits": limits})
    sink, reg = MemorySink(), Registry(None)
    st = Station(cfg, sinks={"mem": sink}, versions=reg)
    with running(st) as logs:
        write_images(tmp_path / "inbox", 1, prefix="early")
        _wait(lambda: len(sink.items) >= 1)
        reg.version = _version(b, "v2")
        _wait(lambda: bool(logs.of("model_switched")))
        write_images(tmp_path / "inbox", 1, seed=1, prefix="late", start=1)
        _wait(lambda: len(sink.items) >= 2)
    early, late = sink.items
    assert early.verdict.decision.value != "ERROR"  # one copy of 32x48 fits the limit
    assert late.verdict.decision.value == "ERROR" and "4 copies" in late.error
