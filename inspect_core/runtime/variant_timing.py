"""Timing a model's variants against its fp32 file (training/variants.py): the model step on a
few of the gate's images at their own sizes (the speed-up that ranks the variants at run time)
and the network alone on one input of the model's tile size, every engine once a round,
interleaved, so a busy machine slows all of them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.runtime.engines import Engine
from inspect_core.runtime.onnx_model import ModelMeta, OnnxModel, normalize


def timing_images(ds: Dataset, k: int = 4) -> list[np.ndarray]:
    """``k`` images of ``ds``, evenly spaced: what the clock runs the model step on, at their
    own sizes (the speed-up that ranks the variants is the one on the model's real images)."""
    picks = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(k, len(ds)))})
    return [ds.load(i)[0] for i in picks]


def timing_input(img: np.ndarray, meta: ModelMeta, size: tuple[int, int]) -> np.ndarray:
    """``img`` normalised, cropped or edge-padded to ``size`` (h, w): the network alone runs on
    it (speed hardly depends on content, but dead inputs could flatter)."""
    x = normalize(to_channels(img, meta.channels), meta.mean, meta.std)[:, : size[0], : size[1]]
    pad = ((0, 0), (0, size[0] - x.shape[1]), (0, size[1] - x.shape[2]))
    return np.ascontiguousarray(np.pad(x, pad, mode="edge")[None])


@dataclass(frozen=True)
class Timing:
    """Median ms per variant name: the model step per image over the timing images, and the
    network alone on one tile-size input."""

    step_ms: dict[str, float]
    net_ms: dict[str, float]


def time_engines(
    model: Path, engines: dict[str, Engine], images: list[np.ndarray], x: np.ndarray, runs: int
) -> Timing:
    """Both timings of every engine, interleaved (each engine wrapped as the runtime runs it,
    with ``model``'s metadata)."""
    wrapped = {n: OnnxModel(model, verify=False, engine=e) for n, e in engines.items()}
    steps = {n: _step(m, images) for n, m in wrapped.items()}
    step = median_ms(steps, runs, warmup=1)
    net = median_ms({n: _net(e, x) for n, e in engines.items()}, runs)
    return Timing({n: v / max(1, len(images)) for n, v in step.items()}, net)


def _step(model: OnnxModel, images: list[np.ndarray]) -> Callable[[], object]:
    return lambda: [model.probabilities(img) for img in images]


def _net(engine: Engine, x: np.ndarray) -> Callable[[], object]:
    return lambda: engine.run(x)


def median_ms(
    runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median milliseconds of each callable, interleaved (one of each per round), so a busy
    machine slows all of them alike."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(max(1, repeats)):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}
