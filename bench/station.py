"""End-to-end speed of a folder station vs the model alone, same model, same image size.

    python bench/station.py [--sizes 200,512]
        [--model plugins/inspect_plugins/industrial/models/steel.onnx]
                            [--images 200] [--batches 1,4] [--workers 0] [--repeat 2]
                            [--json] [--write]

*Model only*: ONNX Runtime ``session.run`` on what the station runs per image, back to back:
one normalised image, then each flipped copy in a run of its own when the model's metadata
asks for test-time augmentation (the shipped steel model: ``tta = ["h", "v"]``, 3 runs per
image, as ``OnnxModel`` runs them); also one thread per core calling one single-thread
session side by side (what the station's model workers do, without the station).
*Station*: N PNG files already in the inbox -> read, check, decode, model, post-processing,
rules, journal, SQLite record (the ``sql`` sink), file moved to the archive; timed from the
start of ``Station.run`` until the last record is written and the station has stopped, with
``station.workers`` model workers (``--workers``; 0: the station's default, one per core, each
calling ONNX Runtime on one thread). With ONNX Runtime on one thread per call it runs in the
calling thread, so the CPU the station spends outside ``session.run`` is measured too (the
thread CPU of its ``session.run`` calls subtracted from the process's). The ratio station /
model is the share of the model's speed the whole station keeps (the aim is >= 0.9). Best of
``--repeat`` runs each, interleaved, so a background load hits both alike. ``--write`` also
prints the markdown table kept in ``bench/README.md``.

Without ``--model`` it uses the shipped steel model if present, else a random-weight U-Net
of the same architecture (width 32, stem stride 2, 4 classes, gray; needs torch to export).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from station_table import cpu_name, dist_version, markdown, text_table

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "plugins" / "inspect_plugins" / "industrial" / "models" / "steel.onnx"


def random_model(path: Path) -> Path:
    import torch

    from inspect_core.training.export import export_onnx
    from inspect_core.training.unet import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(in_channels=1, num_classes=4, width=32, depth=4, stem_stride=2)
    model = build_model(cfg).eval()
    meta = {
        "classes": ["background", "inclusion", "patches", "scratches"],
        "mean": 0.5,
        "std": 0.25,
        "channels": 1,
        "input_size": 192,
        "stride": model.stride,
        "ignore_index": 255,
    }
    sample = np.random.default_rng(0).normal(size=(1, 96, 128)).astype(np.float32)
    export_onnx(model, path, meta, [sample], dynamo=False)
    return path


def make_images(folder: Path, n: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(size)
    out = []
    for i in range(n):
        img = cv2.GaussianBlur(
            rng.normal(128, 30, (size, size)).clip(0, 255).astype(np.uint8), (5, 5), 0
        )
        x, y = rng.integers(0, size - 20, 2)
        img[y : y + 12, x : x + 20] = 230  # a defect-like blob
        p = folder / f"b{i:05d}.png"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


def model_inputs(model_path: Path, size: int, threads: int):
    """The model and the inputs of its ``session.run`` calls for one ``size`` px image, as
    ``OnnxModel._averaged`` runs them: the normalised image, then each test-time copy in a
    run of its own."""
    from inspect_core.runtime.onnx_model import TTA_TRANSFORMS, OnnxModel

    m = OnnxModel(model_path, threads=threads)
    x = m.prepare(np.random.default_rng(1).integers(0, 256, (size, size), dtype=np.uint8))[None]
    runs = [x] + [np.ascontiguousarray(TTA_TRANSFORMS[t][0](x)) for t in m.meta.tta]
    for _ in range(2):
        for r in runs:
            m.logits(r)
    return m, runs


def model_only(model_path: Path, size: int, n: int, threads: int) -> tuple[float, float]:
    """Images/s and CPU ms per image of ``session.run`` alone on one image's inputs."""
    m, runs = model_inputs(model_path, size, threads)
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        for r in runs:
            m.logits(r)
    return n / (time.perf_counter() - t), (time.process_time() - cpu) / n * 1000


