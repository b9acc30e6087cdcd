"""Training (the only part of inspect that imports torch: ``pip install 'inspect-vision[train]'``).

:func:`train` (``trainer.py``) fits a :class:`UNet` (``unet.py``, read top to bottom) on a
dataset folder: ``run.py`` sets a run up (the validation images, ``holdout.py``; the settings
left open, ``settings.py``; the weights it starts from, ``init_from.py``; data loader over
``trainset.py``, with the augmentation of ``augment.py``; optimiser and schedule) and keeps its
checkpoints, the losses are in ``losses.py``; the best checkpoint is exported to ONNX
(``export.py``) with its card (``model_card.py``). ``calibration.py`` fits the class prior
correction the runtime applies.
"""

from .trainer import TrainConfig, train
from .unet import ModelConfig, UNet, build_model

__all__ = ["ModelConfig", "TrainConfig", "UNet", "build_model", "train"]
