"""Training (the only part of inspect that imports torch: ``pip install 'inspect-vision[train]'``).

:func:`train` (``trainer.py``) fits a :class:`UNet` (``unet.py``, read top to bottom) on a
dataset folder: ``run.py`` sets a run up (the validation images, ``holdout.py``; the settings
left open, ``settings.py``; the weights it starts from, ``init_from.py``; data loader over
``trainset.py``, with the augmentation of ``augment.py``; optimiser and schedule) and keeps its
checkpoints, the losses are in ``losses.py``; the best checkpoint is exported to ONNX
(``export.py``) with its card (``model_card.py``). ``calibration.py`` fits the class prior
correction the runtime applies. The run's settings (``config.py``) import no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import AugmentConfig, TrainConfig
    from .trainer import train
    from .unet import ModelConfig, UNet, build_model

# public name -> the submodule that defines it; loaded on first use, so that importing
# ``inspect_core.training.config`` (the settings, no torch) does not load the training loop
_EXPORTS = {
    "AugmentConfig": "config",
    "TrainConfig": "config",
    "train": "trainer",
    "ModelConfig": "unet",
    "UNet": "unet",
    "build_model": "unet",
}

__all__ = ["AugmentConfig", "ModelConfig", "TrainConfig", "UNet", "build_model", "train"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
