"""Making a model's faster variants and gating them, at export (training/variants.py).

Candidates (:data:`CANDIDATES`): an int8 copy of the network, ONNX Runtime static QDQ with
per-channel int8 weights and uint8 activations calibrated on training images (as the runtime
feeds them: whole images up to the tile size, else tile-sized crops), run by ONNX Runtime and by
OpenVINO; and the fp32 file run by OpenVINO in bfloat16. Each is scored on the model's validation
images through :class:`~inspect_core.runtime.onnx_model.OnnxModel` (tiles, test-time copies and
prior correction as shipped) and gated against the fp32 file (:func:`gate`). When no int8 copy
passes, it is quantized again with more layers kept in float (:func:`float_levels`: the first
and last convolutions, then the attention gates, then the decoder) until one passes or none is
left. Then the fp32 file and every candidate are timed in one run, interleaved
(:mod:`inspect_core.runtime.variant_timing`). Needs the ``onnx`` package (the train extra); no
torch.

What a candidate is scored and gated on depends on the model (:class:`GateKind`): a
segmentation model's validation images and val mIoU (:data:`SEGMENTATION`, here); a good-only
model's check images and detection scores (:mod:`inspect_core.runtime.variant_gate_anomaly`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from inspect_core.data.datasets import Dataset, to_channels
from inspect_core.data.metrics import SegmentationScores
from inspect_core.runtime.engines import ONNXRUNTIME, OPENVINO, Engine, EngineSpec
from inspect_core.runtime.onnx_model import ModelMeta, OnnxModel, normalize
from inspect_core.runtime.postprocess import argmax_labels

MAX_MIOU_DROP = 0.005  # the gate: val mIoU at most this much below the fp32 file's
MAX_CLASS_DROP = 0.02  # and no class's IoU more than this below its fp32 IoU
MIN_SPEEDUP = 1.1  # a variant that passed but is not this much faster is not worth shipping
INT8_SUFFIX = ".int8.onnx"
CANDIDATES = (
    EngineSpec(ONNXRUNTIME, "int8"),
    EngineSpec(OPENVINO, "int8"),
    EngineSpec(OPENVINO, "bf16"),
)


@dataclass(frozen=True)
class Scores:
    """What the gate compares: val mIoU and each class's IoU, over ``images`` images."""

    miou: float
    iou: dict[str, float]
    images: int

    def headline(self) -> str:
        return f"val mIoU {self.miou:.5f}"

    def card_fields(self) -> dict[str, Any]:
        return {"miou": round(self.miou, 5), "iou": {c: round(v, 5) for c, v in self.iou.items()}}

    @classmethod
    def of(cls, model: OnnxModel, ds: Dataset) -> Scores:
        """``model`` over every image of ``ds``, scored as ``inspect evaluate`` scores it."""
        scores = SegmentationScores(ds.classes)
        for i in range(len(ds)):
            img, mask = ds.load(i)
            scores.update(argmax_labels(model.probabilities(img)), mask, ds.ignore_index)
        s = scores.summary()
        iou = {c: float(v["iou"]) for c, v in s["per_class"].items()}
        return cls(float(s["miou"]), iou, len(ds))


