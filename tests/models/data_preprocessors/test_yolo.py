"""Tests of YOLODetDataPreprocessor and pack_yolo_targets (Ultralytics' input conventions)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from spinexr.models.data_preprocessors import YOLODetDataPreprocessor
from spinexr.models.data_preprocessors.yolo import pack_yolo_targets


def _sample(boxes, labels, shape):
    s = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    s.gt_instances = gt
    return s


def test_rgb_scale_and_114_padding():
    pre = YOLODetDataPreprocessor()
    a = torch.zeros(3, 50, 70, dtype=torch.uint8)
    a[0] = 10  # B
    a[2] = 200  # R
    b = torch.full((3, 64, 40), 255, dtype=torch.uint8)
    out = pre(dict(inputs=[a, b], data_samples=[_sample([], [], (50, 70)),
                                               _sample([], [], (64, 40))]), training=False)
    x = out['inputs']
    assert x.shape == (2, 3, 64, 96)  # max size, rounded up to multiples of 32
    torch.testing.assert_close(x[0, 0, :50, :70], torch.full((50, 70), 200 / 255))  # R first
    torch.testing.assert_close(x[0, 2, :50, :70], torch.full((50, 70), 10 / 255))
    torch.testing.assert_close(x[0, :, 50:, :], torch.full((3, 14, 96), 114 / 255))
    torch.testing.assert_close(x[1, :, :, 40:], torch.full((3, 64, 56), 114 / 255))
    assert float(x.max()) == 1.0
    assert out['data_samples'][0].batch_input_shape == (64, 96)


def test_mean_std_refused():
    with pytest.raises(ValueError, match='1/255'):
        YOLODetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1])


def test_pack_yolo_targets_normalised_xywh():
    samples = [_sample([[0, 0, 32, 16], [10, 20, 30, 60]], [1, 6], (64, 96)),
               _sample([], [], (64, 96)),
               _sample([[90, 50, 120, 80]], [0], (64, 96))]  # partly outside: clipped
    t = pack_yolo_targets(samples, (64, 96))
    torch.testing.assert_close(t['batch_idx'], torch.tensor([0., 0., 2.]))
    torch.testing.assert_close(t['cls'], torch.tensor([[1.], [6.], [0.]]))
    torch.testing.assert_close(
        t['bboxes'],
        torch.tensor([[16 / 96, 8 / 64, 32 / 96, 16 / 64],
                      [20 / 96, 40 / 64, 20 / 96, 40 / 64],
                      [93 / 96, 57 / 64, 6 / 96, 14 / 64]]))
    empty = pack_yolo_targets([_sample([], [], (32, 32))], (32, 32))
    assert empty['bboxes'].shape == (0, 4) and empty['cls'].shape == (0, 1)
