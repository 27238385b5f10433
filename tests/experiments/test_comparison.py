"""The main job's building blocks (derived configs, model list, profiles)."""
import pytest
from mmengine.config import Config

from spinexr.experiments.comparison import PROFILES
from spinexr.experiments.comparison import run_comparison as run_main_job
from spinexr.experiments.detector_configs import MODELS, demo_iters, derive_config
from spinexr.experiments.profiles import (default_profile, scale_anchor_sizes,
                                          scale_pipeline_sizes)


def testscale_pipeline_sizes_rounds_to_32():
    pipe = [dict(type='RandomChoiceResize', scales=[(480, 480), (768, 768)]),
            dict(type='Resize', scale=(640, 640), keep_ratio=True), dict(type='RandomFlip')]
    out = scale_pipeline_sizes(pipe, 0.5)
    assert out[0]['scales'] == [(256, 256), (384, 384)]  # 240 -> 256 (nearest multiple of 32)
    assert out[1]['scale'] == (320, 320) and out[2] == dict(type='RandomFlip')


def test_scale_anchor_sizes():
    model = dict(rpn_head=dict(anchor_generator=dict(type='AnchorGenerator', scales=[4],
                                                     ratios=[0.5, 1.0], strides=[4, 8])),
                 bbox_head=dict(anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2,
                                                      scales_per_octave=3, strides=[8])),
                 data_preprocessor=dict(pad_size_divisor=32))
    out = scale_anchor_sizes(model, 0.5)
    assert out['rpn_head']['anchor_generator']['scales'] == [2.0]
    assert out['rpn_head']['anchor_generator']['strides'] == [4, 8]
    assert out['bbox_head']['anchor_generator']['octave_base_scale'] == 1.0
    assert out['bbox_head']['anchor_generator']['scales_per_octave'] == 3
    assert out['data_preprocessor'] == model['data_preprocessor']
    assert model['rpn_head']['anchor_generator']['scales'] == [4]  # input unchanged


def test_model_list_and_profiles():
    names = [m.name for m in MODELS]
    assert len(names) == len(set(names)) == 6
    assert {'faster-rcnn_r50_fpn', 'retinanet_r50_fpn', 'sparse-rcnn_r50_fpn', 'dino-4scale_r50',
            'yolo11n', 'rtdetr-l'} == set(names)
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
    assert cfg.train_cfg.max_iters == demo_iters(entry, prof) == entry.demo_iters
    assert derive_config_iters(entry, dict(prof, iters=7), tmp_path) == 7  # --iters wins
    assert cfg.val_cfg is None and cfg.model.backbone.depth == 18
    test_resize = cfg.test_dataloader.dataset.pipeline[1]
    assert test_resize.scale == (prof['img_size'], prof['img_size'])
    full = Config.fromfile(
        derive_config(entry, dict(PROFILES['full']), 'd', str(tmp_path / 'f.py')))
    assert full.model.backbone.depth == 50 and full.train_cfg.type == 'EpochBasedTrainLoop'


def derive_config_iters(entry, prof, tmp_path) -> int:
    cfg = Config.fromfile(derive_config(entry, prof, 'd', str(tmp_path / 'i.py')))
    return cfg.train_cfg.max_iters


@pytest.mark.parametrize('name', ['faster-rcnn_r50_fpn', 'retinanet_r50_fpn'])
def test_demo_anchors_follow_the_image_size(name, tmp_path):
    """At 320 px the anchors are half of the 640 px config's, as the lesions are."""
    entry = next(m for m in MODELS if m.name == name)
    demo = Config.fromfile(derive_config(entry, dict(PROFILES['cpu-demo']), 'd',
                                         str(tmp_path / 'd.py'))).model
    full = Config.fromfile(derive_config(entry, dict(PROFILES['full']), 'd',
                                         str(tmp_path / 'f.py'))).model
    head = 'rpn_head' if name.startswith('faster') else 'bbox_head'
    key = 'scales' if name.startswith('faster') else 'octave_base_scale'
    ratio = PROFILES['cpu-demo']['img_size'] / PROFILES['full']['img_size']
    d, f = demo[head].anchor_generator[key], full[head].anchor_generator[key]
    assert (d[0] / f[0] if isinstance(d, list) else d / f) == pytest.approx(ratio)
    assert demo[head].anchor_generator.strides == full[head].anchor_generator.strides


def test_derive_epoch_demo_config_for_yolo(tmp_path):
    entry = next(m for m in MODELS if m.name == 'yolo11n')
    prof = dict(PROFILES['cpu-demo'])
    cfg = Config.fromfile(derive_config(entry, prof, str(tmp_path / 'data'), str(tmp_path / 'y.py')))
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == entry.demo_epochs and cfg.val_cfg is None
    assert cfg.optim_wrapper.accumulative_counts == 1 and cfg.model.loss_gain == 1
    size = prof['img_size']
    mosaic = next(t for t in cfg.train_dataloader.dataset.pipeline
                  if t.type == 'YOLOCachedMosaic')
    assert tuple(mosaic.img_scale) == (size, size)
    hooks = {h.type: h for h in cfg.custom_hooks}
    # the last fifth of the demo without mosaic: switches at epoch 24 of 30 (at run time)
    assert hooks['CloseMosaicHook'].close_epochs == entry.demo_epochs // 5 == 6
    assert hooks['YOLOParamSchedulerHook'].warmup_epochs == 1.0
    rng = cfg.model.data_preprocessor.batch_augments[0].random_size_range
    assert rng[0] < size < rng[1]


def test_derive_epoch_demo_config_for_rtdetr(tmp_path):
    entry = next(m for m in MODELS if m.name == 'rtdetr-l')
    prof = dict(PROFILES['cpu-demo'])
    cfg = Config.fromfile(derive_config(entry, prof, str(tmp_path / 'data'), str(tmp_path / 'r.py')))
    assert cfg.model.type == 'RTDETRDetector' and cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.max_epochs == 1
    assert cfg.optim_wrapper.accumulative_counts == 1 and cfg.val_cfg is None
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_dataloader.dataset.indices == 8
    size = prof['img_size']
    mosaic = next(t for t in cfg.train_dataloader.dataset.pipeline
                  if t.type == 'YOLOCachedMosaic')
    assert tuple(mosaic.img_scale) == (size, size)
    stretch = next(t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize')
    assert tuple(stretch.scale) == (size, size) and stretch.keep_ratio is False
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert hooks['CloseMosaicHook'].close_epochs == 0  # the 1-epoch demo keeps mosaic
