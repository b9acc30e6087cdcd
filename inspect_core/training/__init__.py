"""Training (the only part of inspect that imports torch: ``pip install 'inspect-vision[train]'``).

:func:`train` fits a :class:`UNet` (``unet.py``, read top to bottom) on a dataset folder with
the augmentation of ``augment.py`` and the losses of ``losses.py``, exports the best checkpoint
to ONNX (``export.py``) and writes its card; ``calibration.py`` fits the class prior
correction the runtime applies.
"""

from .trainer import TrainConfig, train
from .unet import ModelConfig, UNet, build_model

__all__ = ["ModelConfig", "TrainConfig", "UNet", "build_model", "train"]
