"""Every component spinexr registers is built and exercised (timm's registry-driven test).

The registrations are not listed here: they are found by importing every module of ``spinexr``
and walking mmengine's registry tree (mmengine's root registries and their mmdet / mmpretrain
children) for objects defined under ``spinexr.``. Each one is looked up in :data:`CASES`, a table
keyed by registered name; a registration without a case fails ``test_component`` with a message
naming it (``test_a_registration_without_a_case_is_named`` shows that with a dummy). Each case
builds the component from a minimal config through the registry it was found in and runs it by
kind: a transform on a small sample, a sampler's indices, a model's loss and predict on a tiny
batch, a metric on a tiny set, a hook / optimizer wrapper / EMA / runner in a short toy run, a
loss on tensors.
"""
import importlib
import json
import math
import os.path as osp
import pickle
import pkgutil
from typing import Callable, Dict, Iterable, List, NamedTuple, Tuple

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope, Registry

#: Module prefix of the components under contract.
PREFIX = 'spinexr.'


class Entry(NamedTuple):
    """One registration: ``registry.get(name)`` is ``obj``."""
    scope: str  # the registry's scope: 'mmengine', 'mmdet', 'mmpretrain'
    kind: str  # the registry's name: 'transform', 'model', 'hook', ...
    name: str
    registry: Registry
    obj: object

    @property
    def id(self) -> str:
        return f"{self.scope}.{self.kind.replace(' ', '_')}.{self.name}"


def import_everything(package: str = 'spinexr') -> List[str]:
    """Import every module of ``package``, so every registration decorator has run.

    This covers ``import spinexr`` (what the configs' ``custom_imports`` do) and the modules it
    does not import itself (e.g. ``spinexr.apis``).
    """
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f'{package}.')]
    for name in names:
        importlib.import_module(name)
    return names


def _tree(registry: Registry, seen: set) -> Iterable[Registry]:
    if id(registry) not in seen:
        seen.add(id(registry))
        yield registry
        for child in registry.children.values():
            yield from _tree(child, seen)


def registered(prefix: str = PREFIX) -> List[Entry]:
    """Registrations of objects defined under ``prefix``, in every registry of mmengine's tree
    (mmengine's root registries and their children: mmdet's, mmpretrain's, ...) and in any
    registry a ``spinexr`` module defines itself."""
    import sys

    import mmengine.registry as mm_registry
    modules = [mm_registry] + [m for n, m in list(sys.modules.items())
                               if n == PREFIX[:-1] or n.startswith(PREFIX)]
    roots = [v for m in modules for v in vars(m).values() if isinstance(v, Registry)]
    seen: set = set()
    found: Dict[Tuple[str, str, str], Entry] = {}
    for root in roots:
        for registry in _tree(root, seen):
            for name, obj in registry.module_dict.items():
                if str(getattr(obj, '__module__', '')).startswith(prefix):
                    found[(registry.scope, registry.name, name)] = Entry(
                        registry.scope, registry.name, name, registry, obj)
    return [found[k] for k in sorted(found)]


def missing_cases(entries: Iterable[Entry], cases: Dict[str, Callable]) -> List[str]:
    """One message per registration that has no case."""
    return [f'{e.id} ({e.obj.__module__}) is registered but has no contract case: add one to '
            f'CASES in tests/contract/test_registry_contract.py under {e.name!r}'
            for e in entries if e.name not in cases]


import_everything()
ENTRIES = registered()


# ----------------------------------------------------------------------------------- helpers
def _build(entry: Entry, cfg: dict, **default_args):
    """Build ``cfg`` (its ``type`` is the entry's name) in the entry's registry and scope."""
    with DefaultScope.overwrite_default_scope(entry.scope):
        return entry.registry.build(dict(type=entry.name, **cfg),
                                    default_args=default_args or None)


def _det_sample(h: int = 96, w: int = 128, seed: int = 0) -> dict:
    from mmdet.structures.bbox import HorizontalBoxes
    rng = np.random.default_rng(seed)
    boxes = np.array([[10., 12., 50., 60.], [60., 40., 100., 90.]], np.float32)
    return dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_shape=(h, w),
                ori_shape=(h, w), img_path=f'/nowhere/{seed}.png', sample_idx=seed,
                gt_bboxes=HorizontalBoxes(boxes), gt_bboxes_labels=np.array([0, 3]),
                gt_ignore_flags=np.zeros(2, dtype=bool))


