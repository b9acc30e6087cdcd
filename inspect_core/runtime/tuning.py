"""Choosing a model's variant by measuring it on the machine it runs on (issue 26).

The card says how fast each variant was, and that it passed its accuracy gate, on the machine
that made it; neither carries over: int8 kernels differ by instruction set (on AVX2 without
VNNI, ONNX Runtime's u8s8 path can saturate) and the speed-ups differ by CPU. So the first time
a model meets a machine (:class:`~inspect_core.runtime.machine.Machine`: CPU model, flags,
cores, threads, library versions), :func:`measured_for` runs every variant this machine can
load, and the fp32 file, over the model's gate sample (:mod:`inspect_core.runtime.gate_sample`)
as the runtime runs them (tiles, test-time copies, prior correction): each variant's mIoU
against the fp32 file's on the same images (the card's gate limits), its agreement with the
fp32 file's labels pixel by pixel (at least :data:`MIN_AGREEMENT`), and the time of the model
step, every engine once a round. The result is cached by model and machine
(``$INSPECT_CACHE_DIR``, default ``~/.cache/inspect``; :func:`cache_file`); the variant that
runs is then the fastest that passed here and is faster than the fp32 file here
(:mod:`inspect_core.runtime.variants`). ``INSPECT_TUNE=off`` skips the measurement (the CPU
flags decide, as the card's numbers came from them); ``inspect model tune`` measures again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.data.metrics import SegmentationScores
from inspect_core.errors import ModelError
from inspect_core.runtime.gate_sample import GateSample, gate_sample_path
from inspect_core.runtime.gate_sample import load as load_sample
from inspect_core.runtime.machine import Machine

TUNE_ENV = "INSPECT_TUNE"  # "off": no measuring, the CPU flags decide
CACHE_ENV = "INSPECT_CACHE_DIR"
# of the gate sample's pixels labelled as the fp32 file labels them: a correct int8 file flips
# boundary pixels (98.9-99.97% on the shipped models, measured where they were made); a
# saturating one changes regions
MIN_AGREEMENT = 0.97
MAX_MIOU_DROP = 0.005  # the card's gate limits where it names none
MAX_CLASS_DROP = 0.02
ROUNDS = 5  # timed rounds (every engine once a round), after one to warm up
FORMAT = 1


@dataclass(frozen=True)
class Measured:
    """One variant on this machine: the model step's median ms per gate image and its
    speed-up over the fp32 file's, its mIoU on the gate sample and the drops from the fp32
    file's, its pixel agreement with the fp32 file, and whether it passed."""

    name: str
    ms: float
    speedup: float
    miou: float
    miou_drop: float
    worst_class: str
    worst_class_drop: float
    agreement: float
    passed: bool
    why: str  # one line: what failed, or "passed"


