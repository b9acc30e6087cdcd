"""The training losses: the ignore index really takes pixels out; Lovász is 1 - IoU on hard
predictions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from inspect_core.training.losses import (
    LOSSES,
    dice_ce_loss,
    dice_loss,
    lovasz_softmax_loss,
    segmentation_loss,
)

IGNORE = 255


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _case(seed=0, n=2, c=3, h=8, w=8):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g)
    target = torch.randint(0, c, (n, h, w), generator=g)
    return logits, target


def _confident(target, c, margin=20.0):
    return F.one_hot(target.long(), c).permute(0, 3, 1, 2).float() * margin


def test_ignored_pixels_do_not_change_loss_or_gradient():
    logits, target = _case()
    target[:, :, 5:] = IGNORE
    target[0, 0, 0] = IGNORE
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)

    a = logits.clone().requires_grad_(True)
    loss_a = dice_ce_loss(a, target, IGNORE)
    loss_a.backward()

    # wildly different logits on the ignored pixels only
    b = torch.where(ignored, logits * 50 + 7, logits).requires_grad_(True)
    loss_b = dice_ce_loss(b, target, IGNORE)
    loss_b.backward()

    assert loss_a.item() == pytest.approx(loss_b.item(), abs=1e-6)
    assert a.grad[ignored].abs().max().item() == 0.0
    assert b.grad[ignored].abs().max().item() == 0.0
    assert a.grad[~ignored].abs().max().item() > 0  # the rest does train
    torch.testing.assert_close(a.grad, b.grad)


def test_ignoring_pixels_equals_leaving_them_out():
    """Loss with the right half ignored == loss on the left half alone (CE is a mean over
    valid pixels, Dice sums over them)."""
    logits, target = _case(seed=1)
    half = target.clone()
    half[:, :, 4:] = IGNORE
    with_ignore = dice_ce_loss(logits, half, IGNORE)
    cropped = dice_ce_loss(logits[..., :4].contiguous(), target[..., :4].contiguous(), IGNORE)
    assert with_ignore.item() == pytest.approx(cropped.item(), rel=1e-5)
    assert dice_loss(logits, half, IGNORE).item() == pytest.approx(
        dice_loss(logits[..., :4], target[..., :4], IGNORE).item(), rel=1e-5
    )


def test_all_ignored_gives_zero_without_nan():
    logits, _ = _case()
    target = torch.full((2, 8, 8), IGNORE, dtype=torch.long)
    x = logits.clone().requires_grad_(True)
    loss = dice_ce_loss(x, target, IGNORE)
    loss.backward()
    assert loss.item() == 0.0
    assert not math.isnan(loss.item())
    assert torch.isfinite(x.grad).all() and x.grad.abs().max().item() == 0.0
    # the Dice part alone is also well defined (eps smoothing: every class scores 1)
    assert dice_loss(logits, target, IGNORE).item() == pytest.approx(0.0, abs=1e-6)


def test_perfect_prediction_beats_wrong_prediction():
    _, target = _case(seed=2)
    target[0, :2] = IGNORE
    c = 3
    valid = target != IGNORE
    perfect = _confident(target.masked_fill(~valid, 0), c)
    wrong = _confident((target.masked_fill(~valid, 0) + 1) % c, c)
    uniform = torch.zeros_like(perfect)
    lp, lu, lw = (dice_ce_loss(x, target, IGNORE).item() for x in (perfect, uniform, wrong))
    assert lp < 1e-3  # near zero: CE ~ exp(-20), Dice ~ 1
    assert lp < lu < lw


def test_absent_class_is_not_punished():
    """A class absent from both target and prediction scores Dice 1, not 0."""
    target = torch.zeros(1, 6, 6, dtype=torch.long)
    target[0, 2:4, 2:4] = 1  # class 2 never occurs
    logits = _confident(target, 3)
    assert dice_loss(logits, target, IGNORE).item() == pytest.approx(0.0, abs=1e-4)


def test_uint8_masks_and_class_weights_are_accepted():
    logits, target = _case(seed=3)
    target = target.to(torch.uint8)
    target[:, 0] = IGNORE
    plain = dice_ce_loss(logits, target, IGNORE)
    weighted = dice_ce_loss(logits, target, IGNORE, class_weights=torch.tensor([0.1, 1.0, 5.0]))
    assert torch.isfinite(plain) and torch.isfinite(weighted)
    assert plain.item() != pytest.approx(weighted.item())


def test_absent_classes_do_not_push_towards_background():
    """A small probability on a class absent from the batch must not cost ~1 per class (that
    collapsed training on rare defects); only classes present in the target count."""
    import torch

    from inspect_core.training.losses import dice_loss

    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:16, 8:16] = 1  # classes 0 and 1 present; 2..5 absent
    logits = torch.full((2, 6, 32, 32), -4.0)
    logits[:, 0] = 4.0
    logits[:, 0, 8:16, 8:16] = -4.0
    logits[:, 1, 8:16, 8:16] = 4.0
    loss = float(dice_loss(logits, target))
    assert loss < 0.05, loss  # ~0.3% probability per absent class used to give ~0.66 here


# --- Lovász-softmax (the loss a trained model is fine-tuned with for IoU) ---


def _hard_iou_loss(pred: torch.Tensor, target: torch.Tensor, c: int) -> float:
    """1 - mean IoU over the classes present in target (what the Lovász loss is a surrogate of)."""
    out = []
    for k in range(c):
        t = target == k
        if t.any():
            p = pred == k
            out.append(1 - (p & t).sum().item() / (p | t).sum().item())
    return sum(out) / len(out)


def test_lovasz_equals_one_minus_iou_on_hard_predictions():
    """On one-hot probabilities the Lovász extension is exact: the loss is 1 - mIoU of the
    classes present, pixels pooled over the batch."""
    c = 3
    for seed in range(5):
        _, target = _case(seed=seed, c=c)
        _, pred = _case(seed=seed + 100, c=c)
        onehot = _confident(pred, c, margin=60.0)
        got = lovasz_softmax_loss(onehot, target, IGNORE).item()
        assert got == pytest.approx(_hard_iou_loss(pred, target, c), abs=1e-4)


def test_lovasz_ignores_ignored_pixels_and_absent_classes():
    logits, target = _case(seed=3, c=4)
    target[target == 3] = 1  # class 3 absent
    target[:, :4] = IGNORE
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    a = logits.clone().requires_grad_(True)
    b = torch.where(ignored, logits * 40 - 3, logits).requires_grad_(True)
    la, lb = lovasz_softmax_loss(a, target, IGNORE), lovasz_softmax_loss(b, target, IGNORE)
    (la + lb).backward()
    assert la.item() == pytest.approx(lb.item(), abs=1e-6)
    assert a.grad[ignored].abs().max().item() == 0.0
    # a perfect prediction of the present classes scores 0 whatever class 3 gets elsewhere
    clean = target.clone()
    clean[clean == IGNORE] = 0
    assert lovasz_softmax_loss(_confident(clean, 4), target, IGNORE).item() < 1e-6
    all_ignored = torch.full_like(target, IGNORE)
    assert lovasz_softmax_loss(logits, all_ignored, IGNORE).item() == 0.0


def test_segmentation_loss_names_and_unknown_loss():
    logits, target = _case(seed=4)
    assert segmentation_loss("dice_ce", logits, target).item() == pytest.approx(
        dice_ce_loss(logits, target).item()
    )
    lov = segmentation_loss("lovasz_ce", logits, target).item()
    ce = F.cross_entropy(logits, target).item()
    assert lov == pytest.approx(ce + lovasz_softmax_loss(logits, target).item())
    with pytest.raises(ValueError, match="lovasz_ce"):
        segmentation_loss("focal", logits, target)


def test_train_cli_offers_every_loss():
    from inspect_core.commands.train import train

    choice = next(p for p in train.params if p.name == "loss").type
    assert tuple(choice.choices) == LOSSES
