"""A resumed run of the YOLO11 recipe continues the uninterrupted run bitwise (CPU, no workers).

The straight run trains 3 epochs and checkpoints every epoch; the resumed run takes the same
config, resumes from the straight run's ``epoch_1.pth`` (what ``--resume`` does after a kill during
epoch 2: mmengine resumes at the last epoch end) and trains to the end. The recipe's stateful
parts are all exercised: mosaic and mixup caches, random affine / HSV / flip, the multi-scale batch
resize, warm-up (lr and momentum), gradient accumulation over epoch ends (3 iterations per epoch,
4 per optimizer step), the EMA, validation between epochs, and the close-mosaic switch (epoch 3).
"""
import copy
import shutil
from pathlib import Path

import pytest
import torch

from spinexr.testing import make_tiny_coco

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'yolo11' / 'yolo11n_35e_vindr-640.py'


@pytest.fixture
def torch_flags():
    """One intra-op thread (on a loaded 2-core machine several threads are ~10x slower for this
    tiny model); ``randomness.deterministic=True`` switches torch's global flags: give all back."""
    flags = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(flags[0])
    torch.use_deterministic_algorithms(flags[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags[2:]


def recipe_config(data_root: Path, work_dir: Path, max_epochs: int = 3):
    """The YOLO11-n recipe at 64 px on a tiny dataset (all settings but the sizes kept)."""
    from mmengine.config import Config

    from spinexr.experiments.profiles import scale_pipeline_sizes

    cfg = Config.fromfile(str(CONFIG))
    root = str(data_root) + '/'
    cfg.data_root = root
    factor = 64 / 640
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, factor)
    for e in (cfg.val_evaluator, cfg.test_evaluator):
        e.ann_file = root + 'annotations/test.json'
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'CachedMixUp':
            t['prob'] = 0.5  # let mixup fire in a few iterations
    cfg.train_dataloader.batch_size = 4  # 12 images: 3 iterations per epoch, 4 per step
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 2
    for hook in cfg.custom_hooks:
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = 2  # the resume falls inside the warm-up
        if hook['type'] == 'CloseMosaicHook':
            hook['close_epochs'] = max_epochs - 2  # mosaic closes after the resume (epoch 3 of 3)
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], factor)
    # never the pipeline's 64 px, so the size the batch resize picked last matters after a resume
    cfg.model.data_preprocessor.batch_augments[0]['random_size_range'] = (96, 128)
    cfg.train_cfg.max_epochs = max_epochs
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = str(work_dir)
    return cfg


def _train(cfg, name: str, **changes) -> None:
    from spinexr.engine import SpinexrRunner
    cfg = copy.deepcopy(cfg)
    cfg.update(experiment_name=name, **changes)
    SpinexrRunner.from_cfg(cfg).train()


def _load(path: Path) -> dict:
    from spinexr.engine import load_checkpoint_dict
    return load_checkpoint_dict(str(path))


@pytest.mark.slow
def test_resumed_recipe_run_equals_straight_run(tmp_path, torch_flags):
    data = tmp_path / 'data'
    make_tiny_coco(str(data), split='train', num_images=12, img_size=(64, 80), seed=0)
    make_tiny_coco(str(data), split='test', num_images=2, img_size=(64, 80), seed=1)

    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    cfg = recipe_config(data, straight)
    _train(cfg, 'straight')
    resumed.mkdir()
    shutil.copy(straight / 'epoch_1.pth', resumed / 'epoch_1.pth')
    _train(cfg, 'resumed', work_dir=str(resumed), resume=True,
           load_from=str(resumed / 'epoch_1.pth'))

    first, a, b = (_load(straight / 'epoch_1.pth'), _load(straight / 'epoch_3.pth'),
                   _load(resumed / 'epoch_3.pth'))
    assert b['meta']['epoch'] == a['meta']['epoch'] == 3
    assert b['meta']['iter'] == a['meta']['iter'] == 9
    # training moved the weights after the resume point, so equality below is not trivial
    assert any(not torch.equal(first['state_dict'][k], a['state_dict'][k])
               for k in a['state_dict'] if a['state_dict'][k].is_floating_point())
    for key in ('state_dict', 'ema_state_dict'):  # EMA weights, and the raw model's
        assert a[key].keys() == b[key].keys()
        differ = [k for k in a[key] if not torch.equal(a[key][k], b[key][k])]
        assert not differ, f'{key}: {len(differ)} tensors differ, e.g. {differ[:3]}'
    moments = [(s['momentum_buffer'], t['momentum_buffer'])
               for s, t in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values())]
    assert all(torch.equal(x, y) for x, y in moments)