@dataclass(frozen=True)
class GateResult:
    """A candidate's scores against the fp32 file's: the drops, the worst class, the verdict."""

    miou_drop: float
    worst_class: str
    worst_class_drop: float
    passed: bool

    @property
    def why(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return (
            f"{verdict} the gate: val mIoU drop {self.miou_drop:+.4f} (at most {MAX_MIOU_DROP}), "
            f"worst class {self.worst_class} drop {self.worst_class_drop:+.4f} (at most "
            f"{MAX_CLASS_DROP}; a negative drop is a gain)"
        )

    def card_fields(self) -> dict[str, Any]:
        return {
            "miou_drop": self.miou_drop,
            "worst_class": self.worst_class,
            "worst_class_drop": self.worst_class_drop,
        }


def gate(
    ref: Scores,
    cand: Scores,
    max_miou_drop: float = MAX_MIOU_DROP,
    max_class_drop: float = MAX_CLASS_DROP,
) -> GateResult:
    """Whether ``cand`` is within ``max_miou_drop`` of ``ref``'s mIoU and no class's IoU is more
    than ``max_class_drop`` below ``ref``'s (a drop is positive; a gain is negative)."""
    drops = {c: ref.iou[c] - cand.iou.get(c, 0.0) for c in ref.iou}
    worst = max(drops, key=lambda c: drops[c])
    drop = ref.miou - cand.miou
    ok = drop <= max_miou_drop + 1e-12 and drops[worst] <= max_class_drop + 1e-12
    return GateResult(round(drop, 6), worst, round(drops[worst], 6), ok)


class GateScores(Protocol):
    """What a candidate scored on the gate's images (:class:`Scores`, or a good-only model's
    detection scores): one line for the terminal, and the card's fields."""

    def headline(self) -> str: ...

    def card_fields(self) -> dict[str, Any]: ...


class Verdict(Protocol):
    """A gate's answer (:class:`GateResult` & co.): passed, why in one line, the card's fields."""

    @property
    def passed(self) -> bool: ...

    @property
    def why(self) -> str: ...

    def card_fields(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=GateScores)


class GateKind(Protocol[S]):
    """How one kind of model is gated: its scores of an engine on the gate's images, the
    verdict against the fp32 file's, the layer sets kept in float (tried in turn), what an
    unscored candidate records, and the limits the card states."""

    def score(self, model: Path, engine: Engine, ds: Dataset) -> S: ...

    def judge(self, ref: S, cand: S) -> Verdict: ...

    def float_levels(self, prepared: Path) -> list[tuple[str, list[str]]]: ...

    def blank(self) -> dict[str, Any]: ...

    def limits(self) -> dict[str, Any]: ...


class SegmentationGate:
    """A segmentation model: val mIoU and every class's IoU (:func:`gate`)."""

    def score(self, model: Path, engine: Engine, ds: Dataset) -> Scores:
        return score_engine(model, engine, ds)

    def judge(self, ref: Scores, cand: Scores) -> Verdict:
        return gate(ref, cand)

    def float_levels(self, prepared: Path) -> list[tuple[str, list[str]]]:
        return float_levels(prepared)

    def blank(self) -> dict[str, Any]:
        return {
            "miou": 0.0,
            "iou": {},
            "miou_drop": None,
            "worst_class": None,
            "worst_class_drop": None,
        }

    def limits(self) -> dict[str, Any]:
        return {"max_miou_drop": MAX_MIOU_DROP, "max_class_drop": MAX_CLASS_DROP}


SEGMENTATION: GateKind[Scores] = SegmentationGate()


@dataclass(frozen=True)
class GateSet:
    """What a model's variants are gated on: the kind of gate and its images (``ds``), the
    images the int8 copy is calibrated on (``calib_from`` less ``exclude``: none of the
    gate's), and the card's words for them."""

    kind: GateKind[Any]
    ds: Dataset
    calib_from: Dataset
    exclude: list[str]
    what: str
    as_shipped: str
    calib_what: str


@dataclass
class Candidate:
    """One candidate as it went through the gate and the clock."""

    spec: EngineSpec
    suffix: str
    scores: GateScores | None = None
    result: Verdict | None = None
    ms: float = 0.0  # the model step per timing image (tiles, copies, prior), median
    speedup: float = 0.0  # the fp32 file's ms / ms: what ranks the variants at run time
    net_ms: float = 0.0  # the network alone on one tile-size input
    net_speedup: float = 0.0
    sha256: str = ""
    note: str = ""  # how it was made (layers kept in float), or why it was not made
    engine: Engine | None = field(default=None, repr=False)
    kind: GateKind[Any] = field(default=SEGMENTATION, repr=False)
    earlier: tuple[str, ...] = ()  # int8: the float levels tried before, and why each failed

    @property
    def shipped(self) -> bool:
        return bool(self.result and self.result.passed and self.speedup >= MIN_SPEEDUP)

    def to_dict(self) -> dict[str, Any]:
        r, s = self.result, self.scores
        if r is None or s is None:
            why = f"not made: {self.note}"
        elif not r.passed:
            why = r.why
        elif self.speedup < MIN_SPEEDUP:
            why = f"{r.why}, but only {self.speedup:.2f}x the fp32 file (at least {MIN_SPEEDUP})"
        else:
            why = f"{r.why}; {self.speedup:.2f}x the fp32 file"
        return {
            "name": self.spec.name,
            "engine": self.spec.engine,
            "precision": self.spec.precision,
            "suffix": self.suffix,
            "sha256": self.sha256,
            "ms": round(self.ms, 2),
            "speedup": round(self.speedup, 3),
            "net_ms": round(self.net_ms, 2),
            "net_speedup": round(self.net_speedup, 3),
            **self._measured(),
            "passed": bool(r and r.passed),
            "shipped": self.shipped,
            "made": self.note,
            "earlier": list(self.earlier),
            "why": why,
        }

    def _measured(self) -> dict[str, Any]:
        """The gate's fields: an unscored candidate's (in the kind's order), then what was
        measured in their places."""
        s, r = self.scores, self.result
        return {
            **self.kind.blank(),
            **(s.card_fields() if s else {}),
            **(r.card_fields() if r else {}),
        }


def calibration_inputs(
    train: Dataset, meta: ModelMeta, n: int, seed: int = 0, exclude: Iterable[str] = ()
) -> list[np.ndarray]:
    """Up to ``n`` training images (seeded sample; none of ``exclude``, paths relative to the
    dataset folder: the gate's images) as the runtime feeds them: normalised (1, C, H, W), whole
    up to the model's tile size, else one tile-sized crop at a seeded place."""
    skip = set(exclude)
    pool = [i for i, s in enumerate(train.samples) if _rel(s.image, train.root) not in skip]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(pool), min(n, len(pool)), replace=False)) if pool else []
    t = meta.tile
    out = []
    for k in picked:
        img = train.load(pool[int(k)])[0]
        x = normalize(to_channels(img, meta.channels), meta.mean, meta.std)
        h, w = x.shape[1:]
        y0, x0 = int(rng.integers(0, max(1, h - t + 1))), int(rng.integers(0, max(1, w - t + 1)))
        out.append(np.ascontiguousarray(x[None, :, y0 : y0 + t, x0 : x0 + t]))
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def prepare_for_quantization(src: Path, dst: Path) -> None:
    """ONNX Runtime's pre-processing (shape inference, basic graph fusions) of ``src`` into
    ``dst``, with every node named (the float levels exclude nodes by name)."""
    # lazy: onnx (the train extra, 0.7 s) and the quantizer, for variant export only
    import onnx

    # onnxruntime ships no type information (pyproject.toml's override names only onnxruntime,
    # not its submodules)
    from onnxruntime.quantization.shape_inference import (  # type: ignore[import-untyped]
        quant_pre_process,
    )

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    proto = onnx.load(str(dst))
    for i, node in enumerate(proto.graph.node):
        node.name = node.name or f"inspect_node_{i}"
    onnx.save(proto, str(dst))