def _assert_boxes_inside(out: dict) -> None:
    h, w = out['img'].shape[:2]
    boxes = out['gt_bboxes'].numpy()
    assert len(boxes) == len(out['gt_bboxes_labels']) == len(out['gt_ignore_flags'])
    assert (boxes[:, :2] >= -1e-3).all() and (boxes[:, 2] <= w + 1e-3).all()
    assert (boxes[:, 3] <= h + 1e-3).all()


def _packed(seed: int = 0, size: int = 64) -> dict:
    """A packed detection sample (``PackDetInputs``' output) of ``size`` x ``size``."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         scale_factor=(1.0, 1.0), img_id=seed))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 10., 40., 50.]]),
                                       labels=torch.tensor([1]))
    return dict(inputs=torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8),
                data_samples=sample)


def _det_dataset(root, pipeline=()) -> object:
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(
            type='VinDrSpineXRDataset', data_root=str(root), ann_file='annotations/train.json',
            data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
            pipeline=list(pipeline)))


def _cls_dataset(root) -> object:
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(dict(type='VinDrSpineXRClsDataset', data_root=str(root),
                                   ann_file='annotations/train.json', pipeline=[]))


class _ToyModel(torch.nn.Module):
    """Conv + BN + linear: weights, a BN layer and biases for the YOLO parameter groups."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def _toy_base_model():
    from mmengine.model import BaseModel

    class ToyDetector(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.net = _ToyModel()
            self.accumulation_gain = 1.0  # the YOLO11 detector's run-time gain (runner-set)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.net(inputs)
            return dict(loss=out.pow(2).mean()) if mode == 'loss' else out

    return ToyDetector()


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    """Two epochs of four iterations through SpinexrRunner with the YOLO11 recipe's engine
    pieces: YOLOOptimWrapper (accumulating 2) from YOLOOptimWrapperConstructor, the
    YOLOParamSchedulerHook, the YOLOEMAHook with YOLOModelEMA and (added by the runner) the
    ResumeStateHook. Returns the runner after ``train()``."""
    from mmengine.registry import RUNNERS
    work = tmp_path_factory.mktemp('toy_run')
    data = [dict(inputs=torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)))
            for i in range(8)]
    runner = RUNNERS.get('SpinexrRunner')(
        model=_toy_base_model(), work_dir=str(work), default_scope='mmdet',
        experiment_name='contract_toy_run',
        train_dataloader=dict(dataset=data, batch_size=2, collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(type='YOLOOptimWrapper', constructor='YOLOOptimWrapperConstructor',
                           optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
                           accumulative_counts=2, clip_grad=dict(max_norm=10.0)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2)),
        custom_hooks=[
            dict(type='YOLOParamSchedulerHook', lrf=0.01, warmup_epochs=1.0),
            dict(type='YOLOEMAHook', ema_type='YOLOModelEMA', momentum=0.0001, gamma=2000,
                 update_buffers=True, priority=49)])
    runner.train()
    return runner


def _hook(runner, name: str):
    return next(h for h in runner.hooks if type(h).__name__ == name)


# ----------------------------------------------------------------------------------- cases
# Each case takes (entry, request) and builds the component through entry.registry; request gives
# fixtures (tiny_coco, tmp_path, toy_run) on demand, so a case pays only for what it uses.

def case_random_affine(entry, request):
    import random
    random.seed(0)
    t = _build(entry, dict(max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5)))
    out = t(_det_sample())
    assert out['img'].shape == (96, 128, 3) and out['img'].dtype == np.uint8
    _assert_boxes_inside(out)


def case_fit_mosaic_canvas(entry, request):
    out = _build(entry, dict(scale=(64, 48)))(_det_sample())
    assert out['img'].shape == (48, 64, 3)
    _assert_boxes_inside(out)


def case_hsv(entry, request):
    np.random.seed(0)
    sample = _det_sample()
    before = sample['img'].copy()
    out = _build(entry, dict(hue_gain=0.015, saturation_gain=0.7, value_gain=0.4))(sample)
    assert out['img'].shape == before.shape and out['img'].dtype == np.uint8
    assert not np.array_equal(out['img'], before)