@dataclass(frozen=True)
class Tuning:
    """What :func:`tune` measured for one model (its fp32 file's sha256) on one machine."""

    model_sha256: str
    machine: Machine
    images: int
    fp32_ms: float
    fp32_miou: float
    export_fp32_miou: float | None  # the fp32 file's mIoU on the sample where it was made
    variants: tuple[Measured, ...]
    measured_at: str

    def entry(self, name: str) -> Measured | None:
        return next((m for m in self.variants if m.name == name), None)

    @property
    def fastest(self) -> str:
        """The variant that runs: the fastest that passed and beats the fp32 file here."""
        ok = [m for m in self.variants if m.passed and m.speedup > 1.0]
        return max(ok, key=lambda m: m.speedup).name if ok else "fp32-onnxruntime"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["machine"] = self.machine.to_dict()
        return {"format": FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tuning:
        return cls(
            str(d["model_sha256"]),
            Machine.from_dict(d["machine"]),
            int(d["images"]),
            float(d["fp32_ms"]),
            float(d["fp32_miou"]),
            None if d.get("export_fp32_miou") is None else float(d["export_fp32_miou"]),
            tuple(Measured(**m) for m in d["variants"]),
            str(d["measured_at"]),
        )


def tuning_enabled() -> bool:
    return os.environ.get(TUNE_ENV, "").strip().lower() not in ("off", "0", "no", "false")


def cache_file(model_sha256: str, machine: Machine) -> Path:
    """Where the measurement of a model on a machine is kept."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "inspect")
    return root / "variants" / f"{model_sha256[:16]}-{machine.key}.json"


def cached(model_sha256: str, machine: Machine) -> Tuning | None:
    """The measurement kept for this model on this machine; None when there is none (or it is
    unreadable: it is measured again)."""
    path = cache_file(model_sha256, machine)
    try:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            return None
        t = Tuning.from_dict(d)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return t if t.model_sha256 == model_sha256 and t.machine == machine else None


def store(t: Tuning) -> Path:
    """Keep ``t`` (whole or not at all); OSError when the cache folder cannot be written."""
    path = cache_file(t.model_sha256, t.machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(t.to_dict(), indent=1))
    tmp.replace(path)
    return path


def sample_scores(labels: list[np.ndarray], sample: GateSample, classes: list[str]) -> Any:
    scores = SegmentationScores(classes)
    for pred, mask in zip(labels, sample.masks):
        scores.update(pred, mask, sample.ignore_index)
    return scores


def agreement(labels: list[np.ndarray], ref: list[np.ndarray]) -> float:
    same = sum(int(np.count_nonzero(a == b)) for a, b in zip(labels, ref))
    return same / max(1, sum(r.size for r in ref))


def judge(
    name: str,
    ms: float,
    fp32_ms: float,
    ref: SegmentationScores,
    cand: SegmentationScores,
    agreement: float,
    limits: tuple[float, float],
) -> Measured:
    """A variant's :class:`Measured`: passed when its mIoU is within ``limits[0]`` of the fp32
    file's and it labels at least :data:`MIN_AGREEMENT` of the pixels as the fp32 file does.
    The worst class's drop is recorded but does not decide (``limits[1]`` is the card's limit
    over hundreds of validation images; over the 8 crops of a gate sample a class of a few
    hundred pixels moves by 0.02 on a correct variant: tile's int8 file on OpenVINO, 0.022)."""
    r, c = ref.summary(), cand.summary()
    drops = {k: r["per_class"][k]["iou"] - c["per_class"][k]["iou"] for k in r["per_class"]}
    worst = max(drops, key=lambda k: drops[k])
    miou_drop = float(r["miou"] - c["miou"])
    fails = []
    if miou_drop > limits[0] + 1e-12:
        fails.append(f"mIoU {miou_drop:+.4f} below the fp32 file's (at most {limits[0]})")
    if agreement < MIN_AGREEMENT:
        least = f"at least {MIN_AGREEMENT:.0%}"
        fails.append(f"labels {agreement:.2%} of pixels as fp32 does ({least})")
    return Measured(
        name,
        round(ms, 3),
        round(fp32_ms / ms, 3) if ms > 0 else 0.0,
        round(float(c["miou"]), 5),
        round(miou_drop, 6),
        worst,
        round(float(drops[worst]), 6),
        round(agreement, 5),
        not fails,
        "; ".join(fails) or "passed",
    )


def gate_limits(card: dict[str, Any]) -> tuple[float, float]:
    """The card's gate limits (mIoU drop, class IoU drop), else the defaults."""
    gate = (card.get("variants") or {}).get("gate") or {}
    return (
        float(gate.get("max_miou_drop", MAX_MIOU_DROP)),
        float(gate.get("max_class_drop", MAX_CLASS_DROP)),
    )


def read_sample(model: Path, card: dict[str, Any]) -> GateSample | None:
    """The gate sample the card ships for ``model`` (checked against its sha256), None when
    the card names none; :class:`ModelError` when it names one that is missing or changed."""
    entry = (card.get("variants") or {}).get("gate_sample")
    if not isinstance(entry, dict):
        return None
    path = gate_sample_path(model)
    if not path.is_file():
        raise ModelError(
            f"{path}: the model card names this gate sample but it is not there; restore it "
            "from the plugin's package (the variants are not measured on this machine without it)"
        )
    return load_sample(path, str(entry.get("sha256", "")))
