"""One inbox, one station: a second station on the same inbox (a container still running while
someone starts one by hand, each with its own state folder) would record every image twice.
It is refused, naming the process that holds the inbox; nothing is written into the inbox."""

from __future__ import annotations

import os

import pytest
from station_kit import folder_config

from inspect_core.errors import InspectError
from inspect_stations.pipeline.daemon import Station
from inspect_stations.testing import FakeInspector, MemorySink, write_images


def _station(tmp, state: str, name: str) -> Station:
    cfg = folder_config(tmp)
    cfg.state_dir, cfg.name = tmp / state, name
    return Station(cfg, inspector=FakeInspector(), sinks={"db": MemorySink()})


def test_a_second_station_on_the_same_inbox_is_refused(tmp_path):
    write_images(tmp_path / "inbox", 3, seed=95)
    first = _station(tmp_path, "state1", "line1")
    with pytest.raises(InspectError, match="already taking files from the inbox") as e:
        _station(tmp_path, "state2", "line2")
    assert f"pid {os.getpid()}" in str(e.value) and "source.path" in str(e.value)
    assert first.run(install_signals=False) == 0
    # once the first has stopped, the inbox is free again; and nothing was left in it
    assert not list((tmp_path / "inbox").iterdir())
    second = _station(tmp_path, "state2", "line2")
    assert second.run(install_signals=False) == 0


def test_the_refused_station_leaves_its_state_folder_free(tmp_path):
    first = _station(tmp_path, "state1", "line1")
    with pytest.raises(InspectError):
        _station(tmp_path, "state2", "line2")
    first.run(install_signals=False)
    _station(tmp_path, "state2", "line2").run(install_signals=False)  # state2 not held
