"""YOLOParamSchedulerHook + YOLOOptimWrapperConstructor follow Ultralytics' trainer."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from spinexr.engine.hooks import YOLOParamSchedulerHook
from spinexr.engine.optim import YOLOOptimWrapperConstructor


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def test_constructor_groups_like_ultralytics():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = _model()
    ctor = YOLOOptimWrapperConstructor(dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True,
                                            weight_decay=5e-4), clip_grad=dict(max_norm=10.0)))
    wrapper = ctor(model)
    groups = {g['param_group']: g for g in wrapper.optimizer.param_groups}
    assert [len(groups[k]['params']) for k in ('weight', 'bn', 'bias')] == [2, 1, 3]
    assert groups['weight']['weight_decay'] == 5e-4
    assert groups['bn']['weight_decay'] == 0 and groups['bias']['weight_decay'] == 0
    assert groups['weight']['nesterov'] and groups['weight']['momentum'] == 0.9
    with pytest.raises(ValueError, match='paramwise_cfg'):
        YOLOOptimWrapperConstructor(dict(optimizer=dict(type='SGD', lr=0.1)),
                                    paramwise_cfg=dict(norm_decay_mult=0))


def test_schedule_matches_ultralytics_formulas():
    from mmengine.registry import init_default_scope
    from ultralytics.utils.torch_utils import one_cycle
    init_default_scope('mmdet')
    wrapper = YOLOOptimWrapperConstructor(dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True)))(_model())
    runner = SimpleNamespace(optim_wrapper=wrapper, max_epochs=5, train_dataloader=[0] * 10,
                             iter=0, epoch=0)
    hook = YOLOParamSchedulerHook(lrf=0.01, cos_lr=True, warmup_epochs=3.0)
    hook.before_train(runner)
    lf = one_cycle(1, 0.01, 5)  # Ultralytics' cosine factor

    def lrs():
        return {g['param_group']: (g['lr'], g['momentum']) for g in wrapper.optimizer.param_groups}

    hook.before_train_iter(runner, 0)  # start of warm-up
    assert lrs()['bias'] == (pytest.approx(0.1), pytest.approx(0.8))
    assert lrs()['weight'][0] == 0.0
    runner.iter, runner.epoch = 15, 1  # half-way through 30 warm-up iterations
    hook.before_train_iter(runner, 5)
    assert lrs()['weight'][0] == pytest.approx(0.5 * 0.01 * lf(1))
    assert lrs()['bias'][0] == pytest.approx(0.5 * 0.1 + 0.5 * 0.01 * lf(1))
    assert lrs()['bn'][1] == pytest.approx(0.85)
    runner.iter, runner.epoch = 45, 4  # after warm-up: lr0 * lf(epoch)
    hook.before_train_iter(runner, 5)
    for lr, momentum in lrs().values():
        assert lr == pytest.approx(0.01 * lf(4)) and momentum == 0.9
    assert lf(4) == pytest.approx(((1 - math.cos(4 * math.pi / 5)) / 2) * (0.01 - 1) + 1)


def test_resumed_schedule_keeps_the_configured_momentum():
    """After a resume inside the warm-up the optimizer's groups hold a warm-up momentum (0.85);
    the schedule must still end at the configured 0.9, as in the uninterrupted run."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')

    def build():
        wrapper = YOLOOptimWrapperConstructor(dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True)))(_model())
        return wrapper, SimpleNamespace(optim_wrapper=wrapper, max_epochs=5,
                                        train_dataloader=[0] * 10, iter=0, epoch=0)

    wrapper, runner = build()
    hook = YOLOParamSchedulerHook(warmup_epochs=3.0)
    hook.before_train(runner)
    runner.iter, runner.epoch = 15, 1  # half-way through the warm-up: momentum 0.85
    hook.before_train_iter(runner, 5)
    saved = wrapper.state_dict()

    resumed, runner2 = build()  # a new run that loads the checkpoint's optimizer state
    resumed.load_state_dict(saved)
    assert resumed.optimizer.param_groups[0]['momentum'] == pytest.approx(0.85)
    hook2 = YOLOParamSchedulerHook(warmup_epochs=3.0)
    hook2.before_train(runner2)
    runner2.iter, runner2.epoch = 45, 4  # after the warm-up
    hook2.before_train_iter(runner2, 5)
    assert [g['momentum'] for g in resumed.optimizer.param_groups] == [0.9] * 3
    assert resumed.optimizer.param_groups[0]['lr'] == pytest.approx(0.01 * hook2.lf(4, 5))
