"""Dice + cross-entropy, both honouring the ignore index (needs torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, eps: float = 1.0
) -> torch.Tensor:
    """Soft Dice averaged over the classes present in the batch's target, pixels summed over
    the batch; ignored pixels take no part.

    Classes absent from the target are left out: with eps smoothing alone their Dice is
    eps / (predicted mass + eps), which is ~0 as soon as the network puts even 0.1% probability
    on them over a batch, so every absent class would add ~1 to the loss and push the network
    towards all-background. With rare defects (most classes absent from most batches, as on the
    magnetic tiles) that collapsed training. Cross-entropy still punishes false positives of
    absent classes.
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
    present = onehot.sum(dims) > 0
    if not bool(present.any()):
        return logits.sum() * 0.0
    return 1 - dice[present].mean()


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    class_weights: torch.Tensor | None = None,
    dice_weight: float = 1.0,
) -> torch.Tensor:
    target = target.long()
    if bool((target == ignore_index).all()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=ignore_index)
    return ce + dice_weight * dice_loss(logits, target, ignore_index)
