"""Tests of the YOLO11 head's focal classification loss on soft (IoU-aware) targets."""
import pytest
import torch

from spinexr.models.detectors.yolo11_loss import SigmoidFocalBCE

SOFT_TARGETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)


@pytest.mark.parametrize('gamma,alpha', [(2.0, 0.25), (2.0, -1.0), (1.5, 0.75), (3.0, 0.5)])
def test_soft_target_loss_is_minimised_at_the_target(gamma, alpha):
    """Issue 11 item 3: for every soft target t in (0, 1) the loss over the logit has its minimum
    at sigmoid(logit) = t (the old (1 - p_t)^gamma factor put it at 0.047 for t = 0.2)."""
    logits = torch.linspace(-12, 12, 240_001, dtype=torch.float64)  # step 1e-4
    loss_fn = SigmoidFocalBCE(gamma=gamma, alpha=alpha)
    for t in SOFT_TARGETS:
        target = torch.full_like(logits, t)
        loss = loss_fn(logits, target)
        assert torch.isfinite(loss).all() and (loss >= 0).all()
        p_min = torch.sigmoid(logits[loss.argmin()]).item()
        assert abs(p_min - t) < 1e-4, f't={t}: minimum at p={p_min:.5f}'
        # and the gradient with respect to the logit vanishes at the target
        x = torch.logit(torch.tensor([t], dtype=torch.float64)).requires_grad_()
        loss_fn(x, torch.tensor([t], dtype=torch.float64)).sum().backward()
        assert abs(x.grad.item()) < 1e-9


def test_soft_target_gradient_points_to_the_target():
    """Below the target the loss falls as the logit rises, above it it rises: one minimum."""
    for t in SOFT_TARGETS:
        p = torch.tensor([t * 0.5, t + (1 - t) * 0.5], dtype=torch.float64)
        x = torch.logit(p).requires_grad_()
        SigmoidFocalBCE()(x, torch.full_like(x, t)).sum().backward()
        assert x.grad[0] < 0 < x.grad[1], (t, x.grad)


def test_hard_targets_keep_lin_focal_loss():
    """On targets in {0, 1} the loss is Lin et al.'s sigmoid focal loss, finite and > 0 for an
    all-negative input (an image without boxes)."""
    torch.manual_seed(3)
    logits = torch.randn(4, 50, 7) * 4
    targets = (torch.rand(4, 50, 7) > 0.8).float()
    p, t = torch.sigmoid(logits.double()), targets.double()
    lin = (-0.25 * t * (1 - p)**2 * torch.log(p) - 0.75 * (1 - t) * p**2 * torch.log(1 - p))
    torch.testing.assert_close(SigmoidFocalBCE(2.0, 0.25)(logits, targets).double(), lin,
                               rtol=1e-5, atol=1e-6)
    negatives = SigmoidFocalBCE(2.0, 0.25)(logits, torch.zeros_like(logits)).sum()
    assert torch.isfinite(negatives) and negatives > 0


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError, match='gamma'):
        SigmoidFocalBCE(gamma=-1.0)
    with pytest.raises(ValueError, match='alpha'):
        SigmoidFocalBCE(alpha=1.5)
