"""Contract cases for models: data preprocessors, detectors, test-time augmentation, heads,
losses and the classifier ensemble.

Each case takes ``(entry, request)``, builds the registered component through ``entry.registry``
and runs its loss and predict (or forward) on a tiny batch. :data:`CASES` maps registered names
to cases; ``test_registry_contract.py`` runs them.
"""
from typing import Callable, Dict

import pytest
import torch

from contract._contract_helpers import build, packed


def case_yolo_data_preprocessor(entry, request):
    from spinexr.datasets.collate import yolo_collate
    preprocessor = build(entry, dict(pad_size_divisor=32))
    out = preprocessor(yolo_collate([packed(0), packed(1)]), training=True)
    assert out['inputs'].shape == (2, 3, 64, 64) and out['inputs'].dtype == torch.float32
    assert 0.0 <= float(out['inputs'].min()) and float(out['inputs'].max()) <= 1.0
    assert out['data_samples'][0].batch_input_shape == (64, 64)


def case_batch_resize(entry, request):
    import random

    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)
    random.seed(0)
    resize = build(entry, dict(random_size_range=(64, 128), size_divisor=32, interval=1))
    samples = [packed(i)['data_samples'] for i in range(2)]
    for s in samples:
        s.set_metainfo(dict(batch_input_shape=(64, 64), pad_shape=(64, 64)))
    inputs, samples = resize(torch.zeros(2, 3, 64, 64), samples)
    assert inputs.shape[-1] % 32 == 0 and 64 <= inputs.shape[-1] <= 128
    assert samples[0].batch_input_shape == tuple(inputs.shape[-2:])


def case_yolo11(entry, request):
    from spinexr.datasets.collate import yolo_collate
    torch.manual_seed(0)
    model = build(entry, dict(model_yaml='yolo11n.yaml', num_classes=7, pretrained=None,
                               data_preprocessor=dict(type='YOLODetDataPreprocessor')))
    data = model.data_preprocessor(yolo_collate([packed(0), packed(1)]), training=True)
    model.train()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_box', 'loss_cls', 'loss_dfl'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    model.eval()
    data = model.data_preprocessor(yolo_collate([packed(0)]), training=False)
    with torch.no_grad():
        (pred, ) = model(**data, mode='predict')
    boxes = pred.pred_instances.bboxes
    assert boxes.shape[-1] == 4 and len(boxes) == len(pred.pred_instances.scores)
    assert ((pred.pred_instances.labels >= 0) & (pred.pred_instances.labels < 7)).all()


def case_fusion_tta(entry, request):
    import re
    torch.manual_seed(0)
    tta = build(entry, dict(module=dict(type='YOLO11Detector', model_yaml='yolo11n.yaml',
                                         num_classes=7, pretrained=None,
                                         test_cfg=dict(conf_thr=0.3)),
                             method='wbf', max_per_img=50))
    for name, p in tta.module.named_parameters():  # class scores near 0.5: boxes to fuse
        if re.search(r'model\.23\.cv3\.\d\.2\.bias$', name):
            p.data.zero_()
    tta.eval()
    plain, flipped = packed(0), packed(0)
    flipped['inputs'] = flipped['inputs'].flip(-1)
    flipped['data_samples'].set_metainfo(dict(flip=True, flip_direction='horizontal'))
    plain['data_samples'].set_metainfo(dict(flip=False, flip_direction=None))
    data = dict(inputs=[[plain['inputs']], [flipped['inputs']]],
                data_samples=[[plain['data_samples']], [flipped['data_samples']]])
    with torch.no_grad():
        (pred, ) = tta.test_step(data)
    inst = pred.pred_instances
    assert 0 < len(inst.scores) <= 50 and inst.bboxes.dtype == torch.float32
    assert (inst.bboxes >= -1e-3).all() and (inst.bboxes <= 64 + 1e-3).all()


def case_rtdetr(entry, request):
    from spinexr.datasets.collate import yolo_collate
    from spinexr.testing.tiny_models import tiny_rtdetr_yaml
    torch.manual_seed(0)
    model = build(entry, dict(model_yaml=tiny_rtdetr_yaml(), num_classes=7, pretrained=None))
    data = model.data_preprocessor(yolo_collate([packed(0), packed(1)]), training=True)
    model.train()
    losses = model(**data, mode='loss')
    summed = [k for k in losses if 'loss' in k]
    assert summed == ['loss_rtdetr'] and torch.isfinite(losses['loss_rtdetr'])
    model.eval()
    data = model.data_preprocessor(yolo_collate([packed(0)]), training=False)
    with torch.no_grad():
        (pred, ) = model(**data, mode='predict')
    inst = pred.pred_instances
    assert inst.bboxes.shape[-1] == 4 and len(inst.bboxes) == len(inst.scores) <= 30
    assert ((inst.labels >= 0) & (inst.labels < 7)).all()


def case_binary_head(entry, request):
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    head = build(entry, dict(in_channels=8))
    feats = (torch.randn(4, 8), )
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    losses = head.loss(feats, samples)
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0
    preds = head.predict(feats)
    assert len(preds) == 4 and all(p.pred_score.shape == (2, ) for p in preds)
    torch.testing.assert_close(preds[0].pred_score.sum(), torch.tensor(1.0))


def case_focal_loss(entry, request):
    loss = build(entry, dict(gamma=2.0, alpha=0.25))
    logits = torch.tensor([[3.0], [-3.0], [0.0]])
    target = torch.tensor([1.0, 0.0, 1.0])
    value = loss(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits.view(-1), target)
    assert value.ndim == 0 and 0 < float(value) < float(bce)  # focal down-weights easy ones
    assert float(build(entry, dict(gamma=0.0, alpha=None))(logits, target)) == pytest.approx(
        float(bce), rel=1e-5)


def case_weighted_ensemble(entry, request):
    from mmpretrain.structures import DataSample
    preproc = dict(type='ClsDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3)

    def member(name, width):
        return dict(name=name, data_preprocessor=preproc, model=dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18, base_channels=width, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='BinaryClsHead', in_channels=width * 8)))

    torch.manual_seed(0)
    model = build(entry, dict(members=[member('a', 4), member('b', 8)], weights=[0.7, 0.3]))
    model.init_weights()
    model.eval()
    inputs = [torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    out = model.test_step(dict(inputs=inputs, data_samples=samples))
    assert len(out) == 2 and out[0].member_names == ['a', 'b']
    torch.testing.assert_close(out[0].pred_score.sum(), torch.tensor(1.0))
    with pytest.raises(NotImplementedError, match='train the members'):
        model.loss(inputs, samples)  # the ensemble is never trained itself


#: Registered name -> case.
CASES: Dict[str, Callable] = {
    'YOLODetDataPreprocessor': case_yolo_data_preprocessor,
    'YOLOBatchSyncRandomResize': case_batch_resize,
    'YOLO11Detector': case_yolo11,
    'FusionTTAModel': case_fusion_tta,
    'RTDETRDetector': case_rtdetr,
    'BinaryClsHead': case_binary_head,
    'BinaryFocalLoss': case_focal_loss,
    'WeightedEnsembleClassifier': case_weighted_ensemble,
}
