"""BinaryClsHead: loss values against the formula, predictions, soft targets."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import spinexr.models  # noqa: F401  (registration)
from spinexr.models.losses.focal_loss import binary_focal_loss


def _head(**kwargs):
    head = MODELS.build(dict(type='BinaryClsHead', in_channels=4, _scope_='mmpretrain', **kwargs))
    head.init_weights()
    return head


def test_bce_loss_equals_formula():
    torch.manual_seed(0)
    head = _head()
    feats = (torch.randn(3, 4), )
    samples = [DataSample().set_gt_label(v) for v in (1, 0, 1)]
    logits = head(feats)
    assert logits.shape == (3, 1)
    target = torch.tensor([[1.0], [0.0], [1.0]])
    expected = F.binary_cross_entropy_with_logits(logits, target)
    loss = head.loss(feats, samples)['loss']
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() > 0


def test_focal_loss_in_head_equals_formula():
    torch.manual_seed(1)
    head = _head(loss=dict(type='BinaryFocalLoss', gamma=2.0, alpha=0.25))
    feats = (torch.randn(4, 4), )
    samples = [DataSample().set_gt_label(v) for v in (1, 0, 0, 1)]
    logits = head(feats)
    target = torch.tensor([[1.0], [0.0], [0.0], [1.0]])
    expected = binary_focal_loss(logits, target).mean()
    assert head.loss(feats, samples)['loss'].item() == pytest.approx(expected.item(), rel=1e-6)


def test_soft_targets_and_bad_labels():
    head = _head()
    feats = (torch.randn(2, 4), )
    samples = [DataSample().set_gt_score(torch.tensor([0.3, 0.7])),
               DataSample().set_gt_score(torch.tensor([1.0, 0.0]))]
    logits = head(feats)
    expected = F.binary_cross_entropy_with_logits(logits, torch.tensor([[0.7], [0.0]]))
    assert head.loss(feats, samples)['loss'].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match='0 \\(normal\\)'):
        head.loss(feats, [DataSample().set_gt_label(2), DataSample().set_gt_label(0)])


def test_predict_two_scores_and_threshold():
    head = _head(threshold=0.6)
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.fill_(0.0)
        head.fc.weight[0, 0] = 1.0
    feats = (torch.tensor([[2.0, 0, 0, 0], [0.2, 0, 0, 0], [-3.0, 0, 0, 0]]), )
    preds = head.predict(feats)
    p = torch.sigmoid(torch.tensor([2.0, 0.2, -3.0]))
    for s, pi in zip(preds, p):
        torch.testing.assert_close(s.pred_score, torch.stack([1 - pi, pi]))
        assert int(s.pred_label) == int(pi >= 0.6)
    # given data samples are filled in place
    given = [DataSample().set_gt_label(1) for _ in range(3)]
    out = head.predict(feats, given)
    assert out[0] is given[0] and 'pred_score' in given[0]
