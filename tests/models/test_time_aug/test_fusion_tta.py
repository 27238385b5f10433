"""FusionTTAModel: views merged by box fusion, flipped views flipped back (hand-made cases)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import spinexr.models  # noqa: F401  (registers FusionTTAModel)
from spinexr.models.test_time_aug import FusionTTAModel

H, W = 100, 200


def _view(boxes, scores, labels, flip):
    sample = DetDataSample(metainfo=dict(ori_shape=(H, W), img_shape=(H, W), flip=flip,
                                         flip_direction='horizontal' if flip else None))
    pred = InstanceData()
    pred.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    pred.scores = torch.tensor(scores, dtype=torch.float32)
    pred.labels = torch.tensor(labels, dtype=torch.long)
    sample.pred_instances = pred
    return sample


class _Detector(torch.nn.Module):
    """Stands for a detector: the merge under test never calls it."""

    def test_step(self, data):
        raise AssertionError('not called by the merge')


def _model(**kwargs):
    return FusionTTAModel(module=_Detector(), **kwargs)


def _views():
    # view 0 as is: a lesion of class 1 and one of class 2; view 1 flipped horizontally: the same
    # class-1 lesion, whose box in the flipped frame is x -> W - x
    plain = _view([[10, 20, 50, 60], [120, 30, 160, 90]], [0.9, 0.6], [1, 2], flip=False)
    flipped = _view([[W - 50, 20, W - 10, 60]], [0.8], [1], flip=True)
    return [plain, flipped]


def test_wbf_flips_back_and_averages_over_views():
    merged = _model(method='wbf', iou_thr=0.55)._merge_single_sample(_views())
    pred = merged.pred_instances
    assert pred.labels.tolist() == [1, 2]
    torch.testing.assert_close(pred.bboxes[0], torch.tensor([10., 20., 50., 60.]))
    # WBF 'avg': the class-1 box is found by both views, (0.9 + 0.8) / 2; the class-2 box by one
    # of two views, 0.6 x 1 / 2
    torch.testing.assert_close(pred.scores, torch.tensor([0.85, 0.30]))
    assert pred.bboxes.dtype == torch.float32


def test_nms_keeps_the_best_view():
    merged = _model(method='nms', iou_thr=0.5)._merge_single_sample(_views())
    pred = merged.pred_instances
    torch.testing.assert_close(pred.scores, torch.tensor([0.9, 0.6]))
    torch.testing.assert_close(pred.bboxes[0], torch.tensor([10., 20., 50., 60.]))


def test_max_per_img_and_empty_views():
    merged = _model(max_per_img=1)._merge_single_sample(_views())
    assert len(merged.pred_instances) == 1
    empty = [_view([], [], [], flip=False), _view([], [], [], flip=True)]
    out = _model()._merge_single_sample(empty).pred_instances
    assert out.bboxes.shape == (0, 4) and len(out.scores) == 0


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='method'):
        _model(method='mean')
    with pytest.raises(ValueError, match='view_weights'):
        _model(view_weights=[1.0, 1.0, 1.0])._merge_single_sample(_views())
