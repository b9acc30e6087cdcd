"""Loading a model is one path: :func:`load_model` reads and checks the model's card once
(:func:`inspect_core.cards.verify_model_card`), plans the variant from the card it read
(:func:`inspect_core.runtime.variants.plan_card`), opens the engine
(:func:`inspect_core.runtime.variants.open_planned`) and hands back a :class:`LoadedModel`:
the engine, the card, the variant that runs and the check. :class:`~inspect_core.runtime.
onnx_model.OnnxModel` is built on it, so ``inspect predict``, ``evaluate``, a station, the
backtest worker and ``inspect model add`` all load a model through here; an
:class:`~inspect_core.runtime.inspector.Inspector` takes the check of the model it is handed
(:func:`check_for`) instead of checking the file again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inspect_core.cards import Card, ModelCheck, verify_model, verify_model_card
from inspect_core.errors import ModelError
from inspect_core.runtime import tuning, variants
from inspect_core.runtime.engines import Engine
from inspect_core.runtime.machine import run_threads, this_machine
from inspect_core.runtime.tuning import tuning_enabled

__all__ = ["LoadedModel", "check_for", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A model file opened for inference, checked against its card.

    ``engine``: what runs it; ``variant``: the variant that runs (``fp32-onnxruntime``, a
    faster variant's name, or an engine handed in: its label); ``check``: what the card check
    found (None: loaded unverified, for the training tools); ``card``: the card it read (None:
    no card file, or one that does not vouch for the file); ``card_path``: where the card was
    looked for; ``required``: whether a missing card would have refused it."""

    path: Path
    engine: Engine
    variant: str
    check: ModelCheck | None
    card: Card | None
    card_path: Path
    required: bool = False
    chosen: variants.Chosen | None = None
    plan: variants.Plan | None = None  # what the choice was made from (None: an engine given)

    @property
    def file(self) -> Path:
        """The file that runs: the variant's own file where a faster variant runs."""
        if self.chosen is not None and self.chosen.variant is not None:
            return self.chosen.variant.file(self.path)
        return self.path


def load_model(
    path: str | Path,
    card: str | Path | None = None,
    *,
    required: bool = False,
    verify: bool = True,
    threads: int = 0,
    providers: list[str] | None = None,
    variant: str | None = None,
    engine: Engine | None = None,
) -> LoadedModel:
    """Open ``path``: checked against its card (``card``, default the ``.json`` beside it; a
    missing card refuses it when ``required``), the card read once; the fastest variant the
    card ships that this machine runs (``variant``: ``auto``, ``fp32`` or a variant's name,
    default ``INSPECT_VARIANT``); ``engine`` runs instead when given (``path`` only names the
    model then). ``verify=False`` is for the training tools that rewrite a model and then its
    card: no check, and no variant runs."""
    path = Path(path)
    card_path = Path(card) if card else path.with_suffix(".json")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    check, read = (None, None)
    if verify:
        check, read = verify_model_card(path, card_path, required=required)
    if check is None or check.card is None:
        read = None  # a card that does not vouch for the file ships no variant of it
    if engine is not None:
        return LoadedModel(path, engine, engine.label, check, read, card_path, required)
    plan, chosen = _open(path, check, read, threads, providers, variant)
    return LoadedModel(
        path, chosen.engine, chosen.name, check, read, card_path, required, chosen, plan
    )


def _open(
    path: Path,
    check: ModelCheck | None,
    card: Card | None,
    threads: int,
    providers: list[str] | None,
    variant: str | None,
) -> tuple[variants.Plan, variants.Chosen]:
    """The plan and the engine for the fastest variant that passed its gate and runs here (the
    choice and its log line: :mod:`inspect_core.runtime.variants`): measured on this machine
    when it was (:mod:`inspect_core.runtime.tuning`), else by the card and the CPU flags."""
    threads = run_threads(threads)
    requested = variants.requested_variant(variant)
    if card is None or providers not in (None, ["CPUExecutionProvider"]):
        requested = "fp32"  # no card to vouch for a variant; variants are CPU-only
    sha = check.sha256 if check is not None else ""
    measured = None
    if card is not None and requested == "auto" and tuning_enabled():
        measured = tuning.cached(sha, this_machine(threads))  # measured here before, if ever
    plan = variants.plan_card(path, card, sha, requested, measured=measured)
    chosen = variants.open_planned(path, card.path if card else None, plan, threads, providers)
    return plan, chosen


def check_for(
    loaded: LoadedModel | None, model: Path, card_path: Path, required: bool
) -> ModelCheck:
    """The check of ``model`` against ``card_path`` (a missing card refuses it when
    ``required``): the one ``loaded`` made when it is of the same files and as strict,
    else a check made now (a model handed to a recipe that names another card, or loaded
    unverified)."""
    if loaded is not None and loaded.check is not None and _same(loaded, model, card_path):
        if loaded.required or not required or loaded.check.status != "no_card":
            return loaded.check
    return verify_model(model, card_path, required=required)


def _same(loaded: LoadedModel, model: Path, card_path: Path) -> bool:
    return (loaded.path, loaded.card_path) == (model, card_path) or (
        loaded.path.resolve() == model.resolve()
        and loaded.card_path.resolve() == card_path.resolve()
    )
