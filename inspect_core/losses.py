"""Dice + cross-entropy, both honouring the ignore index (needs torch)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
              eps: float = 1.0) -> torch.Tensor:
    """Soft Dice over all classes, summed over the batch; ignored pixels take no part.

    Classes absent from both prediction and target contribute nothing (eps smoothing keeps the
    ratio at 1 for them), so rare classes are not punished for being rare.
    """
    n, c = logits.shape[:2]
    valid = target != ignore_index
    probs = logits.float().softmax(1) * valid.unsqueeze(1)
    onehot = F.one_hot(target.masked_fill(~valid, 0).long(), c).permute(0, 3, 1, 2).float()
    onehot = onehot * valid.unsqueeze(1)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice.mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
                 class_weights: torch.Tensor | None = None, dice_weight: float = 1.0) -> torch.Tensor:
    target = target.long()
    if bool((target == ignore_index).all()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=ignore_index)
    return ce + dice_weight * dice_loss(logits, target, ignore_index)
