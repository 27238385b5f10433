"""YOLOBatchSyncRandomResize: mmdet's sizes, drawn without a device round trip."""
import random

import torch
from mmdet.models.data_preprocessors import BatchSyncRandomResize
from mmdet.structures import DetDataSample
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from spinexr.models.data_preprocessors import YOLOBatchSyncRandomResize


def _samples(n=2):
    out = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[4., 8., 20., 40.]]),
                                      labels=torch.tensor([1]))
        out.append(s)
    return out


def _sizes(resize, iters=12):
    hub = MessageHub.get_instance('test_batch_resize')
    random.seed(3)
    sizes = []
    for it in range(iters):
        hub.update_info('iter', it)
        inputs, samples = resize(torch.zeros(2, 3, 64, 64), _samples())
        sizes.append((tuple(inputs.shape[-2:]), samples[0].gt_instances.bboxes.tolist()))
    return sizes


def test_same_sizes_and_boxes_as_mmdet():
    ours = _sizes(YOLOBatchSyncRandomResize(random_size_range=(48, 128), interval=1))
    theirs = _sizes(BatchSyncRandomResize(random_size_range=(48, 128), interval=1))
    assert ours == theirs
    assert len({s for s, _ in ours}) > 1


def test_no_value_read_back_from_the_device():
    resize = YOLOBatchSyncRandomResize(random_size_range=(48, 128), interval=1)
    MessageHub.get_instance('test_batch_resize').update_info('iter', 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        resize(torch.zeros(2, 3, 64, 64), _samples())
    reads = [e.name for e in prof.events() if e.name in ('aten::item', 'aten::_local_scalar_dense')]
    assert not reads, reads
    mmdet = BatchSyncRandomResize(random_size_range=(48, 128), interval=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        mmdet(torch.zeros(2, 3, 64, 64), _samples())
    assert any(e.name == 'aten::item' for e in prof.events())  # what is removed
