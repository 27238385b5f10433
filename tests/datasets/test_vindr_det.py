"""Tests of the registered VinDr-SpineXR detection dataset and its base dataset config."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import spinexr  # noqa: F401  (registration)
from spinexr.datasets.converters import convert_vindr_spinexr
from spinexr.datasets.metainfo import CLASSES, CSV_COLUMNS, NO_FINDING, PALETTE
from spinexr.io import write_dicom

REPO = Path(__file__).parents[2]
CONFIG = REPO / 'configs' / '_base_' / 'datasets' / 'vindr_spinexr_detection.py'


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> Path:
    """A tiny release (3 abnormal + 3 normal train, 2 test images) converted at img_size 64."""
    root = tmp_path_factory.mktemp('vindr_det')
    src, dst = root / 'src', root / 'dst'
    (src / 'annotations').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (('train', 6), ('test', 2)):
        (src / f'{split}_images').mkdir()
        lines = [','.join(CSV_COLUMNS)]
        for i in range(n):
            image_id = f'{split[:2].encode().hex()}{i:028x}'
            arr = rng.integers(0, 4096, size=(128, 96)).astype(np.uint16)
            write_dicom(src / f'{split}_images' / f'{image_id}.dicom', arr, bits_stored=12,
                        window=(2047.5, 4095))
            base = f'{i // 2:032x},{i:032x},{image_id}'
            if i % 2 == 0:
                lines.append(f'{base},rad1,{CLASSES[i % 7]},10.5,20.0,50.0,70.25')
                lines.append(f'{base},rad2,Osteophytes,60,60,90,120')
            else:
                lines.append(f'{base},rad1,{NO_FINDING},,,,')
        (src / 'annotations' / f'{split}.csv').write_text('\n'.join(lines) + '\n')
    assert convert_vindr_spinexr(str(src), str(dst), img_size=64, progress=False,
                                 log=lambda s: None) == 0
    return dst


def build(cfg_dataset: dict):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    return DATASETS.build(cfg_dataset)


def test_metainfo_and_extra_keys(converted):
    ds = build(dict(type='VinDrSpineXRDataset', data_root=str(converted),
                    ann_file='annotations/train.json', data_prefix=dict(img=''),
                    filter_cfg=dict(filter_empty_gt=False, min_size=0), pipeline=[]))
    assert ds.metainfo['classes'] == CLASSES and list(ds.metainfo['palette']) == PALETTE
    assert len(ds) == 6  # normal images kept
    info = ds.get_data_info(0)
    assert info['image_id'] == f'{"tr".encode().hex()}{0:028x}'
    assert info['study_id'] == f'{0:032x}' and info['series_id'] == f'{0:032x}'
    assert (info['orig_height'], info['orig_width']) == (128, 96)
    assert (info['height'], info['width']) == (64, 48)
    assert info['abnormal'] is True and Path(info['img_path']).is_file()
    # boxes in PNG pixels (scale 0.5), labels 0-based in CSV class order
    inst = info['instances']
    np.testing.assert_allclose(inst[0]['bbox'], [5.25, 10.0, 25.0, 35.125])
    assert [i['bbox_label'] for i in inst] == [0, 0]
    assert ds.get_data_info(1)['instances'] == [] and ds.get_data_info(1)['abnormal'] is False
    only_abnormal = build(dict(type='VinDrSpineXRDataset', data_root=str(converted),
                               ann_file='annotations/train.json', data_prefix=dict(img=''),
                               filter_cfg=dict(filter_empty_gt=True), pipeline=[]))
    assert len(only_abnormal) == 3


def test_base_config_pipeline_and_dataloader(converted):
    """The shipped dataset config builds, and mmdet's pipeline + data preprocessor iterate."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmengine.runner import Runner
    cfg = Config.fromfile(str(CONFIG))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader_cfg = cfg[key]
        loader_cfg.dataset.data_root = str(converted)
        loader_cfg.num_workers = 0
        loader_cfg.persistent_workers = False
    cfg.val_evaluator.ann_file = str(converted / 'annotations' / 'test.json')
    init_default_scope('mmdet')
    train = build(cfg.train_dataloader.dataset)
    assert len(train) == 6
    item = train[0]
    sample = item['data_samples']
    assert item['inputs'].shape[0] == 3 and max(item['inputs'].shape[1:]) == 640
    assert len(sample.gt_instances) == 2 and sample.gt_instances.labels.tolist() == [0, 0]
    assert len(train[1]['data_samples'].gt_instances) == 0  # a normal image
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    out = DetDataPreprocessor(pad_size_divisor=32)(batch, training=True)
    assert out['inputs'].shape[0] == 2 and out['inputs'].shape[2] % 32 == 0
    test = build(cfg.test_dataloader.dataset)
    meta = test[0]['data_samples'].metainfo
    assert meta['study_id'] == f'{0:032x}' and len(meta['image_id']) == 32
    from mmdet.registry import METRICS
    metric = METRICS.build(cfg.val_evaluator)
    assert metric.classwise


def test_holdout_config():
    cfg = Config.fromfile(str(CONFIG.with_name('vindr_spinexr_detection_holdout.py')))
    assert cfg.train_dataloader.dataset.ann_file == 'annotations/train_split.json'
    assert cfg.val_dataloader.dataset.ann_file == 'annotations/val_split.json'
    assert cfg.test_dataloader.dataset.ann_file == 'annotations/test.json'
    assert cfg.val_evaluator.ann_file.endswith('val_split.json')
    assert cfg.test_evaluator.ann_file.endswith('test.json')


def test_tiny_coco_fixture_loads(tiny_coco):
    ds = build(dict(type='VinDrSpineXRDataset', data_root=str(tiny_coco),
                    ann_file='annotations/train.json', data_prefix=dict(img=''),
                    pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='LoadAnnotations', with_bbox=True),
                              dict(type='PackDetInputs')]))
    assert len(ds) == 8 and ds[0]['inputs'].shape == (3, 96, 128)
