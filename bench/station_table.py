"""The tables `bench/station.py` prints and writes into bench/README.md (its rows are dicts of
the measured numbers, as `--json` prints them)."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _models(r: dict) -> str:
    return ", ".join(f"{v} ({k} thr)" for k, v in r["model_images_per_s"].items())


def _side(r: dict) -> str:
    return f"{r['model_side_by_side_images_per_s']} ({r['ratio_side_by_side']:.2f})"


def text_table(info: dict, rows: list[dict]) -> str:
    out = [
        f"model: {info['model']}, {info['variant']} "
        f"(TTA flips per image: {info['tta'] or 'none'}); "
        f"{info['images']} images; {info['cpu']}, {info['cores']} cores, "
        f"load {info['load_avg']}"
    ]
    out += [
        f"{r['size']:>5} px batch {r['batch']}, {r['workers']} worker(s): model only "
        f"{_models(r)}; station {r['station_images_per_s']} img/s steady "
        f"({r['station_wall_images_per_s']} wall, {r['station_threads']} ORT thr each); "
        f"station / best model = {r['ratio']}; model side by side {_side(r)}; CPU ms/image: "
        f"model {r['model_cpu_ms']}, station {r['station_cpu_ms']} "
        f"({_outside(r)} outside session.run)"
        for r in rows
    ]
    return "\n".join(out)


def _outside(r: dict) -> str:
    v = r["station_outside_run_cpu_ms"]
    return "n/a" if v is None else str(v)


def markdown(info: dict, rows: list[dict]) -> str:
    lines = [
        "## Station throughput (`bench/station.py`)",
        "",
        "End to end: PNG file in the inbox -> read, checked, decoded -> model -> post-processing "
        "and rules -> journal -> SQLite record (the `sql` sink) -> file moved to the archive. "
        "*Steady*: records written per second between the first and the last record; *wall*: "
        "images / the whole `Station.run` (start-up and final flush included). *Model only*: "
        "ONNX Runtime `session.run` on what the station runs per image (one normalised image of "
        "the same size, then each flipped copy in a run of its own when the model asks for "
        "test-time augmentation), back to back, with ONNX Runtime's default threads (all cores) "
        "and with all cores but one (or `INSPECT_THREADS`); the ratio is against the faster. "
        "*Side by side*: one thread per core calling one single-thread session at once, as the "
        "station's model workers do (in brackets: station / that). Best of interleaved runs.",
        "",
        f"Model: {info['model']}, variant {info['variant']}, "
        f"TTA flips per image: {', '.join(info['tta']) or 'none'}. "
        f"{info['images']} images per run. {info['cpu']}, "
        f"{info['cores']} cores, load average {info['load_avg']} at the end of the run; "
        f"onnxruntime {info['onnxruntime']}, Python {info['python']}, "
        f"INSPECT_THREADS={info['INSPECT_THREADS']}.",
        "",
        "| size (px) | batch | model workers | model only (img/s) | station steady (img/s) "
        "| station wall (img/s) | ORT threads per call | station / model | model side by side "
        "(img/s) | CPU ms per image: model, station (outside `session.run`) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['size']} | {r['batch']} | {r['workers']} | {_models(r)} | "
        f"{r['station_images_per_s']} | "
        f"{r['station_wall_images_per_s']} | {r['station_threads']} | {r['ratio']:.2f} | "
        f"{_side(r)} | "
        f"{r['model_cpu_ms']}, {r['station_cpu_ms']} ({_outside(r)}) |"
        for r in rows
    ]
    lines += [
        "",
        "Reproduce: `python bench/station.py --write` (add `--model PATH` for another model).",
    ]
    return "\n".join(lines) + "\n"
