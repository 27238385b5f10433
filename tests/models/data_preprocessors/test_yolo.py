"""Tests of YOLODetDataPreprocessor and yolo_collate (Ultralytics' input conventions)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from spinexr.models.data_preprocessors import YOLODetDataPreprocessor
from spinexr.datasets.collate import yolo_collate


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



def test_collated_batch_equals_the_list_path():
    """yolo_collate stacks and pads in the worker; the preprocessor then gives the same tensor
    and batch metainfo as from mmengine's list of images."""
    torch.manual_seed(0)
    images = [torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8),
              torch.randint(0, 256, (3, 64, 40), dtype=torch.uint8)]
    pre = YOLODetDataPreprocessor()

    def samples():
        return [_sample([[1, 2, 30, 40]], [3], (50, 70)), _sample([], [], (64, 40))]

    from_list = pre(dict(inputs=images, data_samples=samples()), training=True)
    batch = yolo_collate([dict(inputs=img, data_samples=s) for img, s in zip(images, samples())])
    assert batch['inputs'].dtype == torch.uint8 and batch['inputs'].shape == (2, 3, 64, 96)
    from_stack = pre(batch, training=True)
    torch.testing.assert_close(from_stack['inputs'], from_list['inputs'], rtol=0, atol=0)
    for a, b in zip(from_stack['data_samples'], from_list['data_samples']):
        assert a.batch_input_shape == b.batch_input_shape == (64, 96)


def test_collate_names_a_bad_sample():
    good = dict(inputs=torch.zeros(3, 8, 8, dtype=torch.uint8), data_samples=_sample([], [], (8, 8)))
    bad = dict(inputs=torch.zeros(1, 8, 8, dtype=torch.uint8),
               data_samples=DetDataSample(metainfo=dict(img_path='x/bad.png')))
    with pytest.raises(ValueError, match=r'sample 1 \(x/bad.png\) has 1 channels'):
        yolo_collate([good, bad])
    with pytest.raises(ValueError, match='empty batch'):
        yolo_collate([])


def test_samples_stay_on_the_host():
    """Only the images go to the model's device; the ground truth is packed on the host (one
    transfer for the whole batch) instead of one copy per sample's tensors. The 'meta' device
    stands in for an accelerator."""
    pre = YOLODetDataPreprocessor()
    pre._device = torch.device('meta')
    batch = yolo_collate([dict(inputs=torch.zeros(3, 32, 32, dtype=torch.uint8),
                               data_samples=_sample([[1, 2, 3, 4]], [0], (32, 32)))])
    out = pre(batch, training=True)
    assert out['inputs'].device.type == 'meta'
    assert out['data_samples'][0].gt_instances.bboxes.device.type == 'cpu'