def float_levels(prepared: Path) -> list[tuple[str, list[str]]]:
    """The sets of nodes to keep in float, tried in turn until an int8 copy passes the gate:
    none; the first and last convolutions (what sees raw pixels, what writes the logits); also
    the attention gates (Sigmoid, the convolution feeding it, the product it scales); also the
    whole decoder (every node after the last max-pool)."""
    import onnx  # lazy: the train extra (0.7 s to load), for variant export only

    nodes = list(onnx.load(str(prepared)).graph.node)
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    ends = [convs[0], convs[-1]] if convs else []
    made_by = {o: n for n in nodes for o in n.output}
    gates: list[str] = []
    for n in nodes:
        if n.op_type == "Sigmoid":
            gates.append(n.name)
            src = made_by.get(n.input[0])
            gates += [src.name] if src is not None and src.op_type == "Conv" else []
            gates += [m.name for m in nodes if m.op_type == "Mul" and n.output[0] in m.input]
    pools = [i for i, n in enumerate(nodes) if n.op_type == "MaxPool"]
    decoder = [n.name for n in nodes[pools[-1] + 1 :]] if pools else []
    levels = [("none", []), ("first and last convolutions", ends)]
    if gates:
        levels.append(("first and last convolutions, attention gates", ends + gates))
    if decoder:
        levels.append(("first and last convolutions, attention gates, decoder", ends + decoder))
    return levels


def quantize_int8(
    prepared: Path, dst: Path, calib: list[np.ndarray], keep_float: list[str], method: str
) -> None:
    """Static QDQ int8 of ``prepared`` into ``dst``: per-channel symmetric int8 weights,
    asymmetric uint8 activations calibrated on ``calib`` (``method``: minmax, percentile,
    entropy), the nodes ``keep_float`` left in float."""
    # lazy: onnx (the train extra, 0.7 s) and the quantizer, for variant export only
    import onnx
    from onnxruntime.quantization import (  # type: ignore[import-untyped]  # as above
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime: untyped
        def __init__(self) -> None:
            self.it = iter([{name: x} for x in calib])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    quantize_static(
        str(prepared),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[method],
        nodes_to_exclude=keep_float,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )


def score_engine(model: Path, engine: Engine, ds: Dataset) -> Scores:
    """``engine`` wrapped as the runtime runs it (metadata of ``model``'s own file: tiles,
    test-time copies, prior correction), scored on ``ds``."""
    return Scores.of(OnnxModel(model, verify=False, engine=engine), ds)
