"""How a station runs its model: how many model workers side by side, and how many ONNX Runtime
threads each call gets.

The model alone is fastest with all cores on one call (ONNX Runtime's threads), but a station
that waits for each call before it decodes, judges and records the next image leaves those
cores idle between calls. So a station runs ``workers`` model threads (``station.workers``,
default one per core), each calling the same model on one thread: every core runs inference
most of the time, and the reader and the recorder slip in between (ONNX Runtime releases the
GIL while it runs; a session may be called from several threads at once). One worker keeps the
older plan: all cores but one for each call (:func:`inspect_stations.builders.model_threads`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from inspect_core.runtime.machine import cores
from inspect_stations.builders import model_threads
from inspect_stations.config.station import StationConfig


@dataclass(frozen=True)
class ModelPool:
    """``workers`` model threads, ``threads`` ONNX Runtime threads per call."""

    workers: int
    threads: int

    def describe(self) -> str:
        plural = "s" if self.threads != 1 else ""
        return f"{self.workers} model worker(s) x {self.threads} thread{plural}"


def pool_plan(cfg: StationConfig) -> ModelPool:
    """``station.workers`` (0: one per core) and the threads per call: ``station.threads``,
    else ``INSPECT_THREADS``, else 1 with several workers (all cores but one with one)."""
    workers = cfg.workers or cores()
    if workers == 1 or cfg.threads:
        return ModelPool(workers, model_threads(cfg.threads))
    env = os.environ.get("INSPECT_THREADS", "").strip()
    return ModelPool(workers, int(env) if env.isdigit() and int(env) > 0 else 1)


def model_config(cfg: StationConfig, pool: ModelPool) -> StationConfig:
    """``cfg`` with the threads the station's models are built with (an inspector for a new
    model version too)."""
    return cfg.model_copy(update={"threads": pool.threads})
