"""Fixtures of the registry contract; assertion rewriting for its case modules.

The cases live in ``_cases_*.py`` beside this file and are called from
``test_registry_contract.py``; pytest rewrites ``assert`` (for its detailed failure messages)
only in test modules and in modules registered here before they are imported.
"""
import pytest
import torch

pytest.register_assert_rewrite('contract._cases_data', 'contract._cases_models',
                               'contract._cases_engine', 'contract._contract_helpers')


def _toy_base_model():
    from mmengine.model import BaseModel

    from contract._contract_helpers import ToyModel

    class ToyDetector(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.net = ToyModel()
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
