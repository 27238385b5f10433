"""CloseMosaicHook: the pipeline switches for the last ``close_epochs`` epochs of the run as it is
trained, whatever ``max_epochs`` the config was written with."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from spinexr.engine.hooks import CloseMosaicHook

REPO = Path(__file__).resolve().parents[3]
#: The configs that close mosaic, with the epochs they close it for.
RECIPES = {
    'configs/yolo11/yolo11l_35e_vindr-640.py': 10,
    'configs/yolo11/yolo11n_35e_vindr-640.py': 10,
    'configs/yolo11/yolo11l_35e_vindr-640_draft-full.py': 10,
    'configs/ablation/yolo11n_a3_copy-paste_vindr-640.py': 10,
    'configs/rtdetr/rtdetr-l_72e_vindr-640.py': 10,
}
#: Stage-2 pipeline of the toy runs: images of ones come out as zeros.
ZEROS = [dict(type='Normalize', mean=[1.0, 1.0, 1.0], std=[1.0, 1.0, 1.0], to_rgb=False)]


class OnesDataset(Dataset):
    """Four 4x4 images of ones through ``self.pipeline`` (what the hook replaces)."""

    def __init__(self) -> None:
        self.pipeline = Compose([])

    def __len__(self) -> int:
        return 4

    def __getitem__(self, idx: int) -> dict:
        out = self.pipeline(dict(img=np.ones((4, 4, 3), np.float32)))
        return dict(inputs=torch.from_numpy(out['img']).permute(2, 0, 1))


class ToyModel(BaseModel):
    """One weight; the loss only needs to be differentiable."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.w * inputs.float().mean()
        return dict(loss=out.pow(2)) if mode == 'loss' else out


class StageRecorder(Hook):
    """Remembers, per epoch, whether the batches came through the stage-2 pipeline (zeros)."""

    def __init__(self) -> None:
        self.closed = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        closed = bool(data_batch['inputs'].abs().max() == 0)
        assert self.closed.setdefault(runner.epoch, closed) == closed  # one pipeline per epoch


def _run_args(work_dir: str, max_epochs: int, close_epochs: int, workers: int = 0) -> dict:
    """Arguments of a tiny runner: 2 iterations per epoch, a checkpoint every epoch."""
    return dict(
        model=ToyModel(), work_dir=work_dir, default_scope='mmdet',
        experiment_name=f'close_mosaic_{max_epochs}_{close_epochs}_{workers}',
        train_dataloader=dict(dataset=OnesDataset(), batch_size=2, num_workers=workers,
                              persistent_workers=workers > 0,
                              collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[dict(type='CloseMosaicHook', close_epochs=close_epochs,
                           switch_pipeline=ZEROS)],
        log_level='WARNING')


def _train(args: dict, **changes) -> dict:
    """Train a SpinexrRunner built from ``args``; returns the epochs (0-based) -> whether they
    ran the stage-2 pipeline."""
    from spinexr.engine import SpinexrRunner  # its checkpoint loading is the one --resume uses
    runner = SpinexrRunner(**dict(args, **changes))
    recorder = StageRecorder()
    runner.register_hook(recorder)
    runner.train()
    return recorder.closed


@pytest.mark.parametrize('workers', [0, 1], ids=['no-workers', 'persistent-workers'])
def test_switches_at_max_epochs_minus_close_epochs_of_the_run(tmp_path, workers):
    # written for 2 epochs (switch at epoch 1), trained for 4 (--cfg-options max_epochs=4)
    args = _run_args(str(tmp_path), max_epochs=2, close_epochs=1, workers=workers)
    args['train_cfg']['max_epochs'] = 4
    assert _train(args) == {0: False, 1: False, 2: False, 3: True}


def test_resumed_after_the_switch_epoch_switches_at_its_first_epoch(tmp_path):
    assert _train(_run_args(str(tmp_path), max_epochs=3, close_epochs=2)) == {
        0: False, 1: True, 2: True}
    # resume from the end of epoch 2 (after the switch): the resumed run's only epoch is closed
    resumed = _train(_run_args(str(tmp_path), max_epochs=3, close_epochs=2), resume=True,
                     load_from=str(tmp_path / 'epoch_2.pth'))
    assert resumed == {2: True}


def test_close_epochs_zero_never_switches_and_more_than_the_run_closes_it_all(tmp_path):
    assert _train(_run_args(str(tmp_path / 'a'), max_epochs=3, close_epochs=0)) == {
        0: False, 1: False, 2: False}
    assert _train(_run_args(str(tmp_path / 'b'), max_epochs=2, close_epochs=5)) == {
        0: True, 1: True}


@pytest.mark.parametrize('value', [-1, 1.5, '10', True, None])
def test_refuses_a_close_epochs_that_is_not_a_count(value):
    with pytest.raises(ValueError, match='close_epochs must be an integer >= 0'):
        CloseMosaicHook(close_epochs=value, switch_pipeline=ZEROS)


def test_switch_epoch_rule():
    hook = CloseMosaicHook(close_epochs=10, switch_pipeline=ZEROS)
    assert [hook.switch_epoch_for(n) for n in (35, 100, 10, 3)] == [25, 90, 0, 0]
    assert CloseMosaicHook(close_epochs=0, switch_pipeline=ZEROS).switch_epoch_for(35) is None


@pytest.mark.parametrize('config', sorted(RECIPES))
def test_shipped_config_switches_relative_to_the_trained_epochs(config):
    """``--cfg-options train_cfg.max_epochs=100`` on a shipped recipe closes mosaic for its last
    epochs (nothing in the config pins the switch to the written max_epochs)."""
    from mmdet.registry import HOOKS

    import spinexr.engine  # noqa: F401  (registers CloseMosaicHook)
    cfg = Config.fromfile(str(REPO / config))
    cfg.train_cfg.max_epochs = 100
    switch = [h for h in cfg.custom_hooks if h['type'] in ('PipelineSwitchHook', 'CloseMosaicHook')]
    assert len(switch) == 1
    hook = HOOKS.build(switch[0])
    runner = SimpleNamespace(max_epochs=cfg.train_cfg.max_epochs,
                             logger=MMLogger.get_instance('test_close_mosaic'))
    hook.before_train(runner)
    assert hook.switch_epoch == 100 - RECIPES[config]
