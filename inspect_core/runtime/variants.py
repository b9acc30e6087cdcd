"""Faster variants of a model, and the one place where the runtime picks which one runs.

``training/variants.py`` makes them at export: an int8 copy of the network (ONNX Runtime static
QDQ, per-channel weights, calibrated on training images) run by ONNX Runtime or OpenVINO, and the
fp32 file run by OpenVINO in bfloat16. Each is scored on the model's validation images against
the fp32 file (the gate: val mIoU within 0.005, no class's IoU more than 0.02 lower; a good-only
model's on its check images: image and pixel AUROC within 0.005, at most one more good image
rejected, 99% of image decisions alike) and timed against it in the same run; the card's
``variants`` records all of it, with each file's sha256.
A variant that failed the gate, or was not faster, is not shipped.

As a model loads (:func:`~inspect_core.runtime.loader.load_model`), :func:`plan` ranks the
shipped variants by the speed-up the card records and drops those this machine cannot run (the
engine is not installed, the CPU lacks the instructions the speed-up came from, the file is
missing, the variants were made for another version of the model); :func:`open_planned` loads the
first that loads, after checking its file against the card's sha256 (a mismatch refuses the
model, as for the fp32 file), and falls back to the fp32 file with ONNX Runtime. One log line says
what runs and why the others do not. ``INSPECT_VARIANT=fp32`` forces the fp32 file;
``INSPECT_VARIANT=NAME`` (``int8-onnxruntime``, ``int8-openvino``, ``bf16-openvino``) asks for
one variant.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_core.cards import Card, CardError, read_card, verify_variant
from inspect_core.errors import ModelError
from inspect_core.runtime.engines import (
    ENGINES,
    INSTALL_HINT,
    ONNXRUNTIME,
    PRECISIONS,
    Engine,
    EngineSpec,
    engine_installed,
    open_engine,
)
from inspect_core.runtime.machine import cpu_info
from inspect_core.runtime.tuning import Tuning

VARIANT_ENV = "INSPECT_VARIANT"
REFERENCE = EngineSpec(ONNXRUNTIME, "fp32")
# the CPU instructions a precision's speed-up (and the gate's numbers) came from: any one will do
REQUIRES: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "bf16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}
ALL_FLAGS = frozenset(f for need in REQUIRES.values() for f in need)  # no flag check
log = logging.getLogger("inspect.models")
_LOGGED: set[tuple[str, str, tuple[Skip, ...]]] = set()


@dataclass(frozen=True)
class Variant:
    """One entry of a card's ``variants.list``: how to run it, where its file is (the model's
    stem + ``suffix`` beside the model: ``tile.int8.onnx``; ``.onnx`` is the fp32 file itself),
    what the gate measured and whether it ships."""

    spec: EngineSpec
    suffix: str
    sha256: str
    speedup: float
    miou: float | None  # a segmentation model's gate score (None: a good-only model's variant)
    shipped: bool
    why: str = ""
    image_auroc: float | None = None  # a good-only model's: its check image AUROC

    @property
    def gate_score(self) -> str:
        """What the gate measured, for a log line."""
        if self.miou is not None:
            return f"gate val mIoU {self.miou:.4f}"
        auroc = "none" if self.image_auroc is None else f"{self.image_auroc:.4f}"
        return f"gate check image AUROC {auroc}"

    @property
    def name(self) -> str:
        return self.spec.name

    def file(self, model: Path) -> Path:
        return model.with_name(model.stem + self.suffix)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Variant:
        try:
            spec = EngineSpec(str(d["engine"]), str(d["precision"]))
            suffix, sha = str(d["suffix"]), str(d["sha256"]).lower()
            shipped = d["shipped"]
            if not isinstance(shipped, bool):
                raise TypeError(f"shipped is {shipped!r}, not true or false")
            speedup = float(d["speedup"])
            if "miou" in d or "image_auroc" not in d:  # a good-only model's has no mIoU
                out = cls(spec, suffix, sha, speedup, float(d["miou"]), shipped)
            else:
                auroc = None if d["image_auroc"] is None else float(d["image_auroc"])
                out = cls(spec, suffix, sha, speedup, None, shipped, image_auroc=auroc)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CardError(f"{where}: a variant entry is incomplete ({e!r}): {d}") from e
        if "/" in suffix or "\\" in suffix or not suffix.endswith(".onnx"):
            raise CardError(f"{where}: variant {out.name} has suffix {suffix!r}, not a file name")
        return out


@dataclass(frozen=True)
class VariantSet:
    """A card's ``variants``: the sha256 of the fp32 file they were made from and gated
    against, and the variants."""

    reference_sha256: str
    variants: tuple[Variant, ...]

    @classmethod
    def from_card(cls, card: dict[str, Any], card_path: Path) -> VariantSet | None:
        raw = card.get("variants")
        if raw is None:
            return None
        where = f"model card {card_path} (variants)"
        if not isinstance(raw, dict) or not isinstance(raw.get("list"), list):
            raise CardError(f"{where}: not an object with a list; rerun training/variants.py")
        ref = (raw.get("reference") or {}).get("sha256")
        if not isinstance(ref, str):
            raise CardError(f"{where}: no reference sha256; rerun training/variants.py")
        return cls(ref.lower(), tuple(Variant.from_dict(v, where) for v in raw["list"]))


@dataclass(frozen=True)
class Skip:
    """A variant that does not run here, and why. ``expected``: this machine cannot run it
    (OpenVINO is optional; a CPU without the instructions), as opposed to a problem to fix (a
    missing or stale file, a variant that does not load)."""

    name: str
    why: str
    expected: bool = False


@dataclass(frozen=True)
class Plan:
    """The variants worth trying, fastest first, and those left out; ``requested`` is what
    ``INSPECT_VARIANT`` (or the caller) asked for: ``auto``, ``fp32`` or a variant's name."""

    candidates: tuple[Variant, ...] = ()
    skipped: tuple[Skip, ...] = ()
    requested: str = "auto"
    has_variants: bool = False
    measured: Tuning | None = None  # this machine's measurement, when it ranked them

    @property
    def expected(self) -> str:
        """The variant that runs if the first candidate loads."""
        return self.candidates[0].name if self.candidates else REFERENCE.name

    def to_dict(self) -> dict[str, Any]:
        """For ``inspect plugins --json``: what would run, and why the others would not."""
        return {
            "variant": self.expected,
            "requested": self.requested,
            "skipped": {s.name: s.why for s in self.skipped},
        }


