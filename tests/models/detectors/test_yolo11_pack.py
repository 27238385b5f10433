"""Tests of pack_yolo_targets: mmdet ground truth in the batch format of Ultralytics' loss."""
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from spinexr.models.detectors.yolo11_loss import pack_yolo_targets


def _sample(boxes, labels, shape):
    s = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    s.gt_instances = gt
    return s


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


def test_horizontal_boxes_and_degenerate_boxes():
    samples = [_sample([[5, 5, 5, 9], [0, 0, 8, 8]], [2, 3], (16, 16)), _sample([[1, 1, 3, 3]], [4],
                                                                              (16, 16))]
    samples[0].gt_instances.bboxes = HorizontalBoxes(samples[0].gt_instances.bboxes)
    t = pack_yolo_targets(samples, (16, 16))
    torch.testing.assert_close(t['batch_idx'], torch.tensor([0., 1.]))  # zero width dropped
    torch.testing.assert_close(t['cls'], torch.tensor([[3.], [4.]]))


def test_one_pass_for_the_whole_batch():
    """Ops that wait for the device on an accelerator (a data-dependent size or a value read on
    the host) run once per batch, not once per image."""
    samples = [_sample([[0, 0, 8, 8], [2, 2, 4, 9]], [1, 2], (32, 32)) for _ in range(8)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        pack_yolo_targets(samples, (32, 32))
    syncing = [e.name for e in prof.events()
               if e.name in ('aten::nonzero', 'aten::_local_scalar_dense', 'aten::item')]
    assert len(syncing) <= 1, syncing
