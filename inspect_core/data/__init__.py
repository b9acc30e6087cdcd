"""Datasets on disk and how segmentations are scored; no torch (evaluation and training share it).

The dataset layouts (``classes.json`` + ``<split>/images`` + ``<split>/masks``, or MVTec AD)
are read by :func:`open_dataset`; :mod:`.groups` names the group (sequence, tile, lot) of each
image; :class:`SegmentationScores` accumulates a confusion matrix and reports mIoU, mean Dice
and per-class scores.
"""

from .datasets import (
    Dataset,
    Sample,
    load_classes,
    open_dataset,
    read_image,
    read_mask,
    to_channels,
)
from .groups import group_names, members, with_groups
from .metrics import SegmentationScores, confusion

__all__ = [
    "Dataset",
    "Sample",
    "SegmentationScores",
    "confusion",
    "group_names",
    "members",
    "with_groups",
    "load_classes",
    "open_dataset",
    "read_image",
    "read_mask",
    "to_channels",
]