def case_cached_mosaic(entry, request):
    np.random.seed(0)
    # mmdet's CachedMosaic passes samples through until its cache holds more than 4
    t = _build(entry, dict(img_scale=(64, 64), max_cached_images=5, random_pop=False))
    outs = [t(_det_sample(96, 128, seed)) for seed in range(6)]
    assert outs[-1]['img'].shape == (128, 128, 3)  # a 2 x 2 mosaic of 64 x 64 tiles
    _assert_boxes_inside(outs[-1])


def case_box_copy_paste(entry, request):
    root = request.getfixturevalue('tiny_coco')
    t = _build(entry, dict(ann_file='annotations/train.json', data_root=str(root), prob=1.0,
                           rare_thr=1.0, seed=0))
    dataset = _det_dataset(root, [dict(type='LoadImageFromFile'),
                                  dict(type='LoadAnnotations', with_bbox=True)])
    grown = 0
    for i in range(len(dataset)):
        sample = dataset[i]
        n = len(sample['gt_bboxes'])
        out = t(sample)
        _assert_boxes_inside(out)
        grown += len(out['gt_bboxes']) > n
    assert grown > 0


def case_load_dicom(entry, request):
    from spinexr.io import write_dicom
    path = request.getfixturevalue('tmp_path') / 'a.dicom'
    arr = np.random.default_rng(0).integers(0, 4096, size=(40, 32)).astype(np.uint16)
    write_dicom(path, arr, bits_stored=12, window=(2047.5, 4095))
    out = _build(entry, dict(color_type='color'))(dict(img_path=str(path)))
    assert out['img'].shape == (40, 32, 3) and out['img'].dtype == np.uint8
    assert out['ori_shape'] == (40, 32)


def case_class_balanced_sampler(entry, request):
    root = request.getfixturevalue('tiny_coco')
    dataset = _det_dataset(root) if entry.scope == 'mmdet' else _cls_dataset(root)
    sampler = _build(entry, dict(seed=0, log=False), dataset=dataset)
    indices = list(iter(sampler))
    assert len(indices) == len(sampler) == len(dataset)
    assert all(isinstance(i, int) and 0 <= i < len(dataset) for i in indices)


def case_det_dataset(entry, request):
    root = request.getfixturevalue('tiny_coco')
    with DefaultScope.overwrite_default_scope(entry.scope):
        dataset = entry.registry.build(dict(
            type=entry.name, data_root=str(root), ann_file='annotations/train.json',
            data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                      dict(type='PackDetInputs')]))
    assert len(dataset) == 8 and len(dataset.metainfo['classes']) == 7
    item = dataset[0]
    assert item['inputs'].shape == (3, 96, 128)
    assert len(item['data_samples'].gt_instances) >= 1  # image 0 is always abnormal


def case_cls_dataset(entry, request):
    root = request.getfixturevalue('tiny_coco')
    dataset = _build(entry, dict(data_root=str(root), ann_file='annotations/train.json',
                                 pipeline=[dict(type='LoadImageFromFile'),
                                           dict(type='PackInputs')]))
    assert len(dataset) == 8 and set(dataset.get_gt_labels().tolist()) <= {0, 1}
    assert dataset[0]['inputs'].shape == (3, 96, 128)


def case_yolo_collate(entry, request):
    collate = entry.registry.get(entry.name)
    batch = collate([_packed(0, 64), _packed(1, 40)])
    assert batch['inputs'].shape == (2, 3, 64, 64)  # padded to the largest, a multiple of 32
    assert (batch['inputs'][1, :, 40:, :] == 114).all()
    assert len(batch['data_samples']) == 2


def case_yolo_data_preprocessor(entry, request):
    from spinexr.datasets.collate import yolo_collate
    preprocessor = _build(entry, dict(pad_size_divisor=32))
    out = preprocessor(yolo_collate([_packed(0), _packed(1)]), training=True)
    assert out['inputs'].shape == (2, 3, 64, 64) and out['inputs'].dtype == torch.float32
    assert 0.0 <= float(out['inputs'].min()) and float(out['inputs'].max()) <= 1.0
    assert out['data_samples'][0].batch_input_shape == (64, 64)


