"""A training run's settings: :class:`TrainConfig` and the augmentation it sets,
:class:`AugmentConfig`. Plain dataclasses that import nothing but the standard library (no
torch, no albumentations), so ``inspect train``'s options, a run's card and the tools that read
settings can name them without loading the training loop (:mod:`.trainer`), which takes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AugmentConfig", "TrainConfig"]


@dataclass
class AugmentConfig:
    rotate: float = 15.0  # max degrees; 0 disables
    rotate90: bool = False  # also random multiples of 90 degrees (textures, aerial)
    scale: float = 0.15  # +- relative scale; 0 disables
    hflip: bool = True
    vflip: bool = True
    noise: float = 0.2  # probability of gaussian noise
    brightness_contrast: float = 0.2  # +- limit; 0 disables
    crop: int = 256  # training crop; images smaller are padded (mask = ignore)
    defect_crop_bias: float = 0.0  # probability a crop is centred on a defect pixel (tiny defects)
    rare_crop_bias: float = 0.0  # probability a crop holds a rare class (< 3% of pixels: thin ones)
    # photometric and imaging shifts (lighting, lens, camera, compression); all off by default:
    # where colour defines a class (vegetation, water) hue jitter destroys the cue, so each is
    # measured on unseen groups before a recipe turns it on
    gamma: float = 0.0  # +- relative gamma (0.3: gamma 0.7..1.3), p 0.5
    hue: float = 0.0  # +- hue shift (OpenCV units), colour images only, p 0.5
    saturation: float = 0.0  # +- saturation shift (0..255 scale), colour images only
    rgb_shift: float = 0.0  # +- per-channel offset (0..255), colour images only, p 0.5
    blur: float = 0.0  # probability of a Gaussian blur (sigma 0.5..1.5: focus, a dirty lens)
    jpeg: float = 0.0  # probability of JPEG re-compression at quality 40..95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class TrainConfig:
    """A run's settings. ``None`` leaves one open: :func:`.settings.resolve_settings` chooses
    it (from scratch, or for a fine-tune from ``init_from``), and the card records the choice."""

    data: str
    out: str
    epochs: int | None = None  # 0 = no limit (then max_minutes ends the run)
    batch: int = 8
    size: int | None = None  # training crop (sets augment.crop)
    width: int | None = None  # network: from init_from's weights, else ModelConfig's default
    depth: int | None = None
    stem_stride: int | None = None
    arch: str | None = None
    lr: float | None = None
    weight_decay: float = 1e-4
    patience: int | None = None  # epochs without val improvement before stopping; 0 = never
    seed: int = 0
    workers: int = 1
    threads: int = 0  # 0 = all cores
    init_from: str | None = None  # a .pt/.onnx path or PLUGIN:RECIPE
    init_partial: bool = False  # start tensors that do not fit init_from from scratch
    bf16: str = "auto"  # auto | on | off
    channels_last: bool = True
    max_minutes: float | None = None  # stop (keeping the best) after this much time; 0 = no limit
    steps_per_epoch: int | None = None  # 0 = one pass over the training set
    val_every: int = 1
    val_max_side: int = 0  # validate on images downscaled to this side (0 = native)
    groups: str | None = None  # groups pattern (regex, one capture group); None = classes.json's
    val_groups: str | None = None  # comma-separated groups to validate on, none trained on
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: str = "dice_ce"  # dice_ce | lovasz_ce (losses.LOSSES)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def val_group_list(self) -> list[str] | None:
        if not self.val_groups:
            return None
        return [g.strip() for g in self.val_groups.split(",") if g.strip()]
