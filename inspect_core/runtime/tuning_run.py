"""Measuring a model's variants on this machine (issue 26; what is measured, how it is judged
and kept: :mod:`inspect_core.runtime.tuning`). Above the model class, as it runs each engine
exactly as the runtime does (:class:`~inspect_core.runtime.onnx_model.OnnxModel`: tiles,
test-time copies, prior correction).

:func:`load_measured` is how a station and ``inspect predict`` (through the
:class:`~inspect_core.runtime.inspector.Inspector`) load a model: the first time the model meets
this machine it measures every variant the card ships that loads here (whatever the CPU flags)
on the model's gate sample, keeps the measurement, and loads the variant it chose; later loads
read the kept measurement (:func:`inspect_core.runtime.loader.load_model`). ``inspect model
tune`` measures again (:func:`measure`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from inspect_core.cards import Card, verify_variant
from inspect_core.errors import ModelError
from inspect_core.runtime import variants
from inspect_core.runtime.engines import Engine, EngineSpec, open_engine
from inspect_core.runtime.gate_sample import GateSample
from inspect_core.runtime.machine import Machine, run_threads, this_machine
from inspect_core.runtime.onnx_model import OnnxModel
from inspect_core.runtime.tuning import (
    MAX_CLASS_DROP,
    MAX_MIOU_DROP,
    ROUNDS,
    Tuning,
    agreement,
    gate_limits,
    judge,
    read_sample,
    sample_scores,
    store,
    tuning_enabled,
)
from inspect_core.runtime.variant_timing import median_ms

log = logging.getLogger("inspect.models")


def tune(
    model: Path,
    engines: dict[str, Engine],
    sample: GateSample,
    model_sha256: str,
    machine: Machine,
    limits: tuple[float, float] = (MAX_MIOU_DROP, MAX_CLASS_DROP),
    rounds: int = ROUNDS,
) -> Tuning:
    """Measure ``engines`` (variant name -> engine) against the fp32 file ``model`` (run by
    ONNX Runtime here) on ``sample``: scores first, then the clock, interleaved."""
    ref_engine = open_engine(model, EngineSpec(), machine.threads)
    ref = OnnxModel(model, verify=False, engine=ref_engine)
    classes = ref.classes
    ref_labels = [ref.probabilities(img).argmax(0) for img in sample.images]
    ref_scores = sample_scores(ref_labels, sample, classes)
    wrapped = {n: OnnxModel(model, verify=False, engine=e) for n, e in engines.items()}
    measured = {}
    for name, m in wrapped.items():
        labels = [m.probabilities(img).argmax(0) for img in sample.images]
        measured[name] = (sample_scores(labels, sample, classes), agreement(labels, ref_labels))
    steps = {"fp32": _step(ref, sample)} | {n: _step(m, sample) for n, m in wrapped.items()}
    ms = {n: v / len(sample.images) for n, v in median_ms(steps, rounds, warmup=1).items()}
    out = []
    for name, (scores, agreed) in measured.items():
        out.append(judge(name, ms[name], ms["fp32"], ref_scores, scores, agreed, limits))
    return Tuning(
        model_sha256,
        machine,
        len(sample.images),
        round(ms["fp32"], 3),
        round(float(ref_scores.summary()["miou"]), 5),
        sample.export_miou,
        tuple(out),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def _step(model: Any, sample: GateSample) -> Any:
    return lambda: [model.probabilities(img) for img in sample.images]


def measure(path: Path, card: Card, sha: str, threads: int) -> Tuning | None:
    """Measure the variants of ``path`` now, on every variant its ``card`` ships that loads
    here, whatever the CPU flags (the card's gate sample and limits), and keep the result; None
    when the card ships no gate sample."""
    sample = read_sample(path, dict(card.data))
    if sample is None:
        return None
    machine = this_machine(threads)
    engines = _engines(path, card, sha, threads)
    t0 = time.perf_counter()
    t = tune(path, engines, sample, sha, machine, gate_limits(dict(card.data)))
    try:
        where = str(store(t))
    except OSError as e:
        where = f"not kept: {e}"
    log.info(
        "%s: variants measured on this machine in %.1f s (%s; %s)",
        path,
        time.perf_counter() - t0,
        machine.describe(),
        where,
        extra={"event": "model_tuned", "fields": {"model": str(path), "fastest": t.fastest}},
    )
    return t


def _engines(path: Path, card: Card, sha: str, threads: int) -> dict[str, Engine]:
    """Every variant the card ships that loads here (its file checked against the card),
    whatever the CPU flags; one that does not load is left out (the plan says why)."""
    everything = variants.plan_card(path, card, sha, "auto", flags=variants.ALL_FLAGS)
    engines = {}
    for v in everything.candidates:
        file = v.file(path)
        if v.suffix != ".onnx":
            verify_variant(file, v.sha256, card.path)
        try:
            engines[v.name] = open_engine(file, v.spec, threads)
        except ModelError:
            continue
    return engines


def load_measured(
    path: Path, threads: int = 0, card: Path | None = None, required: bool = False
) -> OnnxModel:
    """``OnnxModel(path)``, measured on this machine first when it has never met it (the card
    ships variants and a gate sample, ``INSPECT_TUNE`` is not off, no variant was asked for)."""
    model = OnnxModel(path, threads=threads, card=card, required=required)
    loaded = model.loaded
    plan = loaded.plan
    if plan is None or plan.measured is not None or plan.requested != "auto":
        return model
    if not (plan.has_variants and loaded.card is not None and loaded.check is not None):
        return model
    if not tuning_enabled():
        return model
    t = measure(loaded.path, loaded.card, loaded.check.sha256, run_threads(threads))
    if t is None:
        return model
    return OnnxModel(path, threads=threads, card=card, required=required)