@dataclass(frozen=True)
class Chosen:
    """What :func:`open_planned` loaded: the engine, the variant (None: the fp32 file with
    ONNX Runtime) and every variant left out, with why."""

    engine: Engine
    variant: Variant | None
    skipped: tuple[Skip, ...] = field(default_factory=tuple)
    file: Path | None = None

    @property
    def name(self) -> str:
        return self.variant.name if self.variant else REFERENCE.name


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags (``/proc/cpuinfo``); empty where it cannot be read (not
    Linux): then no variant that needs one runs."""
    return cpu_info()[1]


def requested_variant(variant: str | None = None) -> str:
    """``variant``, else ``INSPECT_VARIANT``, else ``auto``."""
    return (variant or os.environ.get(VARIANT_ENV, "") or "auto").strip()


def plan(
    model: Path,
    card_path: Path | None,
    model_sha256: str,
    requested: str = "auto",
    flags: frozenset[str] | None = None,
) -> Plan:
    """The variants of ``model`` (its card at ``card_path``; None: it has none) worth trying on
    this machine, fastest first (by the card's speed-up), and those left out. ``model_sha256``
    is the fp32 file's: variants made from another version of it are left out. Reads the card;
    a model that loads plans from the card it has read already (:func:`plan_card`)."""
    vset = _read_set(card_path) if card_path is not None else None
    return _plan(model, vset, model_sha256, requested, flags)


def plan_card(
    model: Path,
    card: Card | None,
    model_sha256: str,
    requested: str = "auto",
    flags: frozenset[str] | None = None,
    measured: Tuning | None = None,
) -> Plan:
    """:func:`plan` from the :class:`~inspect_core.cards.Card` read when the model was checked
    (None: no card vouches for it, so the fp32 file runs): the card is not read again. With
    ``measured`` (this machine's measurement, :mod:`inspect_core.runtime.tuning`), an ``auto``
    plan ranks the variants by what was measured here, not by the card and the CPU flags."""
    vset = _card_set(card) if card is not None else None
    return _plan(model, vset, model_sha256, requested, flags, measured)


def _plan(
    model: Path,
    vset: VariantSet | None,
    model_sha256: str,
    requested: str,
    flags: frozenset[str] | None,
    measured: Tuning | None = None,
) -> Plan:
    if requested == "fp32" or vset is None:
        skips: tuple[Skip, ...] = ()
        if vset is None and requested not in ("auto", "fp32"):
            why = (
                f"{VARIANT_ENV}={requested}, but the card lists no variants (training/variants.py)"
            )
            skips = (Skip(requested, why),)
        return Plan((), skips, requested, vset is not None)
    flags = cpu_flags() if flags is None else flags
    shipped = sorted((v for v in vset.variants if v.shipped), key=lambda v: -v.speedup)
    skipped: list[Skip] = []
    if requested != "auto":
        asked = [v for v in shipped if v.name == requested]
        if not asked:
            names = ", ".join(v.name for v in shipped) or "none"
            why = f"{VARIANT_ENV}={requested} names no shipped variant (shipped: {names})"
            return Plan((), (Skip(requested, why),), requested, True)
        shipped = asked
    if vset.reference_sha256 != model_sha256:
        why = (
            f"made from another version of {model.name} (sha256 {vset.reference_sha256[:12]}..., "
            f"the file is {model_sha256[:12]}...): rerun training/variants.py on it"
        )
        return Plan((), tuple(Skip(v.name, why) for v in shipped), requested, True)
    if measured is not None and requested == "auto":
        return _measured_plan(model, shipped, measured)
    candidates = []
    for v in shipped:
        why, expected = _cannot_run(v, model, flags)
        if why:
            skipped.append(Skip(v.name, why, expected))
        else:
            candidates.append(v)
    return Plan(tuple(candidates), tuple(skipped), requested, True)


def _measured_plan(model: Path, shipped: list[Variant], measured: Tuning) -> Plan:
    """The variants that passed on this machine and beat the fp32 file here, fastest here
    first; the others left out with what was measured (a variant that failed its gate here is
    a warning: the card's gate does not hold on this CPU)."""
    ranked: list[tuple[float, Variant]] = []
    skipped: list[Skip] = []
    for v in shipped:
        why, expected = _cannot_run(v, model, ALL_FLAGS)
        m = measured.entry(v.name)
        if why:
            skipped.append(Skip(v.name, why, expected))
        elif m is None:
            skipped.append(Skip(v.name, "did not load when the variants were measured here"))
        elif not m.passed:
            skipped.append(Skip(v.name, f"failed its gate on this CPU: {m.why}"))
        elif m.speedup <= 1.0:
            slower = f"not faster on this CPU ({m.speedup:.2f}x the fp32 file, measured)"
            skipped.append(Skip(v.name, slower, expected=True))
        else:
            ranked.append((m.speedup, v))
    ranked.sort(key=lambda sv: -sv[0])
    cands = tuple(v for _, v in ranked)
    return Plan(cands, tuple(skipped), "auto", True, measured)


def _read_set(card_path: Path) -> VariantSet | None:
    if not card_path.is_file():
        return None
    try:
        return _card_set(Card(card_path, read_card(card_path)))
    except CardError as e:
        raise ModelError(f"{e}. Restore the card from its plugin's package") from e


def _card_set(card: Card) -> VariantSet | None:
    try:
        return VariantSet.from_card(dict(card.data), card.path)
    except CardError as e:
        raise ModelError(f"{e}. Restore the card from its plugin's package") from e


def _cannot_run(v: Variant, model: Path, flags: frozenset[str]) -> tuple[str, bool]:
    """Why ``v`` cannot run on this machine ("" when it can), and whether that is expected of
    the machine (see :class:`Skip`)."""
    if v.spec.engine not in ENGINES or v.spec.precision not in PRECISIONS:
        return f"engine {v.spec.engine} at {v.spec.precision} is unknown to this inspect", False
    if not engine_installed(v.spec.engine):
        return f"{v.spec.engine} is not installed ({INSTALL_HINT[v.spec.engine]})", True
    need = REQUIRES.get(v.spec.precision, ())
    if need and not flags & set(need):
        return f"the CPU has none of {', '.join(need)}", True
    if not v.file(model).is_file():
        return f"its file {v.file(model).name} is missing beside {model.name}", False
    return "", False


def open_planned(
    model: Path,
    card_path: Path | None,
    p: Plan,
    threads: int = 0,
    providers: list[str] | None = None,
) -> Chosen:
    """Load the first candidate of ``p`` that loads, its file first checked against the card
    (a mismatch is a :class:`ModelError`, as for the fp32 file); else the fp32 ``model`` with
    ONNX Runtime. Logs what runs when the card has variants or one was asked for."""
    skipped = list(p.skipped)
    chosen: Chosen | None = None
    for v in p.candidates:
        file = v.file(model)
        if v.suffix != ".onnx" and card_path is not None:
            verify_variant(file, v.sha256, card_path)
        try:
            chosen = Chosen(open_engine(file, v.spec, threads, providers), v, (), file)
            break
        except ModelError as e:
            skipped.append(Skip(v.name, str(e)))
    if chosen is None:
        chosen = Chosen(open_engine(model, REFERENCE, threads, providers), None, (), model)
    chosen = Chosen(chosen.engine, chosen.variant, tuple(skipped), chosen.file)
    if p.has_variants or p.requested not in ("auto", "fp32"):
        _log_choice(model, p, chosen)
    return chosen


def _log_choice(model: Path, p: Plan, c: Chosen) -> None:
    """One line: what runs, and why each faster variant does not. A warning when a variant was
    left out for a problem to fix (a missing or stale file, one that does not load), or when the
    variant ``INSPECT_VARIANT`` names does not run; info when this machine just cannot run it
    (OpenVINO not installed, a CPU without the instructions) or nothing was left out."""
    key = (str(model), c.name, c.skipped)
    if key in _LOGGED:
        return
    _LOGGED.add(key)
    m = p.measured.entry(c.name) if p.measured is not None else None
    if c.variant is not None and m is not None:
        head = (
            f"{model}: runs variant {c.name} ({c.file.name if c.file else ''}, "
            f"{m.speedup:.2f}x the fp32 file measured on this machine, gate sample mIoU "
            f"{m.miou:.4f}, {m.agreement:.2%} of pixels as fp32)"
        )
    elif c.variant is not None:
        head = (
            f"{model}: runs variant {c.name} ({c.file.name if c.file else ''}, "
            f"{c.variant.speedup:.2f}x the fp32 file at export, {c.variant.gate_score})"
        )
    elif p.requested == "fp32":
        head = f"{model}: runs the fp32 file ({VARIANT_ENV}=fp32)"
    else:
        head = f"{model}: runs the fp32 file with ONNX Runtime"
    why = "; ".join(f"{s.name} skipped: {s.why}" for s in c.skipped)
    unheeded = p.requested not in ("auto", "fp32", c.name)  # INSPECT_VARIANT=NAME did not run
    problem = unheeded or any(not s.expected for s in c.skipped)
    level = logging.WARNING if problem else logging.INFO
    log.log(
        level,
        head + (f"; {why}" if why else ""),
        extra={
            "event": "model_variant",
            "fields": {
                "model": str(model),
                "variant": c.name,
                "skipped": {s.name: s.why for s in c.skipped},
            },
        },
    )
