"""The main job's building blocks (derived configs, model list, profiles)."""
import pytest
from mmengine.config import Config

from spinexr.apis.comparison import (MODELS, PROFILES, scale_pipeline_sizes, default_profile,
                                     derive_config, run_main_job)


def testscale_pipeline_sizes_rounds_to_32():
    pipe = [dict(type='RandomChoiceResize', scales=[(480, 480), (768, 768)]),
            dict(type='Resize', scale=(640, 640), keep_ratio=True), dict(type='RandomFlip')]
    out = scale_pipeline_sizes(pipe, 0.5)
    assert out[0]['scales'] == [(256, 256), (384, 384)]  # 240 -> 256 (nearest multiple of 32)
    assert out[1]['scale'] == (320, 320) and out[2] == dict(type='RandomFlip')


def test_model_list_and_profiles():
    names = [m.name for m in MODELS]
    assert len(names) == len(set(names)) == 5
    assert {'faster-rcnn_r50_fpn', 'retinanet_r50_fpn', 'sparse-rcnn_r50_fpn', 'dino-4scale_r50',
            'yolo11n'} == set(names)
    assert set(PROFILES) == {'cpu-demo', 'full'}
    assert default_profile() in PROFILES
    with pytest.raises(ValueError, match='unknown profile'):
        run_main_job('/nonexistent', profile='nope')
    with pytest.raises(ValueError, match='unknown model'):
        run_main_job('/nonexistent', profile='cpu-demo', models=['nope'])


@pytest.mark.parametrize('entry', [m for m in MODELS if not m.demo_epochs], ids=lambda m: m.name)
def test_derive_demo_config(entry, tmp_path):
    prof = dict(PROFILES['cpu-demo'])
    out = derive_config(entry, prof, str(tmp_path / 'data'), str(tmp_path / 'c.py'))
    cfg = Config.fromfile(out)
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path / 'data') + '/'
    assert cfg.test_evaluator.ann_file == str(tmp_path / 'data') + '/annotations/test.json'
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == prof['iters']
    assert cfg.val_cfg is None and cfg.model.backbone.depth == 18
    test_resize = cfg.test_dataloader.dataset.pipeline[1]
    assert test_resize.scale == (prof['img_size'], prof['img_size'])
    full = Config.fromfile(
        derive_config(entry, dict(PROFILES['full']), 'd', str(tmp_path / 'f.py')))
    assert full.model.backbone.depth == 50 and full.train_cfg.type == 'EpochBasedTrainLoop'


def test_derive_epoch_demo_config_for_yolo(tmp_path):
    entry = next(m for m in MODELS if m.name == 'yolo11n')
    prof = dict(PROFILES['cpu-demo'])
    cfg = Config.fromfile(derive_config(entry, prof, str(tmp_path / 'data'), str(tmp_path / 'y.py')))
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == entry.demo_epochs and cfg.val_cfg is None
    assert cfg.optim_wrapper.accumulative_counts == 1 and cfg.model.loss_gain == 1
    size = prof['img_size']
    mosaic = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'CachedMosaic')
    assert tuple(mosaic.img_scale) == (size, size)
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert hooks['PipelineSwitchHook'].switch_epoch < entry.demo_epochs
    assert hooks['YOLOParamSchedulerHook'].warmup_epochs == 1.0
    rng = cfg.model.data_preprocessor.batch_augments[0].random_size_range
    assert rng[0] < size < rng[1]
