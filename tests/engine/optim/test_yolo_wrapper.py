"""YOLOOptimWrapper accumulates gradients as Ultralytics' trainer does."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from torch import nn

from spinexr.engine.hooks import YOLOParamSchedulerHook
from spinexr.engine.optim import YOLOOptimWrapper, YOLOOptimWrapperConstructor
from spinexr.utils.cli import apply_train_args


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))


def _wrapper(model, accumulate, cls=YOLOOptimWrapper):
    # Adam counts its steps in its state: the test reads them (lr may be 0 in the warm-up)
    return cls(torch.optim.Adam(model.parameters(), lr=1.0), accumulative_counts=accumulate)


def _run(wrapper, model, iters, max_iters, hook=None, nb=10, max_epochs=5):
    """Train ``iters`` iterations; return the iterations that stepped the optimizer."""
    wrapper.initialize_count_status(model, 0, max_iters)
    runner = SimpleNamespace(optim_wrapper=wrapper, max_epochs=max_epochs,
                             train_dataloader=[0] * nb, iter=0, epoch=0)
    if hook is not None:
        hook.before_train(runner)
    stepped = []
    for ni in range(iters):
        runner.iter, runner.epoch = ni, ni // nb
        if hook is not None:
            hook.before_train_iter(runner, ni % nb)
        steps = float(wrapper.optimizer.state_dict()['state'].get(0, {}).get('step', 0))
        wrapper.update_params(model(torch.ones(2, 3)).sum())
        if float(wrapper.optimizer.state_dict()['state'].get(0, {}).get('step', 0)) != steps:
            stepped.append(ni)
    return stepped


def test_warmup_ramp_and_step_rule_of_ultralytics():
    """Nominal 4, warm-up nw = round(3 epochs x 10 iterations) = 30. Ultralytics' count during
    the warm-up is max(1, round(1 + 3 ni / 30)) (numpy rounds .5 to even): 1 for ni 0-4, 2 for
    5-15 (2.5 at ni 15 rounds to 2), 3 for 16-24, 4 from 25 (3.5 at ni 25 rounds to 4), and it
    steps when ni - last_step >= count, starting from last_step = -1: every iteration up to 4,
    then every 2nd to 14, every 3rd to 23, every 4th from 27."""
    model = _model()
    wrapper = _wrapper(model, 4)
    hook = YOLOParamSchedulerHook(warmup_epochs=3.0)
    stepped = _run(wrapper, model, 45, 50, hook=hook)
    assert stepped == [0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 17, 20, 23, 27, 31, 35, 39, 43]
    # without the ramp (or with mmengine's wrapper) the count is 4 from the first iteration
    model = _model()
    wrapper = _wrapper(model, 4)
    hook = YOLOParamSchedulerHook(warmup_epochs=3.0, accumulation_ramp=False)
    assert _run(wrapper, model, 12, 50, hook=hook) == [3, 7, 11]


def test_gradients_are_summed_and_no_forced_last_step():
    """Ultralytics sums the gradients of a window (mmengine divides the loss by the count) and
    does not step an unfinished window at the end of training (mmengine forces that step)."""
    x = torch.ones(2, 3)
    grads = []
    for _ in range(2):
        model = _model()
        model(x).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    model = _model()
    start = [p.detach().clone() for p in model.parameters()]
    wrapper = YOLOOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0), accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 3)
    wrapper.update_params(model(x).sum())
    assert not wrapper.should_update() and wrapper.has_pending_gradients()
    wrapper.update_params(model(x).sum())  # steps: lr 1, SGD: p1 = p0 - (g + g)
    assert wrapper._last_step == 1
    for p0, p1, g in zip(start, model.parameters(), grads[0]):
        torch.testing.assert_close(p1.detach(), p0 - 2 * g)
    # the third and last iteration opens a window that is never stepped
    wrapper.update_params(model(x).sum())
    assert not wrapper.should_update() and wrapper.has_pending_gradients()
    reference = _model()
    mm = OptimWrapper(torch.optim.SGD(reference.parameters(), lr=1.0), accumulative_counts=2)
    mm.initialize_count_status(reference, 0, 3)
    for _ in range(3):
        mm.update_params(reference(x).sum())
    assert mm.should_update()  # mmengine steps the last, incomplete window


def test_window_spans_an_epoch_end_and_resumes(tmp_path):
    """A window open at a checkpoint continues after loading the state (iteration of the last
    step saved beside the optimizer state)."""
    model = _model()
    wrapper = _wrapper(model, 4)
    assert _run(wrapper, model, 6, 20, nb=5) == [3]
    assert wrapper.has_pending_gradients()
    state = wrapper.state_dict()
    torch.save(state, tmp_path / 'w.pth')
    state = torch.load(tmp_path / 'w.pth', weights_only=True)
    fresh = _wrapper(model, 4)
    fresh.load_state_dict(state)
    fresh.initialize_count_status(model, 6, 20)  # the loop starts at iteration 6
    fresh.update_params(model(torch.ones(2, 3)).sum())  # ni 6: 6 - 3 < 4
    assert not fresh.should_update()
    fresh.update_params(model(torch.ones(2, 3)).sum())  # ni 7: steps
    assert fresh._last_step == 7 and not fresh.has_pending_gradients()
    assert fresh.should_update()  # still True after the step: the EMA hook asks then


def test_built_by_the_constructor_and_switched_to_amp_by_train_args():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    wrapper = YOLOOptimWrapperConstructor(dict(
        type='YOLOOptimWrapper', accumulative_counts=4, clip_grad=dict(max_norm=10.0),
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))(_model())
    assert isinstance(wrapper, YOLOOptimWrapper) and wrapper.nominal_accumulate == 4
    cfg = Config(dict(optim_wrapper=dict(type='YOLOOptimWrapper', accumulative_counts=4)))
    apply_train_args(cfg, amp=True)
    assert cfg.optim_wrapper.type == 'YOLOAmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    with pytest.raises(ValueError, match='--amp'):
        apply_train_args(Config(dict(optim_wrapper=dict(type='ApexOptimWrapper'))), amp=True)


def test_shipped_recipe_uses_it_with_unit_loss_gain():
    cfg = Config.fromfile('configs/yolo11/yolo11l_35e_vindr-640.py')
    assert cfg.optim_wrapper.type == 'YOLOOptimWrapper'
    assert cfg.optim_wrapper.accumulative_counts == 4
    assert cfg.model.loss_gain == 1.0


def test_grad_norm_logged_one_step_later_without_reading_it_back():
    """Clipping's norm goes to the message hub at the next step (mmengine calls float() on it
    at once: a device-to-host sync per step)."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_grad_norm')
    model = _model()
    wrapper = YOLOOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=1,
                               clip_grad=dict(max_norm=10.0))
    wrapper.message_hub = hub
    wrapper.initialize_count_status(model, 0, 10)
    x = torch.ones(2, 3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        wrapper.update_params(model(x).sum())
    assert not [e for e in prof.events() if e.name in ('aten::item', 'aten::_local_scalar_dense')]
    assert 'train/grad_norm' not in hub.log_scalars
    first = float(wrapper._pending_norm)
    wrapper.update_params(model(x).sum())
    assert hub.get_scalar('train/grad_norm').current() == first
