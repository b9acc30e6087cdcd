"""The training losses: Dice + cross-entropy (the default) and Lovász-softmax + cross-entropy
(to fine-tune for IoU), both honouring the ignore index (needs torch)."""

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
    return _ce_plus(dice_loss, logits, target, ignore_index, class_weights, dice_weight)


def _ce_plus(
    region_loss,
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    class_weights: torch.Tensor | None = None,
    weight: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy plus ``weight`` times ``region_loss`` (Dice or Lovász); 0 (with a
    gradient of zeros, never NaN) when every pixel is ignored."""
    target = target.long()
    if bool((target == ignore_index).all()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=ignore_index)
    return ce + weight * region_loss(logits, target, ignore_index)


def lovasz_softmax_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255
) -> torch.Tensor:
    """The Lovász-softmax loss (Berman, Rannen Triki, Blaschko, CVPR 2018): a convex surrogate
    of 1 - IoU per class, averaged over the classes present in the batch's target, the batch's
    valid pixels pooled (as :func:`dice_loss` pools them). Where Dice and cross-entropy reward
    each pixel's probability, this one follows the sorted errors' effect on the IoU itself, which
    is what a card reports; it is used to fine-tune a model already trained with Dice + CE."""
    c = logits.shape[1]
    probs = logits.float().softmax(1).permute(0, 2, 3, 1).reshape(-1, c)
    labels = target.reshape(-1)
    valid = labels != ignore_index
    probs, labels = probs[valid], labels[valid].long()
    losses = []
    for k in range(c):
        fg = (labels == k).float()
        if not bool(fg.any()):
            continue
        errors = (fg - probs[:, k]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[order])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """The gradient of the Lovász extension of the Jaccard loss at the sorted errors: the
    change in 1 - IoU as each pixel in turn is counted wrong."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def segmentation_loss(
    name: str, logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255
) -> torch.Tensor:
    """The training loss ``name`` (one of :data:`LOSSES`) of ``logits`` against ``target``."""
    if name == "dice_ce":
        return dice_ce_loss(logits, target, ignore_index)
    if name == "lovasz_ce":
        return _ce_plus(lovasz_softmax_loss, logits, target, ignore_index)
    raise ValueError(f"unknown loss {name!r}; the losses are {', '.join(LOSSES)}")


# the losses `inspect train --loss` offers
LOSSES = ("dice_ce", "lovasz_ce")