def case_batch_resize(entry, request):
    import random

    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)
    random.seed(0)
    resize = _build(entry, dict(random_size_range=(64, 128), size_divisor=32, interval=1))
    samples = [_packed(i)['data_samples'] for i in range(2)]
    for s in samples:
        s.set_metainfo(dict(batch_input_shape=(64, 64), pad_shape=(64, 64)))
    inputs, samples = resize(torch.zeros(2, 3, 64, 64), samples)
    assert inputs.shape[-1] % 32 == 0 and 64 <= inputs.shape[-1] <= 128
    assert samples[0].batch_input_shape == tuple(inputs.shape[-2:])


def case_yolo11(entry, request):
    from spinexr.datasets.collate import yolo_collate
    torch.manual_seed(0)
    model = _build(entry, dict(model_yaml='yolo11n.yaml', num_classes=7, pretrained=None,
                               data_preprocessor=dict(type='YOLODetDataPreprocessor')))
    data = model.data_preprocessor(yolo_collate([_packed(0), _packed(1)]), training=True)
    model.train()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_box', 'loss_cls', 'loss_dfl'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    model.eval()
    data = model.data_preprocessor(yolo_collate([_packed(0)]), training=False)
    with torch.no_grad():
        (pred, ) = model(**data, mode='predict')
    boxes = pred.pred_instances.bboxes
    assert boxes.shape[-1] == 4 and len(boxes) == len(pred.pred_instances.scores)
    assert ((pred.pred_instances.labels >= 0) & (pred.pred_instances.labels < 7)).all()


def case_fusion_tta(entry, request):
    import re
    torch.manual_seed(0)
    tta = _build(entry, dict(module=dict(type='YOLO11Detector', model_yaml='yolo11n.yaml',
                                         num_classes=7, pretrained=None,
                                         test_cfg=dict(conf_thr=0.3)),
                             method='wbf', max_per_img=50))
    for name, p in tta.module.named_parameters():  # class scores near 0.5: boxes to fuse
        if re.search(r'model\.23\.cv3\.\d\.2\.bias$', name):
            p.data.zero_()
    tta.eval()
    plain, flipped = _packed(0), _packed(0)
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
    model = _build(entry, dict(model_yaml=tiny_rtdetr_yaml(), num_classes=7, pretrained=None))
    data = model.data_preprocessor(yolo_collate([_packed(0), _packed(1)]), training=True)
    model.train()
    losses = model(**data, mode='loss')
    summed = [k for k in losses if 'loss' in k]
    assert summed == ['loss_rtdetr'] and torch.isfinite(losses['loss_rtdetr'])
    model.eval()
    data = model.data_preprocessor(yolo_collate([_packed(0)]), training=False)
    with torch.no_grad():
        (pred, ) = model(**data, mode='predict')
    inst = pred.pred_instances
    assert inst.bboxes.shape[-1] == 4 and len(inst.bboxes) == len(inst.scores) <= 30
    assert ((inst.labels >= 0) & (inst.labels < 7)).all()


def case_binary_head(entry, request):
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    head = _build(entry, dict(in_channels=8))
    feats = (torch.randn(4, 8), )
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    losses = head.loss(feats, samples)
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0
    preds = head.predict(feats)
    assert len(preds) == 4 and all(p.pred_score.shape == (2, ) for p in preds)
    torch.testing.assert_close(preds[0].pred_score.sum(), torch.tensor(1.0))


