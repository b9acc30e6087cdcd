"""Dataset readers: the shared segmentation layout and the MVTec AD layout.

Shared layout (``../shared/datasets/<name>``)::

    classes.json                      {"classes": [...], "ignore_index": 255, ...}
                                      optional "groups": a regex with one capture group
                                      applied to each file stem (e.g. "^(tile\\\\d+)_" in JSON):
                                      images of one group (one part, tile, video) are never
                                      split between training and a carved validation set
    <split>/images/<stem>.(jpg|png|bmp|tif)
    <split>/masks/<stem>.png          8-bit class indices, 255 = ignore

MVTec AD layout (one object category)::

    train/good/*.png                  defect-free; mask = all background
    test/<defect>/*.png               test/good has no masks
    ground_truth/<defect>/<stem>_mask.png   0 / 255 binary masks

Readers never import torch: evaluation and the runtime use them too. Everything malformed is
a :class:`DataError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspect_core.data.bit_depth import looks_narrower, to_8bit
from inspect_core.errors import DataError

log = logging.getLogger("inspect.data")

CARD_GROUPS = "the model card's training groups pattern"  # a Dataset's groups_from, said so
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None  # None = defect-free (all background)
    # MVTec masks are 0/255 binary: map non-zero to this class index
    binary_class: int | None = None


@dataclass
class Dataset:
    root: Path
    name: str
    classes: list[str]
    ignore_index: int
    split: str
    samples: list[Sample] = field(default_factory=list)
    license: str = ""
    channels: int = 0  # 1 or 3, detected from the first image
    groups: str | None = None  # classes.json "groups": regex, its capture group names a group
    groups_from: str = ""  # where ``groups`` came from when not classes.json (e.g. "--groups")

    def __len__(self) -> int:
        return len(self.samples)

    def groups_origin(self) -> str:
        """Where the groups pattern came from, for a message: its classes.json, or the option
        or card that gave it."""
        return self.groups_from or str(self.root / "classes.json")

    def subset(self, indices: list[int], split: str) -> Dataset:
        """The samples at ``indices`` as a dataset of their own, named ``split``."""
        return replace(self, split=split, samples=[self.samples[i] for i in indices])

    def fingerprint(self) -> str:
        """sha256 of the sorted relative file list: names the exact data a model saw."""
        h = hashlib.sha256()
        for s in self.samples:
            h.update(str(s.image.relative_to(self.root)).encode())
            if s.mask is not None:
                h.update(str(s.mask.relative_to(self.root)).encode())
        return h.hexdigest()

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W) or (H, W, 3) uint8 RGB, and mask (H, W) uint8 class indices."""
        s = self.samples[i]
        img = read_image(s.image)
        mask: np.ndarray  # (numpy's stubs type zeros of an unsized shape as 0-d)
        if s.mask is None:
            mask = np.zeros(img.shape[:2], np.uint8)
        else:
            mask = read_mask(s.mask, len(self.classes), self.ignore_index, s.binary_class)
        if mask.shape != img.shape[:2]:
            raise DataError(
                f"{s.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {s.image.name} "
                f"is {img.shape[1]}x{img.shape[0]}; image and mask must have the same size"
            )
        return img, mask


