"""Training augmentation with albumentations, configurable per run.

``AugmentConfig`` lists the knobs a recipe sets; ``build_augment`` turns them into one
albumentations pipeline applied to image and mask together (the mask is resampled with
nearest-neighbour and padded with the ignore index, so padding never counts as background).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import albumentations as A
import cv2
import numpy as np


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_augment(
    cfg: AugmentConfig, ignore_index: int = 255, seed: int | None = None
) -> A.Compose:
    """``seed`` makes the augmentation sequence reproducible (None = fresh randomness)."""
    t: list = []
    if cfg.hflip:
        t.append(A.HorizontalFlip(p=0.5))
    if cfg.vflip:
        t.append(A.VerticalFlip(p=0.5))
    if cfg.rotate90:
        t.append(A.RandomRotate90(p=0.5))
    if cfg.rotate or cfg.scale:
        t.append(
            A.Affine(
                scale=(1 - cfg.scale, 1 + cfg.scale),
                rotate=(-cfg.rotate, cfg.rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                p=0.7,
            )
        )
    t.append(
        A.PadIfNeeded(
            cfg.crop, cfg.crop, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_index
        )
    )
    crop = A.RandomCrop(cfg.crop, cfg.crop)
    if cfg.defect_crop_bias > 0:
        # tiny defects in large images: most random crops would hold none
        on_defect = A.CropNonEmptyMaskIfExists(cfg.crop, cfg.crop, ignore_values=[0, ignore_index])
        crop = A.OneOf([on_defect, crop], p=1.0)
        crop.transforms_ps = [cfg.defect_crop_bias, 1 - cfg.defect_crop_bias]
    t.append(crop)
    if cfg.brightness_contrast:
        t.append(
            A.RandomBrightnessContrast(cfg.brightness_contrast, cfg.brightness_contrast, p=0.5)
        )
    if cfg.noise:
        t.append(A.GaussNoise(std_range=(0.02, 0.06), p=cfg.noise))
    comp = A.Compose(t)
    if seed is not None:
        # one generator shared by all transforms: A.Compose(seed=...) would give every transform
        # its own generator with the same seed, so e.g. hflip and vflip would always fire together
        comp.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return comp