def case_focal_loss(entry, request):
    loss = _build(entry, dict(gamma=2.0, alpha=0.25))
    logits = torch.tensor([[3.0], [-3.0], [0.0]])
    target = torch.tensor([1.0, 0.0, 1.0])
    value = loss(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits.view(-1), target)
    assert value.ndim == 0 and 0 < float(value) < float(bce)  # focal down-weights easy ones
    assert float(_build(entry, dict(gamma=0.0, alpha=None))(logits, target)) == pytest.approx(
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
    model = _build(entry, dict(members=[member('a', 4), member('b', 8)], weights=[0.7, 0.3]))
    model.init_weights()
    model.eval()
    inputs = [torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    out = model.test_step(dict(inputs=inputs, data_samples=samples))
    assert len(out) == 2 and out[0].member_names == ['a', 'b']
    torch.testing.assert_close(out[0].pred_score.sum(), torch.tensor(1.0))
    with pytest.raises(NotImplementedError, match='train the members'):
        model.loss(inputs, samples)  # the ensemble is never trained itself


def case_vindr_det_metric(entry, request):
    from spinexr.evaluation.coco_ap import load_coco_gt
    root = request.getfixturevalue('tiny_coco')
    ann = str(root / 'annotations' / 'test.json')
    gts, names = load_coco_gt(ann)
    metric = _build(entry, dict(ann_file=ann, n_bootstrap=0))
    metric.dataset_meta = dict(classes=tuple(names))
    metric.process({}, [dict(img_id=g.img_id, pred_instances=dict(
        bboxes=torch.tensor(g.bboxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.full((len(g.labels), ), 0.9),
        labels=torch.as_tensor(g.labels, dtype=torch.int64))) for g in gts])
    result = metric.evaluate(len(gts))
    assert result['vindr/mAP_50'] == pytest.approx(1.0)  # the ground truth, predicted


def case_binary_metric(entry, request):
    from mmengine.evaluator import Evaluator
    from mmpretrain.structures import DataSample
    samples = []
    for i, (y, p) in enumerate([(0, 0.1), (0, 0.4), (1, 0.35), (1, 0.9)]):
        s = DataSample().set_gt_label(y).set_pred_score(torch.tensor([1 - p, p]))
        s.set_metainfo(dict(image_id=f'i{i}', study_id=f's{i}', split='test'))
        samples.append(s)
    with DefaultScope.overwrite_default_scope(entry.scope):
        evaluator = Evaluator(dict(type=entry.name, threshold=0.5, n_bootstrap=0))
    evaluator.process(samples)
    result = evaluator.evaluate(len(samples))
    assert result['binary/auroc'] == pytest.approx(75.0)
    assert result['binary/sensitivity'] == pytest.approx(50.0)
    assert result['binary/specificity'] == pytest.approx(100.0)


def case_optim_wrapper_constructor(entry, request):
    model = _ToyModel()
    with DefaultScope.overwrite_default_scope(entry.scope):
        constructor = entry.registry.build(dict(
            type=entry.name, optim_wrapper_cfg=dict(
                type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, weight_decay=5e-4))))
    wrapper = constructor(model)
    # (mmengine's wrapper appends a parameter-less group of base settings, for logging)
    groups = {g['param_group']: g for g in wrapper.param_groups if 'param_group' in g}
    assert list(groups) == ['weight', 'bn', 'bias']
    assert groups['weight']['weight_decay'] == 5e-4 and groups['bn']['weight_decay'] == 0.0
    assert sum(len(g['params']) for g in groups.values()) == len(list(model.parameters()))


def _accumulate_twice(wrapper, model) -> bool:
    """Two iterations of accumulation 2: no step after the first, a step after the second."""
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    wrapper.initialize_count_status(model, 0, 4)
    with wrapper.optim_context(model):
        loss = model(x).pow(2).mean()
    wrapper.update_params(loss)
    unchanged = all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with wrapper.optim_context(model):
        loss = model(x).pow(2).mean()
    wrapper.update_params(loss)
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return unchanged and changed


def case_yolo_optim_wrapper(entry, request):
    model = _ToyModel()
    wrapper = _build(entry, dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                 accumulative_counts=2, clip_grad=dict(max_norm=10.0)))
    assert wrapper.nominal_accumulate == 2
    assert _accumulate_twice(wrapper, model)


def case_yolo_amp_optim_wrapper(entry, request):
    if not torch.cuda.is_available():
        # mmengine refuses AmpOptimWrapper without an accelerator; on CPU the wrapper runs with
        # bfloat16 autocast and a disabled (pass-through) gradient scaler.
        import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
        request.getfixturevalue('monkeypatch').setattr(amp, 'is_cuda_available', lambda: True)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = _ToyModel().to(device)
    wrapper = _build(entry, dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                 accumulative_counts=2, dtype='bfloat16'))
    assert wrapper.nominal_accumulate == 2

    class OnDevice(torch.nn.Module):  # the inputs of _accumulate_twice are on the CPU
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.to(device)).float()

    assert _accumulate_twice(wrapper, OnDevice(model))


