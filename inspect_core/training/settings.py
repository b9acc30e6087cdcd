"""The settings a run leaves open (``None`` in :class:`~inspect_core.training.config.TrainConfig`:
an option not given to ``inspect train``) and how they are chosen: :func:`resolve_settings`.

From scratch: 40 epochs at a learning rate of 2e-3, early stop after 8 epochs without
improvement, the default network (width 16, depth 4, stem stride 1, enhanced).

Fine-tune (``--init-from``): the network of the weights it starts from (a checkpoint of another
width would load almost nothing); half the learning rate (1e-3: the features are already
trained, a high rate at the start would undo them while the new head settles); and, unless
``--epochs`` is given, a time budget of 30 minutes that the cosine learning-rate schedule is
fitted to, with no early stop (the rate is still falling when a noisy validation set stops
improving for a while; the best checkpoint is kept either way). With no epoch limit an epoch is
only how often it validates: at least 100 batches, so that validating a small dataset's images
at full size does not eat the budget.

Either way the training crop is the images' shorter side (median) rounded down to a multiple of
32, between 64 and 256: a crop larger than the images would be mostly padding.
"""

from __future__ import annotations

from dataclasses import replace

from inspect_core.errors import InspectError
from inspect_core.training.config import TrainConfig
from inspect_core.training.init_from import ARCH_FIELDS, InitSource
from inspect_core.training.unet import ModelConfig

SCRATCH_EPOCHS = 40
SCRATCH_LR = 2e-3
SCRATCH_PATIENCE = 8
FINETUNE_LR = 1e-3
FINETUNE_MINUTES = 30.0
BUDGET_MIN_STEPS = 100  # batches per epoch when no epoch limit (epochs = 0)
MAX_CROP, MIN_CROP, CROP_STEP = 256, 64, 32
NETWORK = ModelConfig()  # the default network: width 16, depth 4, stem stride 1, enhanced


def resolve_settings(
    cfg: TrainConfig, short_side: int, batches_per_pass: int, source: InitSource | None
) -> tuple[TrainConfig, dict[str, str]]:
    """``cfg`` with every open setting chosen, and each choice with its reason (for the log and
    the model card). ``short_side``: the median shorter side of the training images;
    ``batches_per_pass``: batches in one pass over them; ``source``: the weights it starts from."""
    auto: dict[str, str] = {}

    def pick(name: str, value, why: str):
        auto[name] = f"{value} ({why})"
        return value

    tune = source is not None
    s: dict = {}
    for name in ARCH_FIELDS:
        if getattr(cfg, name) is None:
            known = source is not None and source.config is not None
            s[name] = (
                pick(name, getattr(source.config, name), f"from {source.spec}")
                if known
                else getattr(NETWORK, name)
            )
    if cfg.epochs is None:
        s["epochs"] = pick("epochs", 0, "no limit: fine-tune by time") if tune else SCRATCH_EPOCHS
    epochs = s.get("epochs", cfg.epochs)
    if cfg.max_minutes is None:
        s["max_minutes"] = (
            pick("max_minutes", FINETUNE_MINUTES, "time budget, cosine fitted to it")
            if epochs == 0
            else 0.0
        )
    if epochs == 0 and not s.get("max_minutes", cfg.max_minutes):
        raise InspectError("--epochs 0 (no epoch limit) needs a time budget: give --max-minutes")
    if cfg.lr is None:
        s["lr"] = pick("lr", FINETUNE_LR, "fine-tune") if tune else SCRATCH_LR
    if cfg.patience is None:
        s["patience"] = pick("patience", 0, "off: fine-tune") if tune else SCRATCH_PATIENCE
    if cfg.steps_per_epoch is None:
        s["steps_per_epoch"] = 0
        if epochs == 0 and batches_per_pass < BUDGET_MIN_STEPS:
            s["steps_per_epoch"] = pick(
                "steps_per_epoch", BUDGET_MIN_STEPS, "no epoch limit: validate every 100 batches"
            )
    size = cfg.size
    if size is None:
        crop = max(MIN_CROP, min(MAX_CROP, short_side // CROP_STEP * CROP_STEP))
        size = s["size"] = pick("size", crop, f"images' shorter side {short_side} px")
    return replace(cfg, **s, augment=replace(cfg.augment, crop=size)), auto


def differences(cfg: TrainConfig, source: InitSource) -> list[str]:
    """The network settings in which ``cfg`` (resolved) differs from ``source``'s network."""
    if source.config is None:
        return []
    return [
        f"{name} {getattr(cfg, name)} given, the source's is {getattr(source.config, name)}"
        for name in ARCH_FIELDS
        if getattr(cfg, name) != getattr(source.config, name)
    ]
