"""Helpers for testing and benchmarking stations (used by tests/stations/ and bench/).

Nothing here is needed on the line. :class:`FakeInspector` stands in for a model when only the
plumbing is measured; :class:`MemorySink` / :class:`FlakySink` stand in for a database;
:class:`PostgresCluster` runs a throw-away PostgreSQL server from the installed binaries.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from inspect_core.runtime.inspector import InspectorBase, Result, Segmentation
from inspect_core.runtime.onnx_model import ModelMeta
from inspect_core.runtime.recipe import Recipe
from inspect_core.types import Decision, Inspection, Verdict

T = TypeVar("T")


def write_images(
    folder: Path,
    n: int,
    size: tuple[int, int] = (32, 48),
    seed: int = 0,
    prefix: str = "img",
    ext: str = ".png",
    start: int = 0,
) -> list[Path]:
    """``n`` distinct random gray images, each written to a temporary name and renamed into
    place (so a station never sees half a file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        img = rng.integers(0, 256, size, dtype=np.uint8)
        ok, buf = cv2.imencode(ext, img)
        assert ok
        p = folder / f"{prefix}{i:05d}{ext}"
        tmp = folder / f".{p.name}.tmp"
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, p)
        out.append(p)
    return out


def recipe_file(folder: Path, model: Path, name: str = "tiny") -> Path:
    """A recipe TOML for a bare model: any region of a non-background class fails."""
    p = Path(folder) / f"{name}.toml"
    p.write_text(
        f'name = "{name}"\nmodel = "{Path(model).resolve()}"\n'
        '[[rules]]\ntype = "min_area"\nmin = 1\n'
    )
    return p


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_config(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    """A station TOML from ``{"station": {...}, "source": {...}, ...}`` (flat tables only)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    Path(path).write_text("\n".join(lines))
    return Path(path)


# -- stand-ins -------------------------------------------------------------------------------
class FakeInspector(InspectorBase):
    """The inspector's steps without a model: every frame's probabilities are background, and
    ``judge`` decides PASS, or FAIL when the frame's mean grey level is above ``fail_above``.
    Costs nothing, so a test measures only the station around it."""

    def __init__(self, fail_above: float = 256.0):
        self.recipe = Recipe(name="fake", model=Path("fake.onnx"))
        self.classes = ["background", "defect"]
        # no tiling, no test-time copies: the work limit sees a frame once
        self.meta = ModelMeta(self.classes, 0.0, 1.0, 1, 1 << 30, stride=1)
        self.model_sha256 = "0" * 64
        self.fail_above = fail_above

    def probabilities(self, frame: np.ndarray) -> np.ndarray:
        return np.zeros((2, 1, 1), np.float32)

    def post_process(self, probs: np.ndarray) -> Segmentation:
        return Segmentation(np.zeros(probs.shape[1:], np.uint8), [], {})

    def judge(self, frame: np.ndarray, seg: Segmentation) -> Result:
        bad = float(np.mean(frame)) > self.fail_above
        labels = np.zeros(frame.shape[:2], np.uint8)  # all background, as an overlay wants it
        return Result(Verdict(Decision.FAIL if bad else Decision.PASS), labels, frame)


def _key(insp: Inspection) -> tuple[str, str, str | None]:
    return (insp.station, insp.image_sha256, insp.capture_id)


class MemorySink:
    """Keeps every inspection; idempotent on (station, sha256, capture id) like the ``sql``
    sink (a file's key is its content; a triggered capture's is its capture id), and like it
    a file's verdict replaces its ERROR."""

    def __init__(self) -> None:
        self.items: list[Inspection] = []
        self.keys: set[tuple[str, str, str | None]] = set()
        self.duplicates = 0
        self.lock = threading.Lock()
        self.closed = False

    def write(self, insp: Inspection) -> None:
        with self.lock:
            key = _key(insp)
            if insp.capture_id is None and insp.verdict.decision.value != "ERROR":
                self._drop_error(key)
                if insp.replaces:
                    self._drop_error((insp.station, insp.replaces, None))
            if key in self.keys:
                self.duplicates += 1
                return
            self.keys.add(key)
            self.items.append(insp)

    def _drop_error(self, key: tuple[str, str, str | None]) -> None:
        """Forget the ERROR kept under ``key`` (a verdict takes its place)."""
        for i, x in enumerate(self.items):
            if _key(x) == key and x.verdict.decision.value == "ERROR":
                del self.items[i]
                self.keys.discard(key)
                return

    def has(self, station: str, sha256: str, capture_id: str | None = None) -> bool:
        return (station, sha256, capture_id) in self.keys

    def close(self) -> None:
        self.closed = True


class FlakySink(MemorySink):
    """A MemorySink that raises ConnectionError while ``up`` is cleared (a database outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()
        self.up.set()
        self.failures = 0

    def write(self, insp: Inspection) -> None:
        if not self.up.is_set():
            self.failures += 1
            raise ConnectionError("database unreachable (test outage)")
        super().write(insp)


# -- PostgreSQL --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL server on a free port (run as user ``postgres`` when root)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="inspect-pg-")))
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin)")
        self.bin = bin_dir
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chmod(self.root, 0o755)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(
            cmd,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
        )

    def init(self) -> PostgresCluster:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=20"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(
    cond: Callable[[], T], timeout: float = 30.0, every: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``cond()`` until truthy (returns its value) or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class CapturedLogs:
    """Messages of the station logger by event (INFO and up), as a context manager::

    with CapturedLogs() as logs:
        station.run()
    assert logs.of("quarantined")
    """

    def __enter__(self) -> CapturedLogs:
        self.records: list[logging.LogRecord] = []
        self.handler = logging.Handler()
        # the list's append stands in for emit (a positional-only parameter, hence assignment)
        self.handler.emit = self.records.append  # type: ignore[method-assign, assignment]
        log = logging.getLogger("inspect.station")
        self.level = log.level
        log.setLevel(logging.INFO)
        log.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        log = logging.getLogger("inspect.station")
        log.removeHandler(self.handler)
        log.setLevel(self.level)

    def of(self, event: str) -> list[str]:
        return [r.getMessage() for r in self.records if getattr(r, "event", None) == event]
