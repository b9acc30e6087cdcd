"""The accuracy gate of a good-only (anomaly) model's faster variants (training/variants.py).

A good-only model (``inspect train --kind anomaly``) has no val mIoU: its card scores it on its
check images, every image of its check groups, which no fitting saw. They are found again here
as training chose them (:func:`~inspect_core.anomaly.split.split_good` with the card's split
settings), and refused when they are not the card's (:func:`find_check_images`). A candidate is
scored on them as the runtime runs it (whole images; tiled above the tile size) by the network's
anomaly logit, ``(score - threshold) / scale``: a monotone map of the score, so its ROC areas are
the score's, and above 0 is the decision a station acts on (the pixel, and so the image, is
class ``anomaly``; the threshold is the card's, inside the graph).

The gate (:func:`anomaly_gate`) against the fp32 file: image AUROC and pixel AUROC each at most
:data:`MAX_AUROC_DROP` lower; at most :data:`MAX_EXTRA_REJECTS` more good check images rejected
at the card's threshold; the image decisions the same on at least
:data:`MIN_DECISION_AGREEMENT` of the check images.

What stays in float (:func:`anomaly_float_levels`): always the outputs (the score to the
logits), since a uint8 logit would move the decision itself (by up to half a step of 1/255 of
the score's whole range); then, level by level until a copy passes: the first and last
convolutions; the score head (every node outside the network's modules: the per-image
standardisation, the distance to a memory bank, the smoothing); the attention gates; the
decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspect_core.anomaly.split import split_good
from inspect_core.cards import CardError
from inspect_core.data.datasets import Dataset
from inspect_core.data.detection_metrics import detection_scores
from inspect_core.errors import DataError
from inspect_core.runtime import variant_export as vx
from inspect_core.runtime.engines import Engine
from inspect_core.runtime.onnx_model import OnnxModel

MAX_AUROC_DROP = 0.005  # image AUROC and pixel AUROC: each at most this below the fp32 file's
MAX_EXTRA_REJECTS = 1  # good check images rejected beyond those the fp32 file rejects
MIN_DECISION_AGREEMENT = 0.99  # check images whose decision (a pixel above the threshold) agrees
SCORE_OUTPUT = "anomaly_map"  # the graph's score output (inspect_core.training.anomaly.export)


def is_anomaly(card: Mapping[str, Any]) -> bool:
    """Whether ``card`` is a good-only model's (``"kind": "anomaly"``)."""
    return card.get("kind") == "anomaly"


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class AnomalyCard:
    """What the gate reads of a good-only model's card: how its images were split (to find its
    check images again), and what training measured on them."""

    path: Path
    groups: str | None
    val_groups: str | None
    seed: int
    refine_defects: int
    check_groups: tuple[str, ...]
    check_images: int
    image_auroc: float | None
    false_reject_rate: float | None

    @classmethod
    def read(cls, card: Mapping[str, Any], path: Path) -> AnomalyCard:
        """CardError naming ``path`` when the card lacks its ``validation_split``."""
        try:
            training = card.get("training") or {}
            split = card["validation_split"]
            check = (card.get("scores") or {}).get("check") or {}
            return cls(
                path,
                training.get("groups"),
                training.get("val_groups"),
                int(training.get("seed") or 0),
                int(training.get("refine_defects") or 0),
                tuple(str(g) for g in (split.get("groups") or {}).get("check", [])),
                int(split["check_images"]),
                _number(check.get("image_auroc")),
                _number(check.get("false_reject_rate")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CardError(
                f"model card {path}: its validation_split says too little to find the check "
                f"images again ({e!r}); retrain the model with inspect train --kind anomaly"
            ) from e


@dataclass(frozen=True)
class CheckImages:
    """The images the variants are gated on (``check``) and calibrated on (``bank``: good
    training images, none of the check's), and how they were chosen."""

    check: Dataset
    bank: Dataset
    rule: str
    groups: tuple[str, ...]

    def describe(self) -> str:
        where = f"groups {', '.join(self.groups)}" if self.groups else "chosen by image"
        return f"the card's check images ({where}): {self.rule}"


def find_check_images(card: AnomalyCard, data: Path) -> CheckImages:
    """The check images of the model whose card is ``card`` in the dataset at ``data``, split
    as training split it; DataError when they are not the card's (another dataset, or one
    that changed since)."""
    split = split_good(data, card.groups, card.val_groups, card.seed)
    split = split.with_defects(card.refine_defects, card.seed)
    groups = tuple(split.groups.get("check", []))
    if groups != card.check_groups or len(split.check) != card.check_images:
        found = f"{len(split.check)} images, groups {', '.join(groups) or 'none'}"
        said = f"{card.check_images} images, groups {', '.join(card.check_groups) or 'none'}"
        raise DataError(
            f"{data}: the check images found there ({found}) are not those of the card "
            f"{card.path} ({said}); give --data the dataset the model was trained on, as it "
            "was then"
        )
    return CheckImages(split.check, split.bank, split.rule, groups)


def anomaly_gate_set(card: AnomalyCard, data: Path) -> vx.GateSet:
    """A good-only model's gate: its check images, calibrated on its good bank images."""
    check = find_check_images(card, data)
    return vx.GateSet(
        ANOMALY,
        check.check,
        check.bank,
        [],
        check.describe(),
        "whole images (tiled above the tile size), the card's threshold inside the graph",
        "the good bank images, none of the check images, whole up to the tile size",
    )


def logit_map(model: OnnxModel, img: np.ndarray) -> np.ndarray:
    """The anomaly logit (H, W) of one image as the runtime decides it: the network's
    ``logits[1] - logits[0]`` on the whole image; above the tile size (or with test-time
    copies or a prior correction, which good-only models do not have) ``log(p1 / p0)`` of the
    probabilities the runtime computes."""
    meta = model.meta
    x = model.prepare(img)
    if max(x.shape[1:]) <= meta.tile and not meta.tta and meta.class_weights is None:
        z = model.logits(x[None])[0]
        return np.asarray(z[1] - z[0], np.float32)
    p = np.clip(model.probabilities(img).astype(np.float64), 1e-300, None)
    return np.asarray(np.log(p[1]) - np.log(p[0]), np.float32)


def _fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:.5f}"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 5)


@dataclass(frozen=True)
class AnomalyScores:
    """A good-only model on its check images: the detection scores, the good images rejected
    at its threshold, and every image's decision (``rejected``, in the dataset's order)."""

    image_auroc: float | None
    pixel_auroc: float | None
    aupro: float | None
    f1_max: float | None
    images: int
    defective_images: int
    good_images: int
    good_rejected: int
    rejected: tuple[bool, ...]

    @property
    def false_reject_rate(self) -> float | None:
        return self.good_rejected / self.good_images if self.good_images else None

    @classmethod
    def of(cls, model: OnnxModel, ds: Dataset) -> AnomalyScores:
        maps, masks = [], []
        for i in range(len(ds)):
            img, mask = ds.load(i)
            maps.append(logit_map(model, img))
            masks.append(mask)
        return cls.from_maps(maps, masks, ds.ignore_index)

    @classmethod
    def from_maps(
        cls, maps: list[np.ndarray], masks: list[np.ndarray], ignore: int
    ) -> AnomalyScores:
        """From the logit maps and the masks (an image is rejected when a pixel is above 0,
        good when its mask holds no defect pixel)."""
        d = detection_scores(maps, masks, ignore)
        rejected = tuple(bool(m.max() > 0) for m in maps)
        good = [not bool(((k > 0) & (k != ignore)).any()) for k in masks]
        bad_calls = sum(r and g for r, g in zip(rejected, good))
        return cls(
            d.image_auroc,
            d.pixel_auroc,
            d.aupro,
            d.f1_max,
            d.images,
            d.defective_images,
            sum(good),
            bad_calls,
            rejected,
        )

    def headline(self) -> str:
        return (
            f"check image AUROC {_fmt(self.image_auroc)}, pixel AUROC {_fmt(self.pixel_auroc)}, "
            f"good images rejected {self.good_rejected}/{self.good_images}"
        )

    def card_fields(self) -> dict[str, Any]:
        return {
            "image_auroc": _round(self.image_auroc),
            "pixel_auroc": _round(self.pixel_auroc),
            "aupro": _round(self.aupro),
            "f1_max": _round(self.f1_max),
            "false_reject_rate": _round(self.false_reject_rate),
            "good_rejected": self.good_rejected,
            "good_images": self.good_images,
            "images": self.images,
            "defective_images": self.defective_images,
        }


def _drop(v: float | None) -> str:
    return "not measured (no defect or no good image among them)" if v is None else f"{v:+.4f}"


@dataclass(frozen=True)
class AnomalyGateResult:
    """A candidate against the fp32 file on the check images: the AUROC drops (positive: lower;
    None: not measurable there), the good images it rejects beyond the fp32 file's, the share
    of images decided alike, and what failed (empty: passed)."""

    image_auroc_drop: float | None
    pixel_auroc_drop: float | None
    extra_rejects: int
    good_images: int
    agreement: float
    images: int
    failed: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def why(self) -> str:
        verdict = (
            "passed the gate" if self.passed else f"failed the gate ({', '.join(self.failed)})"
        )
        return (
            f"{verdict}: check image AUROC drop {_drop(self.image_auroc_drop)}, pixel AUROC drop "
            f"{_drop(self.pixel_auroc_drop)} (each at most {MAX_AUROC_DROP}; a negative drop is "
            f"a gain), good images rejected {self.extra_rejects:+d} vs the fp32 file's of "
            f"{self.good_images} (at most {MAX_EXTRA_REJECTS:+d}), image decisions agree on "
            f"{self.agreement:.2%} of {self.images} (at least {MIN_DECISION_AGREEMENT:.0%})"
        )

    def card_fields(self) -> dict[str, Any]:
        return {
            "image_auroc_drop": self.image_auroc_drop,
            "pixel_auroc_drop": self.pixel_auroc_drop,
            "extra_rejects": self.extra_rejects,
            "decision_agreement": round(self.agreement, 5),
        }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def anomaly_gate(
    ref: AnomalyScores,
    cand: AnomalyScores,
    max_auroc_drop: float = MAX_AUROC_DROP,
    max_extra_rejects: int = MAX_EXTRA_REJECTS,
    min_agreement: float = MIN_DECISION_AGREEMENT,
) -> AnomalyGateResult:
    """``cand`` against ``ref`` (the fp32 file), both on the same check images."""
    if len(ref.rejected) != len(cand.rejected):
        raise ValueError(f"{len(cand.rejected)} images scored against {len(ref.rejected)}")
    image = _minus(ref.image_auroc, cand.image_auroc)
    pixel = _minus(ref.pixel_auroc, cand.pixel_auroc)
    extra = cand.good_rejected - ref.good_rejected
    same = [a == b for a, b in zip(ref.rejected, cand.rejected)]
    agreement = sum(same) / len(same) if same else 1.0
    failed = [
        name
        for name, bad in (
            ("image AUROC", image is not None and image > max_auroc_drop + 1e-12),
            ("pixel AUROC", pixel is not None and pixel > max_auroc_drop + 1e-12),
            ("false rejects", extra > max_extra_rejects),
            ("decisions", agreement < min_agreement - 1e-12),
        )
        if bad
    ]
    return AnomalyGateResult(
        image, pixel, extra, ref.good_images, agreement, len(same), tuple(failed)
    )


def card_note(card: AnomalyCard, ref: AnomalyScores) -> str:
    """A line when the fp32 file scores otherwise here than its card says ("" when alike)."""
    pairs = (
        ("image AUROC", ref.image_auroc, card.image_auroc),
        ("false-reject rate", ref.false_reject_rate, card.false_reject_rate),
    )
    off = [
        f"{name} {got:.5f} here, {said:.5f} on its card"
        for name, got, said in pairs
        if got is not None and said is not None and abs(got - said) > 1e-4
    ]
    if not off:
        return ""
    return (
        f"note: the fp32 file scores {'; '.join(off)} (another dataset version, or a tool "
        "changed the model after scoring)"
    )


def _output_nodes(nodes: list[Any], outputs: list[str]) -> list[str]:
    """The nodes that make the outputs from the score: the score output's maker, every node
    after it, and each output's maker."""
    made_by = {o: n for n in nodes for o in n.output}
    names = [made_by[o].name for o in [SCORE_OUTPUT, *outputs] if o in made_by]
    reach = {SCORE_OUTPUT}
    for n in nodes:  # an ONNX graph lists its nodes in order
        if any(i in reach for i in n.input):
            names.append(n.name)
            reach.update(n.output)
    return list(dict.fromkeys(names))


def anomaly_float_levels(prepared: Path) -> list[tuple[str, list[str]]]:
    """The node sets kept in float, tried in turn (see the module docstring), each larger than
    the one before; levels that would add nothing are left out."""
    import onnx  # lazy: the train extra (0.7 s to load), for variant export only

    graph = onnx.load(str(prepared)).graph
    nodes = list(graph.node)
    # torch names a node after the module that made it: "/unet/...", "/features/..."; the
    # score head's own operations sit at the top ("/MatMul", "/Conv_1")
    head = [n.name for n in nodes if n.name.count("/") == 1 and n.name.startswith("/")]
    seg = vx.float_levels(prepared)  # none, the ends, [attention gates], [decoder]
    steps = [("the outputs", _output_nodes(nodes, [o.name for o in graph.output]))]
    steps += [(label, names) for label, names in seg[1:2]]
    steps.append(("the score head", head))
    steps += [(label.split(", ")[-1], names) for label, names in seg[2:]]
    levels: list[tuple[str, list[str]]] = []
    kept: list[str] = []
    labels: list[str] = []
    for label, names in steps:
        grown = list(dict.fromkeys(kept + names))
        if len(grown) > len(kept):
            kept, labels = grown, [*labels, label]
            levels.append((", ".join(labels), kept))
    return levels


class AnomalyGate:
    """The :class:`~inspect_core.runtime.variant_export.GateKind` of a good-only model."""

    def score(self, model: Path, engine: Engine, ds: Dataset) -> AnomalyScores:
        return AnomalyScores.of(OnnxModel(model, verify=False, engine=engine), ds)

    def judge(self, ref: AnomalyScores, cand: AnomalyScores) -> vx.Verdict:
        return anomaly_gate(ref, cand)

    def float_levels(self, prepared: Path) -> list[tuple[str, list[str]]]:
        return anomaly_float_levels(prepared)

    def blank(self) -> dict[str, Any]:
        scores = ["image_auroc", "pixel_auroc", "aupro", "f1_max", "false_reject_rate"]
        counts = ["good_rejected", "good_images", "images", "defective_images"]
        drops = ["image_auroc_drop", "pixel_auroc_drop", "extra_rejects", "decision_agreement"]
        return dict.fromkeys(scores + counts + drops)

    def limits(self) -> dict[str, Any]:
        return {
            "max_image_auroc_drop": MAX_AUROC_DROP,
            "max_pixel_auroc_drop": MAX_AUROC_DROP,
            "max_extra_rejects": MAX_EXTRA_REJECTS,
            "min_decision_agreement": MIN_DECISION_AGREEMENT,
        }


ANOMALY: vx.GateKind[AnomalyScores] = AnomalyGate()