def read_image(path: Path, max_pixels: int = 200_000_000) -> np.ndarray:
    """Read an image as uint8: gray (H, W) or RGB (H, W, 3). 16-bit is scaled to 8-bit over
    its whole range (value / 257; :mod:`.bit_depth`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: not a readable image (truncated or unknown format)")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise DataError(f"{path}: {img.shape[1]}x{img.shape[0]} exceeds {max_pixels} pixels")
    if img.dtype == np.uint16:
        if looks_narrower(img):
            log.warning(
                "%s: a 16-bit image whose values all fit in 12 bits, read as 16-bit (nearly "
                "black): a camera's raw 10/12-bit values? save them scaled to 16 bits, or 8-bit",
                path,
            )
        img = to_8bit(img)
    elif img.dtype != np.uint8:
        raise DataError(f"{path}: unsupported pixel type {img.dtype}; save it as 8 or 16 bit")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.shape[2] == 1:
            img = img[..., 0]
        if img.ndim == 3 and _is_gray(img):
            img = img[..., 0].copy()
    return img


def _is_gray(img: np.ndarray) -> bool:
    """A JPEG saved as 3 identical channels is gray. Every pixel is checked: a subsample would
    call a gray part with a small coloured mark (or a sparse colour mask) gray."""
    return bool(
        np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    )


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Convert a gray or RGB uint8 image to the number of channels a model wants."""
    if channels == 1:
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if channels == 3:
        return img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def read_mask(
    path: Path, num_classes: int, ignore_index: int = 255, binary_class: int | None = None
) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mask not found")
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataError(f"{path}: mask is not a readable image")
    if mask.ndim == 3:
        if not _is_gray(mask):
            raise DataError(
                f"{path}: mask has colour channels; masks must be single-channel class indices"
            )
        mask = mask[..., 0]
    if mask.dtype != np.uint8:
        raise DataError(f"{path}: mask must be 8-bit, got {mask.dtype}")
    if binary_class is not None:
        return np.where(mask > 127, binary_class, 0).astype(np.uint8)
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
    if bad:
        raise DataError(
            f"{path}: mask values {bad} are outside the {num_classes} classes "
            f"(0..{num_classes - 1}, {ignore_index} = ignore); check classes.json"
        )
    return mask


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def load_classes(root: Path) -> dict[str, Any]:
    cj = root / "classes.json"
    if not cj.is_file():
        raise DataError(
            f"{cj}: classes.json not found; a dataset folder needs one "
            '(e.g. {"classes": ["background", "defect"], "ignore_index": 255})'
        )
    try:
        meta: dict[str, Any] = json.loads(cj.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{cj}: not valid JSON ({e})") from e
    classes = meta.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) for c in classes)
    ):
        raise DataError(f"{cj}: 'classes' must be a list of at least two class names")
    check_groups_pattern(meta.get("groups"), str(cj))
    return meta


def check_groups_pattern(pattern: object, where: str) -> None:
    """A groups pattern (classes.json's "groups", or ``--groups``): a regex with exactly one
    capture group; DataError naming ``where`` otherwise."""
    cj = where
    if pattern is None:
        return
    example = 'e.g. "groups": "^(tile\\\\d+)_" groups tile3_001.png with tile3_002.png'
    if not isinstance(pattern, str):
        raise DataError(f"{cj}: 'groups' must be a regex string ({example})")
    try:
        n = re.compile(pattern).groups
    except re.error as e:
        raise DataError(
            f"{cj}: 'groups' {pattern!r} is not a valid regex ({e}); {example}"
        ) from None
    if n != 1:
        raise DataError(
            f"{cj}: 'groups' {pattern!r} has {n} capture groups; it needs exactly one, the "
            f"part of the file stem that names the group ({example})"
        )


def open_listed(root: str | Path, images: list[str], split: str, groups: str | None) -> Dataset:
    """The images listed (paths relative to the dataset folder ``root``, as a model card's
    ``validation_split`` names them) as a dataset named ``split``, each with the mask of its
    stem in its split's ``masks`` folder; ``groups`` is the pattern they were grouped by."""
    root = Path(root)
    if _is_mvtec(root):
        return _listed_mvtec(root, images, split, groups)
    meta = load_classes(root)
    samples = []
    for rel in images:
        img = root / rel
        mask = img.parent.parent / "masks" / f"{img.stem}.png"
        if not img.is_file() or not mask.is_file():
            raise DataError(
                f"{img}: listed as a validation image but it (or its mask {mask.name}) is "
                f"missing from {root}; give the dataset the model was trained on"
            )
        samples.append(Sample(img, mask))
    if not samples:
        raise DataError(f"{root}: no images listed")
    name, lic = meta.get("name", root.name), meta.get("license", "")
    pattern = groups if groups is not None else meta.get("groups")
    ignore = int(meta.get("ignore_index", 255))
    ds = Dataset(root, name, meta["classes"], ignore, split, samples, lic, groups=pattern)
    if groups is not None and groups != meta.get("groups"):
        ds.groups_from = CARD_GROUPS
    ds.channels = _detect_channels(samples[0].image)
    return ds