def model_side_by_side(model_path: Path, size: int, n: int, calls: int) -> float:
    """Images/s of ``session.run`` alone, ``calls`` threads calling one single-thread session
    at once (as the station's model workers do), ``n`` images in all."""
    m, runs = model_inputs(model_path, size, 1)

    def body(k: int) -> None:
        for _ in range(k):
            for r in runs:
                m.logits(r)

    shares = [n // calls + (i < n % calls) for i in range(calls)]
    threads = [threading.Thread(target=body, args=(k,)) for k in shares]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return n / (time.perf_counter() - t)


class TimedSink:
    """The real sink, noting when each record has been written."""

    def __init__(self, sink):
        self.sink, self.times = sink, []

    def write(self, insp) -> None:
        self.sink.write(insp)
        self.times.append(time.perf_counter())

    def close(self) -> None:
        self.sink.close()


def station_rate(
    model_path: Path, images: list[Path], batch: int, work: Path, workers: int = 0
) -> dict:
    """Run a folder station over ``images`` with ``batch`` and ``workers``; its rates and CPU
    per image."""
    station, sink = _station(model_path, images, batch, work, workers)
    session = station.inspector.model.session  # None when an OpenVINO variant runs
    threads = session.get_session_options().intra_op_num_threads if session else None
    in_run = _time_runs(session) if session else None  # OpenVINO's calls are not wrapped
    t, cpu = time.perf_counter(), time.process_time()
    code = station.run(install_signals=False)
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    con = sqlite3.connect(work / "records.db")
    recorded = con.execute("SELECT count(*) FROM inspection").fetchone()[0]
    con.close()
    n = len(images)
    assert code == 0 and recorded == n, (code, recorded)
    steady = (n - 1) / (sink.times[-1] - sink.times[0])
    outside = (cpu - in_run[0]) / n * 1000 if threads == 1 and in_run else None
    return {
        "steady": steady,
        "wall": n / dt,
        "threads": threads,
        "workers": station.pool.workers,
        "cpu_ms": cpu / n * 1000,
        "outside_run_ms": outside,
    }


def _station(model_path: Path, images: list[Path], batch: int, work: Path, workers: int = 0):
    """A one-shot folder station in ``work`` with ``images`` in its inbox, recording into
    ``work/records.db`` through a :class:`TimedSink` (the schema is created before timing)."""
    from inspect_core.plugin_api.manager import get_registry
    from inspect_core.runtime.recipe import Recipe
    from inspect_stations.config.station import parse_config
    from inspect_stations.pipeline.daemon import Station

    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    for p in images:
        shutil.copy(p, inbox / p.name)
    db = f"sqlite:///{work / 'records.db'}"
    sink = TimedSink(get_registry().sinks["sql"]({"url": db}))
    cfg = parse_config(
        {
            "station": {
                "name": f"bench-b{batch}",
                "plugin": "bench",
                "recipe": "steel",
                "until_empty": True,
                "batch": batch,
                "workers": workers,
            },
            "source": {"type": "folder", "path": "inbox", "stable_s": 0.0, "poll_s": 0.01},
        },
        work,
    )
    recipe = Recipe(
        name="steel",
        model=model_path,
        postprocess=[{"type": "open", "size": 3}, {"type": "remove_small", "default_px": 15}],
        rules=[{"type": "min_area", "min": 40}, {"type": "review_band", "low": 0.5, "high": 0.7}],
    )
    return Station(cfg, recipe=recipe, sinks={"sql": sink}), sink


def _time_runs(session) -> list[float]:
    """Wrap ``session.run`` to add up the thread CPU time spent in it (all of it, on one
    thread per call; calls from several workers at once are each timed in their own thread);
    returns the one-element list it adds to."""
    in_run = [0.0]
    run = session.run
    lock = threading.Lock()

    def timed_run(*args, **kwargs):
        t0 = time.thread_time()
        try:
            return run(*args, **kwargs)
        finally:
            dt = time.thread_time() - t0
            with lock:
                in_run[0] += dt

    session.run = timed_run
    return in_run


def tta_and_variant(model_path: Path) -> tuple[tuple[str, ...], str]:
    """The model's test-time copies and the variant this machine runs of it."""
    from inspect_core.runtime.onnx_model import OnnxModel

    m = OnnxModel(model_path, threads=1)
    return m.meta.tta, m.variant_name


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=None)
    ap.add_argument("--sizes", default="200,512")
    ap.add_argument("--n", "--images", dest="n", type=int, default=200, help="images per run")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument(
        "--workers",
        default="0",
        help="station.workers to run, comma-separated (0: one per core, the default)",
    )
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--write",
        action="store_true",
        help="also print the results as the markdown table of bench/README.md",
    )
    args = ap.parse_args()

    from inspect_stations.logs import setup_logging

    setup_logging(False, logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-station-"))
    try:
        model, origin = _pick_model(args.model, tmp)
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows += _measure_size(model, size, args, tmp)
        tta, variant = tta_and_variant(model)
        info = {
            "model": origin,
            "variant": variant,
            "tta": list(tta),
            "images": args.n,
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
            "onnxruntime": dist_version("onnxruntime"),
            "python": platform.python_version(),
            "INSPECT_THREADS": os.environ.get("INSPECT_THREADS", "0 (all cores)"),
        }
        if args.json:
            print(json.dumps({"info": info, "rows": rows}, indent=2))
        else:
            print(text_table(info, rows))
        if args.write:
            print("\n" + markdown(info, rows))  # for bench/README.md, "Station throughput"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pick_model(given: str | None, tmp: Path) -> tuple[Path, str]:
    """The model to run and how the results name it: ``--model``, else the shipped steel
    model, else a random-weight network of its architecture."""
    if given:
        return Path(given), Path(given).name
    if SHIPPED.is_file():
        return SHIPPED, "shipped steel.onnx"
    return (
        random_model(tmp / "unet.onnx"),
        "random-weight U-Net, steel architecture (width 32, stem stride 2, 4 classes)",
    )


def _measure_size(model: Path, size: int, args: argparse.Namespace, tmp: Path) -> list[dict]:
    """The model alone and the station (one row per batch size and workers) on ``size`` px
    images, the best of ``--repeat`` interleaved runs."""
    if os.environ.get("INSPECT_THREADS"):  # OnnxModel then uses it whatever it is given
        thread_options = [int(os.environ["INSPECT_THREADS"])]
    else:  # ORT default (all cores), cores - 1
        thread_options = sorted({0, max(1, (os.cpu_count() or 1) - 1)})
    images = make_images(tmp / f"img{size}", args.n, size)
    model_best: dict[int, float] = {}
    model_cpu: dict[int, float] = {}
    best: dict[tuple[int, int], dict] = {}
    runs = [(int(b), int(wk)) for b in args.batches.split(",") for wk in args.workers.split(",")]
    side = 0.0  # one single-thread call per core, side by side
    for _ in range(args.repeat):
        for th in thread_options:
            rate, cpu = model_only(model, size, args.n, th)
            if rate > model_best.get(th, 0.0):
                model_best[th], model_cpu[th] = rate, cpu
        side = max(side, model_side_by_side(model, size, args.n, os.cpu_count() or 1))
        for b, wk in runs:
            r = station_rate(model, images, b, tmp / f"work{size}-{b}-{wk}", wk)
            if r["steady"] > best.get((b, wk), {}).get("steady", 0.0):
                best[b, wk] = r
    reference = max(model_best.values())
    return [
        {
            "size": size,
            "batch": b,
            "workers": r["workers"],
            "model_images_per_s": {
                ("all" if th == 0 else str(th)): round(v, 1) for th, v in model_best.items()
            },
            "station_threads": r["threads"],
            "station_images_per_s": round(r["steady"], 1),
            "station_wall_images_per_s": round(r["wall"], 1),
            "model_cpu_ms": round(model_cpu[max(model_best, key=model_best.get)], 1),
            "station_cpu_ms": round(r["cpu_ms"], 1),
            "station_outside_run_cpu_ms": None
            if r["outside_run_ms"] is None
            else round(r["outside_run_ms"], 1),
            "ratio": round(r["steady"] / reference, 3),
            "model_side_by_side_images_per_s": round(side, 1),
            "ratio_side_by_side": round(r["steady"] / side, 3),
        }
        for (b, _), r in best.items()
    ]


if __name__ == "__main__":
    main()
