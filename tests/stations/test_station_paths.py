"""System folders are refused as inbox, archive, quarantine or state folder, and so is an inbox
that already holds a folder's worth of non-images: `station check` used to accept
source.path = "/etc" (and archive = "/etc"), and a station then moved /etc's files into
quarantine. Nothing here runs a station on such a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspect_stations.config.paths import FOREIGN_MIN, system_folder
from inspect_stations.config.station import ConfigError, parse_config
from inspect_stations.testing import write_config, write_images


@pytest.fixture
def cli():
    from inspect_core.cli import cli as root
    from inspect_core.plugin_api.manager import load_cli_plugins

    if "station" not in root.commands:
        load_cli_plugins(root)
    return root


def _raw(tmp_path: Path, inbox: str | Path = "inbox", **tables) -> dict:
    raw = {
        "station": {"name": "p", "plugin": "x", "recipe": "x", "state_dir": "state"},
        "source": {"type": "folder", "path": str(inbox)},
        "archive": {"path": "archive", "quarantine": "quarantine"},
    }
    for name, values in tables.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw


def _problems(raw: dict, base: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(raw, base)
    return dict(e.value.problems)


@pytest.mark.parametrize(
    "key, table, value",
    [
        ("source.path", "source", {"path": "/etc"}),
        ("source.path", "source", {"path": "/"}),
        ("source.path", "source", {"path": "/usr/share"}),
        ("source.path", "source", {"path": "/var"}),
        ("source.path", "source", {"path": "~"}),
        ("source.path", "source", {"path": "/proc/self"}),
        ("archive.path", "archive", {"path": "/etc"}),
        ("archive.quarantine", "archive", {"quarantine": "/boot"}),
        ("station.state_dir", "station", {"state_dir": "/"}),
        ("station.state_dir", "station", {"state_dir": "/tmp"}),
    ],
)
def test_system_folders_are_refused(tmp_path, key, table, value):
    raw = _raw(tmp_path)
    raw[table].update(value)
    p = _problems(raw, tmp_path)
    assert key in p and "give it a folder of its own" in p[key], p


def test_folders_inside_shared_ones_are_fine(tmp_path):
    assert system_folder("/var/lib/inspect/line1/inbox") is None
    assert system_folder(Path.home() / "line1" / "inbox") is None
    assert system_folder("/srv/inspect/inbox") is None and system_folder("/dev/shm/inbox") is None
    assert system_folder(tmp_path) is None
    assert "home folder" in system_folder(Path.home())
    assert "/usr" in system_folder("/bin")  # /bin -> /usr/bin on merged-/usr systems, or /bin
    cfg = parse_config(_raw(tmp_path, "/var/lib/inspect-test/inbox"), tmp_path)
    assert str(cfg.folder.path) == "/var/lib/inspect-test/inbox"


def test_a_symlink_to_a_system_folder_is_refused(tmp_path):
    (tmp_path / "inbox").symlink_to("/etc")
    p = _problems(_raw(tmp_path), tmp_path)
    assert "(which is /etc)" in p["source.path"]


def test_an_inbox_full_of_other_files_is_refused_a_real_one_is_not(tmp_path):
    inbox = tmp_path / "inbox"
    write_images(inbox, 2, seed=91)
    for i in range(FOREIGN_MIN):
        (inbox / f"notes{i}.txt").write_text("x")
    (inbox / "sub").mkdir()
    (inbox / ".hidden.conf").write_text("x")
    p = _problems(_raw(tmp_path), tmp_path)
    assert f"holds {FOREIGN_MIN} files that are not images" in p["source.path"]
    assert "notes0.txt" in p["source.path"] and "quarantine" in p["source.path"]
    leave = _raw(tmp_path, source={"after": "leave"})
    assert "as an ERROR" in _problems(leave, tmp_path)["source.path"]
    # a few stray files, or more images than others: an inbox (strays go to quarantine)
    write_images(inbox, FOREIGN_MIN, seed=92, start=2)
    parse_config(_raw(tmp_path), tmp_path)
    for f in list(inbox.glob("notes*.txt"))[2:]:
        f.unlink()
    for f in inbox.glob("img*.png"):
        f.unlink()
    parse_config(_raw(tmp_path), tmp_path)


def test_check_and_run_refuse_etc(tmp_path, cli):
    """Both commands stop at the configuration. (The plugin does not exist either, so even a
    version without this check would fail before it touched /etc.)"""
    toml = write_config(
        tmp_path / "station.toml",
        {
            "station": {
                "name": "etc",
                "plugin": "nosuch",
                "recipe": "nosuch",
                "state_dir": "state",
            },
            "source": {"type": "folder", "path": "/etc"},
            "archive": {"path": "/etc", "quarantine": "quarantine"},
        },
    )
    res = CliRunner().invoke(cli, ["station", "check", str(toml), "--json"])
    assert res.exit_code == 2
    keys: dict[str, str] = {}
    for p in json.loads(res.output)["problems"]:
        keys[p["key"]] = keys.get(p["key"], "") + p["message"]
    assert "belongs to the operating system" in keys["source.path"]
    assert "belongs to the operating system" in keys["archive.path"]
    before = sorted(os.listdir("/etc"))
    res = CliRunner().invoke(cli, ["station", "run", str(toml)])
    assert isinstance(res.exception, ConfigError)  # `inspect` prints it and exits 2
    assert "source.path: /etc is /etc, which belongs" in str(res.exception)
    assert sorted(os.listdir("/etc")) == before


@pytest.mark.parametrize(
    "path",
    [
        "~/.ssh",
        "~/.ssh/keys",
        "~/.gnupg",
        "~/.config",
        "~/.config/systemd/user",
        "~/.aws",
        "~/.kube",
        "~/.docker",
        "~/.cache",  # any hidden folder directly in a home folder
        "~/.mozilla",
        "/root/.ssh",
        "/var/spool/cron/crontabs",
        "/var/spool/mail",
    ],
)
def test_keys_settings_and_spool_folders_are_refused(tmp_path, monkeypatch, path):
    """`path = "~/.ssh"` passed `station check`, and `station run` moved authorized_keys and
    the private keys into quarantine."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA")
    monkeypatch.setenv("HOME", str(home))
    for key, table, value in (
        ("source.path", "source", {"path": path}),
        ("archive.path", "archive", {"path": path}),
        ("archive.quarantine", "archive", {"quarantine": path}),
        ("station.state_dir", "station", {"state_dir": path}),
    ):
        raw = _raw(tmp_path)
        raw[table].update(value)
        p = _problems(raw, tmp_path)
        assert key in p and "give it a folder of its own" in p[key], (key, p)
    assert (home / ".ssh" / "authorized_keys").is_file()


def test_folders_in_a_home_that_are_not_its_settings_are_fine(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for path in ("~/line1/inbox", "~/.local/share/inspect/inbox", "~/sshfiles", "~/ssh"):
        assert system_folder(os.path.expanduser(path)) is None, path
    assert "hidden folder" in system_folder(home / ".cache")
    assert ".ssh" in system_folder(home / ".ssh" / "x")
