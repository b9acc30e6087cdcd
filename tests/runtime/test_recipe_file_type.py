"""A recipe file is read only when it is a regular file of at most 1 MB (issue 10, second attack
round, repro 31): ``recipe_file = "/dev/zero"`` used to read until memory ran out, a FIFO hung
`inspect station check` for ever. Each is refused at once, naming the file and what it is."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspect_core.errors import InspectError
from inspect_core.runtime.recipe import Recipe


@pytest.fixture(autouse=True)
def _deadline():
    """A hang is a failure, not a stuck suite."""

    def expired(signum, frame):
        raise TimeoutError("reading the recipe file hung")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    return path


def too_big(tmp_path: Path) -> Path:
    path = tmp_path / "big.toml"
    path.write_text('name = "x"\nmodel = "m.onnx"\n' + "#" * (1 << 20) + "\n")
    return path


def binary(tmp_path: Path) -> Path:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe")
    return path


CASES = {
    "/dev/zero": (lambda tmp: Path("/dev/zero"), "character device"),
    "a FIFO": (fifo, "FIFO"),
    "a directory": (lambda tmp: tmp, "directory"),
    "over 1 MB": (too_big, "over the"),
    "not UTF-8": (binary, "TOML"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_recipe_file_that_is_no_small_regular_file_is_refused(tmp_path, case):
    make, words = CASES[case]
    path = make(tmp_path)
    with pytest.raises(InspectError) as e:
        Recipe.from_toml(path)
    assert str(path) in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("case", ["/dev/zero", "a FIFO"])
def test_station_check_refuses_such_a_recipe_file_at_once(tmp_path, case):
    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins

    if "station" not in cli.commands:
        load_cli_plugins(cli)
    path = CASES[case][0](tmp_path)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "s.toml").write_text(
        f'[station]\nname = "s"\nrecipe_file = "{path}"\n'
        '[source]\npath = "inbox"\n[database]\nenabled = false\n'
    )
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "s.toml"), "--json"])
    assert res.exit_code == 2, res.output
    problems = {p["key"]: p["message"] for p in json.loads(res.output)["problems"]}
    assert str(path) in problems["station.recipe_file"]
    assert CASES[case][1] in problems["station.recipe_file"]


def test_a_normal_recipe_file_still_reads(tmp_path):
    (tmp_path / "r.toml").write_text('name = "r"\nmodel = "m.onnx"\n')
    assert Recipe.from_toml(tmp_path / "r.toml").name == "r"
