"""Backtest throughput: the same recorded images re-judged four ways, in one run.

    python bench/backtest.py [--images 360] [--data ../shared/datasets/neu-steel] [--json]

1. a plain loop in this process (one Inspector, one ONNX Runtime thread);
2. a LocalCluster with 1 worker process (one thread);
3. a LocalCluster with 2 worker processes;
4. `dask scheduler` and two `dask worker` processes started as separate programs (as on a
   cluster of line PCs), reached by address.

The history is built first: ``--images`` steel images (from the val split of ``--data``)
inspected by the steel recipe and recorded in a temporary SQLite database, archived under a
temporary folder. Each Dask row runs the whole ``inspect backtest`` path (database stream,
chunks, worker plugin, tally) with the shipped model as candidate, and checks that no verdict
changed. Prints images/s per row and its ratio to the plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEEL = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"


def build_history(tmp: Path, data: Path, n: int) -> tuple[str, list[Path]]:
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.inspector import Inspector
    from inspect_db import Recorder

    src = sorted((data / "val" / "images").glob("*"))
    if not src:
        src = sorted((ROOT / "plugins/inspect_plugins/industrial/samples").glob("steel_*.png"))
    archive = tmp / "archive"
    archive.mkdir()
    paths = []
    n = min(n, len(src))  # a station records one content once: every image must differ
    for i in range(n):
        p = archive / f"{i:06d}{src[i % len(src)].suffix}"
        shutil.copyfile(src[i % len(src)], p)
        paths.append(p)
    url = f"sqlite:///{tmp / 'history.db'}"
    inspector = Inspector(find_recipe("industrial", "steel"), threads=1)
    with Recorder(url) as rec:
        for p in paths:
            rec.record(inspector.inspect_file(p, station="line1", plugin="industrial")[0])
    return url, paths


def plain_loop(paths: list[Path]) -> float:
    from inspect_batch.worker import read_image
    from inspect_core.plugin_api.resolve import find_recipe
    from inspect_core.runtime.inspector import Inspector

    inspector = Inspector(find_recipe("industrial", "steel"), threads=1)
    t = time.perf_counter()
    for p in paths:
        inspector.inspect_image(read_image(str(p)))
    return len(paths) / (time.perf_counter() - t)


def dask_rate(url: str, n: int, scheduler: str | None, workers: int) -> float:
    from inspect_batch.run import run_backtest

    t = time.perf_counter()
    s = run_backtest(
        plugin="industrial",
        recipe="steel",
        candidate=STEEL,
        sha256="",
        window=(None, None, None),
        url=url,
        scheduler=scheduler,
        workers=workers,
        chunk=50,
        path_maps=[],
        html=None,
        quiet=True,
    )
    dt = time.perf_counter() - t
    assert s["images"] == n and s["changed"] == 0, s
    return n / dt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def separate_processes(url: str, n: int) -> float:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"tcp://127.0.0.1:{port}"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        return dask_rate(url, n, address, 0)
    finally:
        for p in [*workers, sched]:
            p.terminate()
        for p in [*workers, sched]:
            p.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=360, help="at most the val split's size")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/neu-steel")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, paths = build_history(Path(tmp), args.data, args.images)
        rows = [("plain loop, 1 process", plain_loop(paths))]
        rows.append(("LocalCluster, 1 worker", dask_rate(url, len(paths), None, 1)))
        rows.append(("LocalCluster, 2 workers", dask_rate(url, len(paths), None, 2)))
        rows.append(
            ("scheduler + 2 workers, separate processes", separate_processes(url, len(paths)))
        )
    base = rows[0][1]
    for name, rate in rows:
        row = {"setup": name, "images_per_s": round(rate, 1), "vs_plain": round(rate / base, 2)}
        print(json.dumps(row) if args.json else f"{name:45s} {rate:7.1f} img/s  {rate / base:.2f}x")


if __name__ == "__main__":
    main()
