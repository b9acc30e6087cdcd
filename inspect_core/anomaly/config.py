"""The settings of a good-only training run (``inspect train --kind anomaly``); no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_FEATURES = "synthetic"
CLASSES = ["background", "anomaly"]


@dataclass(frozen=True)
class AnomalyConfig:
    """What ``inspect train --kind anomaly`` was asked for.

    ``features``: the feature source (:mod:`inspect_core.anomaly.sources`); ``bank_size``: the
    most patches the memory bank keeps (greedy coreset of ``pool_size`` patches drawn from every
    bank image); ``target_frr``: the share of good images the threshold may reject;
    ``groups``/``val_groups``: as for segmentation (whole groups held out to check the
    threshold and score detection); ``blur_sigma``: the smoothing of the score map, in feature
    pixels (one is ``stride`` image pixels)."""

    data: Path
    out: Path
    features: str = DEFAULT_FEATURES
    bank_size: int = 10_000
    pool_size: int = 200_000
    target_frr: float = 0.01
    seed: int = 0
    groups: str | None = None
    val_groups: str | None = None
    threads: int = 0
    blur_sigma: float = 1.0
    chunk: int = 2048  # bank rows per distance step inside the graph (bounds its memory)
    tile_size: int = 1024  # the runtime cuts larger images into tiles of this side
    minutes: float = 15.0  # synthetic: the training time (a cosine schedule on the clock)
    steps: int | None = None  # synthetic: the schedule over this many steps instead
    net_width: int = 24  # synthetic: the U-Net's first-level channels
    crop: int = 192  # synthetic: the side of the training crops
    refine_defects: int = 0  # labelled defect images that may lower the threshold (0: none)

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_frr < 0.5:
            raise ValueError(
                f"target false-reject rate {self.target_frr}: give a share of good images "
                "between 0 and 0.5 (0.01 = 1%)"
            )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps {self.steps}: give 1 or more training steps")
        if self.refine_defects < 0:
            raise ValueError(f"refine defects {self.refine_defects}: give 0 or more images")
        if self.bank_size < 1 or self.pool_size < self.bank_size:
            raise ValueError(
                f"bank size {self.bank_size} and pool size {self.pool_size}: the bank needs at "
                "least one patch and the pool at least as many as the bank"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        return d
