"""Good-only (anomaly) models: trained from images of good parts alone (issue 24).

A memory bank of the good images' patch features (PatchCore: neighbourhood-averaged mid-level
features, thinned by greedy coreset selection) and the nearest-neighbour distance to it,
computed inside the exported ONNX graph, make a per-pixel anomaly map. The graph's first output
is two-class logits, ``[0, (score - threshold) / scale]``, so the runtime's softmax and argmax
turn ``score > threshold`` into class ``anomaly`` with no change; its second output,
``anomaly_map``, is the raw score for evaluation.

Split by what imports torch, as :mod:`inspect_core.training` is:

- no torch (the runtime, evaluation and the CLI may import them): ``config.py`` (the run's
  settings), ``sources.py`` (what a feature source is and the refusal of one trained on the
  product it would judge), ``split.py`` (which good images build the bank, fit the threshold,
  check it), ``threshold.py`` (the threshold from a false-reject target), ``card.py``;
- torch (training only), in :mod:`inspect_core.training.anomaly`: ``features`` (the
  extractors), ``memory`` (patch features and the greedy coreset), ``network``
  (``AnomalyNet``), ``export``, ``fit`` (the run: ``inspect train --kind anomaly``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspect_core.training.anomaly.fit import train_anomaly

    from .config import AnomalyConfig

# public name -> the submodule that defines it; loaded on first use, so that importing the
# package (or its settings) does not load torch
_EXPORTS = {
    "AnomalyConfig": "inspect_core.anomaly.config",
    "train_anomaly": "inspect_core.training.anomaly.fit",
}

__all__ = ["AnomalyConfig", "train_anomaly"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
