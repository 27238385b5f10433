"""The TTA pipeline built from a config's own test pipeline, and enable_tta's config changes."""
import pytest
from mmengine.config import Config

from spinexr.models.test_time_aug import build_tta_pipeline, enable_tta
from spinexr.utils.paths import config_path

DETECTORS = ['yolo11/yolo11n_35e_vindr-640.py',
             'faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
             'retinanet/retinanet_r50_fpn_12e_vindr-640.py',
             'sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
             'dino/dino-4scale_r50_12e_vindr-640.py']


def test_views_are_scales_times_flips():
    test = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(640, 640), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'ori_shape', 'scale_factor'))]
    out = build_tta_pipeline(test, scales=(1.0, 0.5), flip=True)
    assert out[0] == test[0] and out[1]['type'] == 'TestTimeAug' and len(out) == 2
    resizes, flips, load, pack = out[1]['transforms']
    assert [r['scale'] for r in resizes] == [(640, 640), (320, 320)]
    assert all(r['keep_ratio'] for r in resizes)
    assert [f['prob'] for f in flips] == [1.0, 0.0]
    assert load == [test[2]]
    assert pack[0]['meta_keys'][-2:] == ('flip', 'flip_direction')
    assert test[1]['scale'] == (640, 640)  # the input is not changed


def test_bad_pipelines_are_refused():
    with pytest.raises(ValueError, match='exactly one Resize'):
        build_tta_pipeline([dict(type='LoadImageFromFile'), dict(type='PackDetInputs')])
    with pytest.raises(ValueError, match='PackDetInputs'):
        build_tta_pipeline([dict(type='Resize', scale=(64, 64))])


@pytest.mark.parametrize('name', DETECTORS)
def test_every_detector_config_switches_to_tta(name):
    cfg = Config.fromfile(config_path(name))
    assert cfg.tta.enable is False  # off unless asked
    detector = cfg.model.type
    enable_tta(cfg)
    assert cfg.model.type == 'FusionTTAModel' and cfg.model.module.type == detector
    assert cfg.model.method == 'wbf' and cfg.model.max_per_img == 100
    assert cfg.test_dataloader.collate_fn == dict(type='pseudo_collate')
    steps = cfg.test_dataloader.dataset.pipeline
    assert steps[-1]['type'] == 'TestTimeAug'
    assert len(steps[-1]['transforms'][0]) == 3  # Ultralytics' scales 1, 0.83, 0.67


def test_partial_tta_settings_keep_the_defaults():
    cfg = Config.fromfile(config_path(DETECTORS[0]))
    cfg.merge_from_dict({'tta.fusion.method': 'soft_nms', 'tta.scales': [1.0]})
    enable_tta(cfg)
    assert cfg.model.method == 'soft_nms' and cfg.model.iou_thr == 0.55
    assert len(cfg.test_dataloader.dataset.pipeline[-1]['transforms'][0]) == 1
    cfg2 = Config(dict(tta=dict(scale=[1.0]), model=dict(type='X'),
                       test_dataloader=dict(dataset=dict(pipeline=[]))))
    with pytest.raises(KeyError, match="unknown keys \\['scale'\\]"):
        enable_tta(cfg2)
