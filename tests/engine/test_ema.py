"""YOLOModelEMA: the average of ExpMomentumEMA and of Ultralytics' ModelEMA, without a host sync."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from torch import nn

from spinexr.engine import YOLOModelEMA
from spinexr.engine.hooks import YOLOEMAHook


def _net() -> nn.Module:
    """A tiny Conv+BN+SiLU network: parameters, float BN buffers and num_batches_tracked."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU(), nn.Conv2d(4, 2, 1))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """A real SGD step in train mode (moves parameters and BN running statistics)."""
    model.train()
    opt.zero_grad()
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()


def _ema_pair(update_buffers=True, momentum=0.0001, gamma=2000, interval=1):
    from mmdet.models.layers import ExpMomentumEMA
    model = _net()
    kw = dict(momentum=momentum, gamma=gamma, interval=interval, update_buffers=update_buffers)
    return model, YOLOModelEMA(model, **kw), ExpMomentumEMA(model, **kw)


def _assert_state_equal(a: dict, b: dict, exact_ints: bool = True) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=k)
        elif exact_ints:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize('update_buffers,interval', [(True, 1), (False, 1), (True, 3)])
def test_equals_exp_momentum_ema(update_buffers, interval):
    # a fast warm-up (gamma=4) so that the average really lags the model after a few updates
    model, ours, ref = _ema_pair(update_buffers, momentum=0.01, gamma=4, interval=interval)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(10):
        _train_step(model, opt)
        ours.update_parameters(model)
        ref.update_parameters(model)
        _assert_state_equal(ours.state_dict(), ref.state_dict())
    assert ours.step_count == 10 and int(ours.steps) == 10
    averaged = ('0.weight', '3.bias') + (('1.running_mean', ) if update_buffers else ())
    for k in averaged:  # not trivially a copy of the model
        assert not torch.allclose(ours.module.state_dict()[k], model.state_dict()[k], atol=1e-3)
    if not update_buffers:  # buffers copied on every update, as mmengine does
        assert torch.equal(ours.module[1].running_mean, model[1].running_mean)


def test_equals_exp_momentum_ema_on_yolo11n():
    """The real network: 500 state tensors (DFL's frozen conv, BN statistics, ...)."""
    from mmdet.models.layers import ExpMomentumEMA
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    model = DetectionModel('yolo11n.yaml', nc=7, verbose=False)
    ours = YOLOModelEMA(model, momentum=0.01, gamma=4)
    ref = ExpMomentumEMA(model, momentum=0.01, gamma=4, update_buffers=True)
    for _ in range(5):
        with torch.no_grad():
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.add_(torch.randn_like(v), alpha=0.1)
        ours.update_parameters(model)
        ref.update_parameters(model)
    _assert_state_equal(ours.state_dict(), ref.state_dict())
    assert ours.step_count == 5


def test_equals_ultralytics_model_ema_offset_only_at_first_update():
    """Same count after each update (mmengine's ``steps`` = Ultralytics' ``updates``), the
    same weight for update k >= 2; update 1 copies where Ultralytics keeps d(1) of its
    construction-time copy."""
    from ultralytics.utils.torch_utils import ModelEMA
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    theirs = ModelEMA(model, decay=0.99, tau=4)
    ours = YOLOModelEMA(model, momentum=0.01, gamma=4)
    start = copy.deepcopy(model.state_dict())
    _train_step(model, opt)  # the model moves before the first update
    ours.update_parameters(model)
    theirs.update(model)
    d1 = theirs.decay(1)
    assert d1 == pytest.approx(1 - ours.weight(0))
    for k, v in theirs.ema.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(ours.module.state_dict()[k], model.state_dict()[k])
            torch.testing.assert_close(v, model.state_dict()[k].lerp(start[k], d1))
    # num_batches_tracked: Ultralytics keeps its construction-time value, here it is copied
    assert int(theirs.ema[1].num_batches_tracked) == 0
    assert int(ours.module[1].num_batches_tracked) == 1
    # from the same state on, both step alike
    theirs.ema.load_state_dict(ours.module.state_dict())
    for _ in range(9):
        _train_step(model, opt)
        ours.update_parameters(model)
        theirs.update(model)
        assert ours.step_count == theirs.updates
    _assert_state_equal(ours.module.state_dict(), theirs.ema.state_dict())
    # ... and neither follows it after that (mmengine neither): the model's count is 10
    assert int(ours.module[1].num_batches_tracked) == 1


def test_defaults_are_ultralytics_decay_and_tau():
    from ultralytics.utils.torch_utils import ModelEMA
    model = _net()
    ours, theirs = YOLOModelEMA(model), ModelEMA(model)  # 0.0001 / 2000 vs 0.9999 / 2000
    for steps in (1, 10, 1000, 100000):
        assert 1 - ours.weight(steps) == pytest.approx(theirs.decay(steps + 1), rel=1e-12)


def _host_syncs(ema, model) -> int:
    """``aten::item`` / ``aten::_local_scalar_dense`` events (device-to-host reads on CUDA) in
    one ``update_parameters`` call."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ema.update_parameters(model)
    return sum(e.count for e in prof.key_averages()
               if e.key in ('aten::item', 'aten::_local_scalar_dense', 'aten::is_nonzero'))


def test_update_reads_nothing_back_from_the_device():
    model, ours, ref = _ema_pair()
    for _ in range(3):  # the first (copying) update and two blending updates
        assert _host_syncs(ours, model) == 0
        assert _host_syncs(ref, model) > 0  # mmengine/mmdet: tensor `steps` read per tensor


def test_state_dict_round_trip_continues_the_count(tmp_path):
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    ema = YOLOModelEMA(model, momentum=0.01, gamma=4)
    for _ in range(4):
        _train_step(model, opt)
        ema.update_parameters(model)
    torch.save(ema.state_dict(), tmp_path / 'ema.pth')
    resumed = YOLOModelEMA(_net(), momentum=0.01, gamma=4)  # a fresh instance, count 0
    resumed.load_state_dict(torch.load(tmp_path / 'ema.pth', weights_only=True))
    assert resumed.step_count == 4
    _train_step(model, opt)
    ema.update_parameters(model)
    resumed.update_parameters(model)
    assert resumed.step_count == ema.step_count == 5 and int(resumed.steps) == 5
    for k, v in ema.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


def test_follows_a_replaced_source_tensor():
    model, ours, ref = _ema_pair(momentum=0.01, gamma=4)
    ours.update_parameters(model)
    ref.update_parameters(model)
    # replace a parameter and a buffer object (what module.to() does with buffers)
    model[0].weight = nn.Parameter(model[0].weight.detach() + 1)
    model[1].running_mean = model[1].running_mean.double() + 1  # another dtype, too
    ours.update_parameters(model)
    ref.update_parameters(model)
    _assert_state_equal(ours.state_dict(), ref.state_dict())


def test_yolo_ema_hook_builds_it_by_name():
    init_default_scope('mmdet')
    model = _net()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper, iter=0, epoch=0, max_iters=6,
                             max_epochs=1)
    hook = YOLOEMAHook(ema_type='YOLOModelEMA', momentum=0.0001, gamma=2000, update_buffers=True)
    hook.before_run(runner)
    assert type(hook.ema_model) is YOLOModelEMA
    wrapper.initialize_count_status(model, 0, 6)
    for i in range(6):
        runner.iter = i
        wrapper.update_params(model(torch.randn(2, 3, 8, 8)).pow(2).mean())
        hook.after_train_iter(runner, i)
    assert hook.ema_model.step_count == 3 and int(hook.ema_model.steps) == 3


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='momentum'):
        YOLOModelEMA(_net(), momentum=1.5)
    with pytest.raises(ValueError, match='interval'):
        YOLOModelEMA(_net(), interval=0)


class _ToyModel(BaseModel):
    """The tiny network as an mmengine model (loss = mean squared output)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.net(inputs)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def _runner(work_dir, max_iters, resume=False):
    from spinexr.engine import SpinexrRunner
    data = [dict(inputs=torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)))
            for i in range(8)]
    return SpinexrRunner(
        model=_ToyModel(), work_dir=str(work_dir), default_scope='mmdet', resume=resume,
        experiment_name=f'ema_{max_iters}_{resume}',
        train_dataloader=dict(dataset=data, batch_size=2, collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1), accumulative_counts=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
        custom_hooks=[dict(type='YOLOEMAHook', ema_type='YOLOModelEMA', momentum=0.0001,
                           gamma=2000, update_buffers=True, priority=49)])


def test_runner_builds_it_and_resume_continues_the_count(tmp_path):
    runner = _runner(tmp_path, max_iters=4)
    runner.train()
    ema = [h for h in runner.hooks if isinstance(h, YOLOEMAHook)][0].ema_model
    assert type(ema) is YOLOModelEMA and ema.step_count == 2  # 4 iterations, 2 per step
    resumed = _runner(tmp_path, max_iters=8, resume=True)
    resumed.train()
    ema = [h for h in resumed.hooks if isinstance(h, YOLOEMAHook)][0].ema_model
    assert ema.step_count == 4 and int(ema.steps) == 4
