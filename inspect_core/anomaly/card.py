"""The model card of a good-only model (no torch): what ``inspect train --kind anomaly`` writes
beside ``model.onnx``. Besides what every card holds (sha256, classes, normalisation, dataset,
versions) it says what the features were trained on (``features``), what the threshold was
fitted on and the false-reject rate it gives on good images no fitting saw (``threshold``,
``check``), and the detection scores where the check images hold defects."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from inspect_core.anomaly.config import AnomalyConfig
from inspect_core.anomaly.sources import FeatureSource
from inspect_core.anomaly.split import GoodSplit
from inspect_core.anomaly.threshold import Refinement, Threshold
from inspect_core.cards import sha256_file
from inspect_core.training.model_card import package_versions


@dataclass(frozen=True)
class CheckResult:
    """What the check images gave: the false-reject rate on their good images (``None``
    without any), and the detection scores (:class:`~inspect_core.data.detection_metrics.
    DetectionScores` as JSON)."""

    good_images: int
    false_reject_rate: float | None
    detection: dict[str, float | int | None]


@dataclass(frozen=True)
class BankInfo:
    """A memory bank (PatchCore): its patches, the pool they were chosen from, their depth."""

    patches: int
    pool: int
    feature_channels: int
    feature_stride: int

    def summary(self) -> str:
        return f"memory bank: {self.patches} patches"

    def architecture(self, source: str) -> dict[str, Any]:
        return {"kind": "patchcore", "source": source, **asdict(self)}


class ScorerInfo(Protocol):
    """A network trained on the good images (``inspect_core.training.anomaly.synthetic``)."""

    def summary(self) -> str: ...

    def architecture(self, source: str) -> dict[str, Any]: ...


def write_anomaly_card(
    cfg: AnomalyConfig,
    meta: dict[str, Any],
    split: GoodSplit,
    source: FeatureSource,
    scorer: ScorerInfo,
    fitted: tuple[Threshold, Refinement | None],
    check: CheckResult,
    parity: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """Write ``model.json`` in ``cfg.out`` for its ``model.onnx``; returns it. ``fitted``:
    the threshold, and what labelled defects changed of it (None: fitted on good images
    alone)."""
    threshold, refinement = fitted
    ds = split.bank
    model = cfg.out / "model.onnx"
    card: dict[str, Any] = {
        "kind": "anomaly",
        "model": "model.onnx",
        "sha256": sha256_file(model),
        "architecture": scorer.architecture(source.name),
        "classes": meta["classes"],
        "channels": meta["channels"],
        "input_size": meta["input_size"],
        "normalization": {
            "mean": meta["mean"],
            "std": meta["std"],
            "scale": "x/255",
            "per_image": "each image standardised inside the graph",
        },
        "dataset": {
            "name": ds.name,
            "path": str(cfg.data),
            "license": ds.license,
            "train_images": len(ds),
            "fit_images": len(split.fit),
            "file_list_sha256": ds.fingerprint(),
            "defect_images_trained_on": 0,
        },
        "features": source.card_entry(ds.name),
        "threshold": {
            **asdict(threshold),
            "fitted_on": f"{len(split.fit)} good images no bank image came from "
            f"({', '.join(split.groups.get('fit', [])) or 'by image'})",
            "rule": "a good image is rejected when a pixel scores above the value",
            "refined": asdict(refinement) if refinement is not None else None,
        },
        "validation_split": split.to_dict(),
        "validation": {**check.detection, "false_reject_rate": check.false_reject_rate},
        "check": asdict(check),
        "export_parity": parity,
        "training_seconds": round(seconds, 1),
        "training": cfg.to_dict(),
        "versions": package_versions(),
    }
    card["scores"] = {
        "check": {
            **check.detection,
            "false_reject_rate": check.false_reject_rate,
            "what": split.rule,
            "groups": split.groups.get("check", []),
        }
    }
    path = cfg.out / "model.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, path)
    return card
