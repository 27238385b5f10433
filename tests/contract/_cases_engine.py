"""Contract cases for training and evaluation machinery: metrics, the optimizer wrapper
constructor, optimizer wrappers, EMA, the runner, hooks and the detection ensemble.

Each case takes ``(entry, request)`` and builds the registered component through
``entry.registry``; the runner and hook cases read the ``toy_run`` fixture (``conftest.py``), a
short run through SpinexrRunner. :data:`CASES` maps registered names to cases;
``test_registry_contract.py`` runs them.
"""
import json
import math
import os.path as osp
import pickle
from typing import Callable, Dict

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from contract._contract_helpers import ToyModel, build


def _hook(runner, name: str):
    return next(h for h in runner.hooks if type(h).__name__ == name)


def case_vindr_det_metric(entry, request):
    from spinexr.evaluation.coco_ap import load_coco_gt
    root = request.getfixturevalue('tiny_coco')
    ann = str(root / 'annotations' / 'test.json')
    gts, names = load_coco_gt(ann)
    metric = build(entry, dict(ann_file=ann, n_bootstrap=0))
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
    model = ToyModel()
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
    model = ToyModel()
    wrapper = build(entry, dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
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
    model = ToyModel().to(device)
    wrapper = build(entry, dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
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
    model = ToyModel()
    ema = build(entry, dict(model=model, momentum=0.0001, gamma=2000, update_buffers=True))
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
    assert isinstance(build(entry, {}), entry.obj)


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


def case_close_mosaic_hook(entry, request):
    hook = build(entry, dict(close_epochs=10, switch_pipeline=[]))
    assert isinstance(hook, entry.obj)
    # the switch epoch follows the run's max_epochs (Ultralytics' close_mosaic), 0 never switches
    assert [hook.switch_epoch_for(n) for n in (35, 100, 5)] == [25, 90, 0]
    assert build(entry, dict(close_epochs=0, switch_pipeline=[])).switch_epoch_for(35) is None
    with pytest.raises(ValueError, match='close_epochs'):
        build(entry, dict(close_epochs=-1, switch_pipeline=[]))


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
    ensemble = build(entry, dict(members=members, method='wbf', iou_thr=0.55))
    fused = ensemble.fuse(ensemble.pred_files('test'), ann)
    assert len(fused) == len(images)
    for pred in fused:  # each pair of matching boxes fuses into one, half-way between
        expected = np.asarray(gts[pred.img_id].bboxes).reshape(-1, 4) + 1.0
        np.testing.assert_allclose(np.sort(pred.bboxes, 0), np.sort(expected, 0), atol=1e-3)


#: Registered name -> case.
CASES: Dict[str, Callable] = {
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
    'CloseMosaicHook': case_close_mosaic_hook,
    # task utils (spinexr.apis)
    'DetectionEnsemble': case_detection_ensemble,
}
