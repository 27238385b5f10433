"""Sigmoid focal loss for binary (single-logit) classification heads in MMPretrain.

mmpretrain's own ``FocalLoss`` one-hot-encodes integer labels against the number of logits, so a
single-logit head with labels in {0, 1} cannot use it (label 1 is out of range for one class).
:class:`BinaryFocalLoss` takes targets of the logits' shape (hard 0/1 or soft in [0, 1]).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.losses.utils import weight_reduce_loss
from mmpretrain.registry import MODELS


def binary_focal_loss(pred: torch.Tensor,
                      target: torch.Tensor,
                      gamma: float = 2.0,
                      alpha: Optional[float] = 0.25) -> torch.Tensor:
    r"""Element-wise sigmoid focal loss (Lin et al., 2017), no reduction.

    .. math::
        p_t = p\,t + (1 - p)(1 - t),\quad
        \alpha_t = \alpha\,t + (1 - \alpha)(1 - t),\quad
        FL = -\alpha_t (1 - p_t)^{\gamma} \log p_t

    computed with ``binary_cross_entropy_with_logits`` for numerical stability.

    Args:
        pred (Tensor): Logits, any shape.
        target (Tensor): Targets in [0, 1], same shape as ``pred``.
        gamma (float): Focusing parameter; 0 gives (alpha-weighted) BCE.
        alpha (float, optional): Weight of the positive class; ``None`` for no weighting.

    Returns:
        Tensor: Loss of the shape of ``pred``.
    """
    target = target.type_as(pred)
    prob = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss


@MODELS.register_module()
class BinaryFocalLoss(nn.Module):
    """Sigmoid focal loss module for single-logit heads (e.g. :class:`BinaryClsHead`).

    Args:
        gamma (float): Focusing parameter. Defaults to 2.0.
        alpha (float, optional): Positive-class weight; ``None`` disables it. Defaults to 0.25
            (the RetinaNet value; note that it down-weights the positive = abnormal class).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Optional[float] = 0.25,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'reduction must be none/mean/sum, got {reduction!r}')
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must lie in [0, 1] or be None, got {alpha}')
        self.gamma = float(gamma)
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits ``(N, *)``.
            target (Tensor): Targets of ``pred``'s shape, or ``(N,)`` for ``(N, 1)`` logits.
            weight (Tensor, optional): Element-wise weights (broadcast to ``pred``).
            avg_factor (float, optional): Divisor of the summed loss for ``'mean'``.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The (reduced) loss times ``loss_weight``.
        """
        if target.shape != pred.shape:
            if target.numel() != pred.numel():
                raise ValueError(f'target shape {tuple(target.shape)} does not match logits '
                                 f'{tuple(pred.shape)}')
            target = target.reshape(pred.shape)
        reduction = reduction_override or self.reduction
        loss = binary_focal_loss(pred, target, gamma=self.gamma, alpha=self.alpha)
        if weight is not None:
            weight = weight.float().reshape(-1, *([1] * (pred.dim() - 1))).expand_as(loss)
        loss = weight_reduce_loss(loss, weight=weight, reduction=reduction,
                                  avg_factor=avg_factor)
        return self.loss_weight * loss
