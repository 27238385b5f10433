"""YOLOEMAHook + ExpMomentumEMA reproduce Ultralytics' ModelEMA."""
from types import SimpleNamespace

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from spinexr.engine.hooks import YOLOEMAHook


def test_exp_momentum_ema_matches_ultralytics_model_ema():
    from mmdet.models.layers import ExpMomentumEMA
    from ultralytics.utils.torch_utils import ModelEMA

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ours = ExpMomentumEMA(model, momentum=0.0001, gamma=2000, update_buffers=True)
    theirs = ModelEMA(model, decay=0.9999, tau=2000)
    ours.update_parameters(model)  # mmengine's first update copies (Ultralytics: d = 5e-4)
    theirs.update(model)
    for _ in range(300):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            model[1].running_mean.add_(0.05)
        ours.update_parameters(model)
        theirs.update(model)
    a, b = ours.module.state_dict(), theirs.ema.state_dict()
    for k in b:
        if b[k].dtype.is_floating_point:
            torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3)
    # and the EMA really lags the model (the decay is not trivially 0 or 1)
    assert not torch.allclose(a['0.weight'], model.state_dict()['0.weight'], atol=1e-3)


def test_hook_updates_once_per_optimizer_step():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # ExpMomentumEMA lives in mmdet's registry
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=4)
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper, iter=0, epoch=0, max_iters=12,
                             max_epochs=1)
    hook = YOLOEMAHook(ema_type='ExpMomentumEMA', momentum=0.0001, gamma=2000)
    hook.before_run(runner)
    wrapper.initialize_count_status(model, 0, 12)
    for i in range(12):
        runner.iter = i
        wrapper.update_params(model(torch.randn(2, 3)).pow(2).mean())
        hook.after_train_iter(runner, i)
    assert hook.ema_model.steps == 3  # 12 iterations / 4 accumulated = 3 optimizer steps
