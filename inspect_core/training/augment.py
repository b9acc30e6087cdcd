"""Training augmentation with albumentations, configurable per run.

``AugmentConfig`` lists the knobs a recipe sets; ``build_augment`` turns them into one
albumentations pipeline applied to image and mask together (the mask is resampled with
nearest-neighbour and padded with the ignore index, so padding never counts as background).
"""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np

from inspect_core.training.config import AugmentConfig


def build_augment(
    cfg: AugmentConfig,
    ignore_index: int = 255,
    seed: int | None = None,
    common_classes: list[int] | None = None,
    channels: int = 3,
) -> A.Compose:
    """``seed`` makes the augmentation sequence reproducible (None = fresh randomness).
    ``common_classes``: the classes that are not rare (for ``rare_crop_bias``: a crop must hold
    some other class); ``channels``: 1 leaves out the colour transforms."""
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
    t.append(_crop(cfg, ignore_index, common_classes))
    t += _photometric(cfg, channels)
    comp = A.Compose(t)
    if seed is not None:
        # one generator shared by all transforms: A.Compose(seed=...) would give every transform
        # its own generator with the same seed, so e.g. hflip and vflip would always fire together
        comp.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return comp


def _crop(cfg: AugmentConfig, ignore_index: int, common: list[int] | None) -> A.BasicTransform:
    """A random crop; with a bias, sometimes one centred on a defect (any class but 0) or one
    holding a rare class (any class not in ``common``)."""
    choices: list[tuple[A.BasicTransform, float]] = []
    if cfg.defect_crop_bias > 0:
        # tiny defects in large images: most random crops would hold none
        on = A.CropNonEmptyMaskIfExists(cfg.crop, cfg.crop, ignore_values=[0, ignore_index])
        choices.append((on, cfg.defect_crop_bias))
    if cfg.rare_crop_bias > 0 and common:
        on = A.CropNonEmptyMaskIfExists(cfg.crop, cfg.crop, ignore_values=[*common, ignore_index])
        choices.append((on, cfg.rare_crop_bias))
    plain = A.RandomCrop(cfg.crop, cfg.crop)
    biased = sum(p for _, p in choices)
    if not choices or biased <= 0:
        return plain
    crop = A.OneOf([c for c, _ in choices] + [plain], p=1.0)
    crop.transforms_ps = [p for _, p in choices] + [max(0.0, 1 - biased)]
    return crop


def _photometric(cfg: AugmentConfig, channels: int) -> list[A.BasicTransform]:
    """Lighting, colour, focus, noise and compression, as configured (colour ones on colour
    images only)."""
    t: list[A.BasicTransform] = []
    if cfg.brightness_contrast:
        t.append(
            A.RandomBrightnessContrast(cfg.brightness_contrast, cfg.brightness_contrast, p=0.5)
        )
    if cfg.gamma:
        t.append(A.RandomGamma((100 * (1 - cfg.gamma), 100 * (1 + cfg.gamma)), p=0.5))
    if channels == 3 and (cfg.hue or cfg.saturation):
        t.append(A.HueSaturationValue(cfg.hue, cfg.saturation, 0, p=0.5))
    if channels == 3 and cfg.rgb_shift:
        t.append(A.RGBShift(cfg.rgb_shift, cfg.rgb_shift, cfg.rgb_shift, p=0.5))
    if cfg.blur:
        t.append(A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.5, 1.5), p=cfg.blur))
    if cfg.noise:
        t.append(A.GaussNoise(std_range=(0.02, 0.06), p=cfg.noise))
    if cfg.jpeg:
        t.append(A.ImageCompression(quality_range=(40, 95), p=cfg.jpeg))
    return t
