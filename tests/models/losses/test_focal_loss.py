"""BinaryFocalLoss: numeric check against the focal-loss formula."""
import math

import pytest
import torch
import torch.nn.functional as F

from spinexr.models.losses.focal_loss import BinaryFocalLoss, binary_focal_loss


def _formula(x: float, t: float, gamma: float, alpha: float) -> float:
    p = 1 / (1 + math.exp(-x))
    p_t = p * t + (1 - p) * (1 - t)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return -a_t * (1 - p_t) ** gamma * math.log(p_t)


def test_elementwise_matches_formula():
    xs = [-3.0, -0.5, 0.0, 0.7, 4.0]
    for t in (0.0, 1.0):
        got = binary_focal_loss(torch.tensor(xs, dtype=torch.float64),
                                torch.full((5, ), t, dtype=torch.float64), gamma=2.0, alpha=0.25)
        want = [_formula(x, t, 2.0, 0.25) for x in xs]
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_module_reduction_and_defaults():
    loss = BinaryFocalLoss()
    assert (loss.gamma, loss.alpha) == (2.0, 0.25)
    logits = torch.tensor([[2.0], [-1.0], [0.3]])
    target = torch.tensor([1, 0, 1])  # (N,) accepted for (N, 1) logits
    expected = sum(_formula(x, t, 2.0, 0.25) for x, t in zip([2.0, -1.0, 0.3], [1, 0, 1]))
    assert loss(logits, target).item() == pytest.approx(expected / 3, rel=1e-6)
    assert loss(logits, target, avg_factor=6).item() == pytest.approx(expected / 6, rel=1e-6)
    assert loss(logits, target, reduction_override='sum').item() == pytest.approx(expected,
                                                                                   rel=1e-6)
    w = torch.tensor([1.0, 0.0, 1.0])
    exp_w = _formula(2.0, 1, 2.0, 0.25) + _formula(0.3, 1, 2.0, 0.25)
    assert loss(logits, target, weight=w, reduction_override='sum').item() == pytest.approx(
        exp_w, rel=1e-6)


def test_gamma0_no_alpha_is_bce_and_focal_down_weights_easy():
    x = torch.randn(16, 1)
    t = (torch.rand(16, 1) > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(x, t)
    assert BinaryFocalLoss(gamma=0.0, alpha=None)(x, t).item() == pytest.approx(bce.item(),
                                                                                  rel=1e-6)
    easy = BinaryFocalLoss(alpha=None)(torch.tensor([[5.0]]), torch.tensor([[1.0]]))
    easy_bce = F.binary_cross_entropy_with_logits(torch.tensor([[5.0]]), torch.tensor([[1.0]]))
    assert easy.item() < 1e-3 * easy_bce.item()
    with pytest.raises(ValueError):
        BinaryFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match='shape'):
        BinaryFocalLoss()(torch.zeros(3, 1), torch.zeros(4))