def has_split(root: str | Path, split: str) -> bool:
    """Whether the dataset folder has ``split`` of its own (an MVTec folder has no val split:
    :func:`open_dataset` answers 'val' with its test images)."""
    root = Path(root)
    if _is_mvtec(root):
        return split in ("train", "test") and (root / split).is_dir()
    images = root / split / "images"
    return images.is_dir() and any(images.iterdir())  # an empty folder is no split


def open_dataset(root: str | Path, split: str) -> Dataset:
    """Open one split of a dataset folder in either layout (detected)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if _is_mvtec(root):
        return _open_mvtec(root, split)
    meta = load_classes(root)
    classes = meta["classes"]
    ignore = int(meta.get("ignore_index", 255))
    img_dir, mask_dir = root / split / "images", root / split / "masks"
    if not img_dir.is_dir():
        raise DataError(f"{img_dir}: split '{split}' has no images folder")
    images = _images_in(img_dir)
    if not images:
        raise DataError(f"{img_dir}: no images ({', '.join(IMAGE_EXTS)})")
    samples = []
    for img in images:
        mask = mask_dir / f"{img.stem}.png"
        if not mask.is_file():
            raise DataError(
                f"{img}: its mask {mask} is missing; every image needs a mask of the same stem"
            )
        samples.append(Sample(img, mask))
    name, lic = meta.get("name", root.name), meta.get("license", "")
    ds = Dataset(root, name, classes, ignore, split, samples, lic, groups=meta.get("groups"))
    ds.channels = _detect_channels(samples[0].image)
    return ds


def _is_mvtec(root: Path) -> bool:
    return (root / "ground_truth").is_dir() or (root / "train" / "good").is_dir()


def _listed_mvtec(root: Path, images: list[str], split: str, groups: str | None) -> Dataset:
    """:func:`open_listed` for the MVTec layout: the listed images of train/good (no mask:
    all background) and test/*, as its splits read them."""
    pool: dict[str, Sample] = {}
    base = None
    for name in ("train", "test"):
        try:
            ds = _open_mvtec(root, name)
        except DataError:
            continue
        base = base or ds
        pool.update({str(s.image.relative_to(root)): s for s in ds.samples})
    missing = [rel for rel in images if rel not in pool]
    if base is None or missing or not images:
        raise DataError(
            f"{root}: {len(missing) if images else 'no'} listed validation image(s) missing "
            f"({', '.join(missing[:3])}); give the dataset the model was trained on"
        )
    return replace(base, split=split, samples=[pool[rel] for rel in images], groups=groups)


def _open_mvtec(root: Path, split: str) -> Dataset:
    """MVTec AD: 'train' = train/good; 'test' (or 'val') = test/*, masks from ground_truth/."""
    defects = (
        sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name != "good")
        if (root / "test").is_dir()
        else []
    )
    classes = ["background", *defects]
    samples: list[Sample] = []
    if split == "train":
        folder = root / "train" / "good"
        if not folder.is_dir():
            raise DataError(f"{folder}: MVTec layout needs train/good")
        samples = [Sample(p, None) for p in _images_in(folder)]
    else:
        test = root / "test"
        if not test.is_dir():
            raise DataError(f"{test}: MVTec layout needs a test folder")
        for d in sorted(p for p in test.iterdir() if p.is_dir()):
            for img in _images_in(d):
                if d.name == "good":
                    samples.append(Sample(img, None))
                    continue
                mask = root / "ground_truth" / d.name / f"{img.stem}_mask.png"
                if not mask.is_file():
                    raise DataError(f"{img}: its mask {mask} is missing")
                samples.append(Sample(img, mask, binary_class=classes.index(d.name)))
    if not samples:
        raise DataError(f"{root}: no images for split '{split}'")
    ds = Dataset(root, root.name, classes, 255, split, samples, "CC BY-NC-SA 4.0 (MVTec AD)")
    ds.channels = _detect_channels(samples[0].image)
    return ds


def _detect_channels(path: Path) -> int:
    return 1 if read_image(path).ndim == 2 else 3
