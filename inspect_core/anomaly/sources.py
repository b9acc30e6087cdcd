"""Feature sources of a good-only model, and the rule that keeps labels out of it; no torch.

- ``filters``: a fixed bank of Gaussian-derivative filters at three scales (nothing learned);
- ``random``: the U-Net encoder of the shipped recipes with random weights (a fixed seed): the
  floor any learned features must beat;
- ``synthetic``: a U-Net trained from scratch on the good bank images with synthetic defects
  (:mod:`inspect_core.anomaly.synthetic`); it scores by its own output, no memory bank;
- ``encoder:PATH.pt``: the encoder half of a U-Net checkpoint that ``inspect train`` wrote,
  whose card (the ``.json`` beside it) says what it was trained on.

A network that saw labelled defects of the product it is judged on is never the feature source
of that product's good-only model: :func:`resolve_source` refuses an encoder whose card names
the dataset being trained on, and one without a card (what it saw is unknown).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspect_core.cards import sha256_file
from inspect_core.errors import InspectError

KINDS = ("filters", "random", "synthetic", "encoder")
USAGE = (
    "give --features filters, random, synthetic or encoder:PATH.pt (a checkpoint with its "
    ".json card)"
)


@dataclass(frozen=True)
class FeatureSource:
    """A feature source as resolved for one dataset. ``trained_on``: the dataset the encoder
    learned from (None: nothing learned); ``path``/``sha256``: the checkpoint (encoder only)."""

    kind: str
    path: Path | None = None
    trained_on: str | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        return f"encoder:{self.path}" if self.kind == "encoder" else self.kind

    def card_entry(self, dataset: str) -> dict[str, Any]:
        """The card's ``features`` entry: the source, what it was trained on, and that it saw
        no defect of ``dataset``."""
        learned = {
            "filters": "nothing: fixed Gaussian-derivative filters",
            "random": "nothing: random weights (seeded)",
            "synthetic": f"the good bank images of {dataset} with synthetic defects made from "
            "them, from scratch (no real defect, no other weights)",
        }
        return {
            "source": self.name,
            "sha256": self.sha256,
            "trained_on": dataset if self.kind == "synthetic" else self.trained_on,
            "learned_from": learned.get(self.kind, f"labelled images of {self.trained_on}"),
            "label_leak": f"saw no defect of {dataset}",
        }


def parse_source(text: str) -> tuple[str, Path | None]:
    """``filters`` / ``random`` / ``encoder:PATH``: the kind and the path; InspectError else."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS or (kind == "encoder") != bool(rest):
        raise InspectError(f"--features {text!r}: unknown feature source; {USAGE}")
    return kind, Path(rest) if rest else None


def resolve_source(text: str, dataset_name: str, dataset_root: Path) -> FeatureSource:
    """The feature source ``text`` for a model of the dataset ``dataset_name`` at
    ``dataset_root``; refuses an encoder trained on that dataset, or one without a card."""
    kind, path = parse_source(text)
    if path is None:
        return FeatureSource(kind)
    if not path.is_file():
        raise InspectError(f"--features {text!r}: {path} not found; {USAGE}")
    card = path.with_suffix(".json")
    if not card.is_file():
        raise InspectError(
            f"--features {text!r}: no model card {card} beside it, so what the encoder was "
            "trained on is unknown and it may have seen this product's defects; copy the "
            "model.json that inspect train wrote with it there"
        )
    try:
        data = json.loads(card.read_text())
        trained = data["dataset"]
        name, where = str(trained["name"]), Path(str(trained.get("path", "")))
    except (ValueError, KeyError, TypeError) as e:
        raise InspectError(
            f"--features {text!r}: model card {card} has no readable dataset entry ({e}); "
            "it must say what the encoder was trained on"
        ) from None
    if name == dataset_name or (where.name and where.name == dataset_root.resolve().name):
        raise InspectError(
            f"--features {text!r}: its card {card} says it was trained on {name} "
            f"({where}), the dataset this good-only model is for. A network that saw labelled "
            "defects of the product it is judged on is never its feature source: use the "
            "encoder of another product, filters or random"
        )
    return FeatureSource(kind, path, name, sha256_file(path))
