"""``BinaryClsHead``: a single-logit abnormal-vs-normal head for mmpretrain classifiers."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class BinaryClsHead(ClsHead):
    """Linear head with one logit, trained with sigmoid BCE (or focal loss).

    Why not mmpretrain's heads: ``LinearClsHead(num_classes=1)`` uses softmax cross-entropy (a
    constant with one logit), and ``MultiLabelLinearClsHead(num_classes=1)`` one-hot-encodes label
    1 against one class (index out of range). Here the target is the 0/1 label itself.

    Predictions follow the two-class convention of the dataset (``CLS_CLASSES`` = normal,
    abnormal): ``pred_score = [1 - p, p]`` with ``p = sigmoid(logit)`` and
    ``pred_label = p >= threshold``, so mmpretrain tools and ``BinaryClsMetric`` read them alike.
    Soft targets from batch augments (``gt_score`` of shape ``(2,)`` or ``(1,)``) are supported.

    Args:
        in_channels (int): Feature channels of the neck's output.
        loss (dict): Loss config taking ``(logits (N, 1), target (N, 1) float)``. Defaults to
            ``dict(type='CrossEntropyLoss', use_sigmoid=True)``; for focal loss use
            ``dict(type='BinaryFocalLoss', gamma=2.0, alpha=0.25)``.
        threshold (float): Probability threshold of ``pred_label``. Defaults to 0.5.
        init_cfg (dict, optional): Initialisation. Defaults to normal(std=0.01) on the linear layer.
    """

    def __init__(self,
                 in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 threshold: float = 0.5,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01)) -> None:
        super().__init__(loss=loss, topk=(1, ), cal_acc=False, init_cfg=init_cfg)
        self.in_channels = in_channels
        self.threshold = float(threshold)
        self.fc = nn.Linear(in_channels, 1)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Logits of shape ``(N, 1)`` from the last feature map."""
        return self.fc(self.pre_logits(feats))

    def _get_loss(self, cls_score: torch.Tensor, data_samples: List[DataSample],
                  **kwargs) -> dict:
        """Loss of ``(N, 1)`` logits against the 0/1 label (or the abnormal soft score)."""
        if 'gt_score' in data_samples[0]:
            scores = torch.stack([s.gt_score for s in data_samples]).float()
            target = scores[:, -1:]
        else:
            target = torch.cat([s.gt_label for s in data_samples]).float().view(-1, 1)
            bad = (target != 0) & (target != 1)
            if bad.any():
                raise ValueError('BinaryClsHead expects labels 0 (normal) / 1 (abnormal), got '
                                 f'{target[bad].unique().tolist()}')
        target = target.to(cls_score.device)
        loss = self.loss_module(cls_score, target, avg_factor=cls_score.size(0), **kwargs)
        return dict(loss=loss)

    def _get_predictions(self, cls_score: torch.Tensor,
                         data_samples: Optional[List[Optional[DataSample]]]) -> List[DataSample]:
        """Attach ``pred_score = [1 - p, p]`` and ``pred_label`` to the data samples."""
        prob = cls_score.detach().sigmoid().view(-1)
        scores = torch.stack([1 - prob, prob], dim=1)
        labels = (prob >= self.threshold).long().view(-1, 1)
        if data_samples is None:
            data_samples = [None] * scores.size(0)
        out = []
        for sample, score, label in zip(data_samples, scores, labels):
            sample = DataSample() if sample is None else sample
            sample.set_pred_score(score).set_pred_label(label)
            out.append(sample)
        return out