def case_yolo_model_ema(entry, request):
    model = _ToyModel()
    ema = _build(entry, dict(model=model, momentum=0.0001, gamma=2000, update_buffers=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)  # the first update copies
    ema.update_parameters(model)
    assert ema.step_count == 2
    torch.testing.assert_close(ema.module.fc.weight, model.fc.weight)


def case_runner(entry, request):
    runner = request.getfixturevalue('toy_run')
    assert type(runner) is entry.obj
    assert runner.iter == 8 and runner.epoch == 2
    assert osp.isfile(osp.join(runner.work_dir, 'epoch_2.pth'))
    assert runner.model.accumulation_gain == 1.0  # YOLOOptimWrapper sums: no gain needed


def case_resume_state_hook(entry, request):
    from spinexr.engine.checkpoint import load_checkpoint_dict
    runner = request.getfixturevalue('toy_run')
    assert isinstance(_hook(runner, entry.name), entry.obj)  # the runner adds it
    checkpoint = load_checkpoint_dict(f'{runner.work_dir}/epoch_2.pth')
    assert 'resume_state' in checkpoint  # random streams etc. saved for --resume
    assert isinstance(_build(entry, {}), entry.obj)


def case_yolo_ema_hook(entry, request):
    runner = request.getfixturevalue('toy_run')
    hook = _hook(runner, entry.name)
    assert type(hook.ema_model).__name__ == 'YOLOModelEMA'
    # updated once per optimizer step (the accumulation ramps from 1 to 2 in the first epoch),
    # not once per iteration
    assert 0 < hook.ema_model.step_count < runner.iter


def case_param_scheduler_hook(entry, request):
    runner = request.getfixturevalue('toy_run')
    hook = _hook(runner, entry.name)
    last_epoch = runner.epoch - 1  # the lr of the last iteration: epoch 1, after the warm-up
    factor = ((1 - math.cos(last_epoch * math.pi / 2)) / 2) * (0.01 - 1) + 1
    assert hook.lf(last_epoch, 2) == pytest.approx(factor)
    groups = [g for g in runner.optim_wrapper.param_groups if 'param_group' in g]
    assert [g['param_group'] for g in groups] == ['weight', 'bn', 'bias']
    for group in groups:
        assert group['lr'] == pytest.approx(0.01 * factor)
        assert group['momentum'] == pytest.approx(0.9)


def case_detection_ensemble(entry, request):
    from spinexr.evaluation.coco_ap import load_coco_gt
    root = request.getfixturevalue('tiny_coco')
    tmp = request.getfixturevalue('tmp_path')
    ann = str(root / 'annotations' / 'test.json')
    images = json.loads((root / 'annotations' / 'test.json').read_text())['images']
    gts = {g.img_id: g for g in load_coco_gt(ann)[0]}
    members = []
    for name, shift in (('a', 0.0), ('b', 2.0)):
        dump = [dict(img_id=im['id'], img_path=im['file_name'],
                     ori_shape=(im['height'], im['width']),
                     pred_instances=dict(
                         bboxes=(np.asarray(gts[im['id']].bboxes, np.float32).reshape(-1, 4)
                                 + shift),
                         scores=np.full(len(gts[im['id']].labels), 0.8, np.float32),
                         labels=np.asarray(gts[im['id']].labels, np.int64)))
                for im in images]
        path = tmp / f'{name}_test.pkl'
        path.write_bytes(pickle.dumps(dump))
        members.append(dict(name=name, test=str(path)))
    ensemble = _build(entry, dict(members=members, method='wbf', iou_thr=0.55))
    fused = ensemble.fuse(ensemble.pred_files('test'), ann)
    assert len(fused) == len(images)
    for pred in fused:  # each pair of matching boxes fuses into one, half-way between
        expected = np.asarray(gts[pred.img_id].bboxes).reshape(-1, 4) + 1.0
        np.testing.assert_allclose(np.sort(pred.bboxes, 0), np.sort(expected, 0), atol=1e-3)


#: Registered name -> case. A name registered in several registries (mmdet's and mmpretrain's)
#: runs its case once per registry.
CASES: Dict[str, Callable] = {
    # transforms
    'YOLORandomAffine': case_random_affine,
    'FitMosaicCanvas': case_fit_mosaic_canvas,
    'UltralyticsHSVRandomAug': case_hsv,
    'YOLOCachedMosaic': case_cached_mosaic,
    'BoxCopyPaste': case_box_copy_paste,
    'LoadDicomFromFile': case_load_dicom,
    # datasets, sampler, collate
    'VinDrSpineXRDataset': case_det_dataset,
    'VinDrSpineXRClsDataset': case_cls_dataset,
    'ClassBalancedSampler': case_class_balanced_sampler,
    'yolo_collate': case_yolo_collate,
    # models
    'YOLODetDataPreprocessor': case_yolo_data_preprocessor,
    'YOLOBatchSyncRandomResize': case_batch_resize,
    'YOLO11Detector': case_yolo11,
    'FusionTTAModel': case_fusion_tta,
    'RTDETRDetector': case_rtdetr,
    'BinaryClsHead': case_binary_head,
    'BinaryFocalLoss': case_focal_loss,
    'WeightedEnsembleClassifier': case_weighted_ensemble,
    # metrics
    'VinDrDetMetric': case_vindr_det_metric,
    'BinaryClsMetric': case_binary_metric,
    # engine
    'YOLOOptimWrapperConstructor': case_optim_wrapper_constructor,
    'YOLOOptimWrapper': case_yolo_optim_wrapper,
    'YOLOAmpOptimWrapper': case_yolo_amp_optim_wrapper,
    'YOLOModelEMA': case_yolo_model_ema,
    'SpinexrRunner': case_runner,
    'ResumeStateHook': case_resume_state_hook,
    'YOLOEMAHook': case_yolo_ema_hook,
    'YOLOParamSchedulerHook': case_param_scheduler_hook,
    # task utils (spinexr.apis)
    'DetectionEnsemble': case_detection_ensemble,
}


@pytest.mark.parametrize('entry', ENTRIES, ids=[e.id for e in ENTRIES])
def test_component(entry, request):
    if entry.name not in CASES:
        pytest.fail(missing_cases([entry], CASES)[0])
    CASES[entry.name](entry, request)


def test_the_newer_components_are_found():
    """The walk finds what the recipes use, in the registries the configs resolve them from."""
    ids = {e.id for e in ENTRIES}
    assert {
        'mmdet.transform.YOLORandomAffine', 'mmdet.transform.YOLOCachedMosaic',
        'mmdet.transform.FitMosaicCanvas', 'mmdet.transform.UltralyticsHSVRandomAug',
        'mmdet.model.YOLOBatchSyncRandomResize', 'mmdet.model.YOLOModelEMA',
        'mmdet.optim_wrapper.YOLOOptimWrapper', 'mmdet.optim_wrapper.YOLOAmpOptimWrapper',
        'mmengine.function.yolo_collate', 'mmdet.dataset.VinDrSpineXRDataset',
        'mmpretrain.dataset.VinDrSpineXRClsDataset', 'mmdet.data_sampler.ClassBalancedSampler',
        'mmpretrain.data_sampler.ClassBalancedSampler', 'mmdet.transform.BoxCopyPaste',
        'mmpretrain.model.BinaryFocalLoss', 'mmpretrain.model.WeightedEnsembleClassifier',
        'mmdet.metric.VinDrDetMetric', 'mmpretrain.metric.BinaryClsMetric',
        'mmdet.hook.YOLOEMAHook', 'mmengine.runner.SpinexrRunner',
    } <= ids


def test_every_case_names_a_registration():
    """No stale cases: every key of CASES is still registered somewhere."""
    assert sorted(set(CASES) - {e.name for e in ENTRIES}) == []


def test_a_registration_without_a_case_is_named():
    """A component registered under spinexr without a case is reported by name."""
    from mmdet.registry import TRANSFORMS

    class Dummy:
        pass

    Dummy.__module__ = 'spinexr.datasets.transforms.dummy'
    TRANSFORMS.register_module(name='ContractDummyTransform', module=Dummy)
    try:
        found = [e for e in registered() if e.name == 'ContractDummyTransform']
        assert [e.id for e in found] == ['mmdet.transform.ContractDummyTransform']
        (message, ) = missing_cases(found, CASES)
        assert 'mmdet.transform.ContractDummyTransform' in message
        assert 'has no contract case' in message
        assert missing_cases([e for e in ENTRIES], CASES) == []
    finally:
        TRANSFORMS.module_dict.pop('ContractDummyTransform', None)
    assert not [e for e in registered() if e.name == 'ContractDummyTransform']
