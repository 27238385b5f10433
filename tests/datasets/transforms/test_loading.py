"""Tests of LoadDicomFromFile in mmdet and mmpretrain pipelines."""
import numpy as np
import pytest
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import spinexr  # noqa: F401  (registration)
from spinexr.io import DicomReadError, read_dicom, write_dicom


@pytest.fixture
def dicom(tmp_path):
    arr = np.zeros((128, 96), np.uint16)
    arr[:32] = 4095  # bright top band
    arr[32:] = np.random.default_rng(0).integers(0, 2048, size=(96, 96))
    return write_dicom(tmp_path / 'a.dicom', arr, bits_stored=12, window=(2047.5, 4095))


def build(cfg, scope='mmdet'):
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import TRANSFORMS
    else:
        from mmpretrain.registry import TRANSFORMS
    return TRANSFORMS.build(cfg)


def test_color_and_grayscale(dicom):
    ref = read_dicom(dicom)
    out = build(dict(type='LoadDicomFromFile'))(dict(img_path=str(dicom)))
    assert out['img'].shape == (128, 96, 3) and out['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['img'][..., 1], ref)
    assert out['img'][0, 0, 0] == 255  # row 0 is the top as stored
    assert out['img_shape'] == (128, 96) and out['ori_shape'] == (128, 96)
    assert out['dicom_orig_shape'] == (128, 96) and out['dicom_voi_source'] == 'window'
    gray = build(dict(type='LoadDicomFromFile', color_type='grayscale', to_float32=True))(
        dict(img_path=str(dicom)))
    assert gray['img'].shape == (128, 96) and gray['img'].dtype == np.float32
    np.testing.assert_array_equal(gray['img'], ref.astype(np.float32))


def test_reduced_resolution_option(dicom):
    out = build(dict(type='LoadDicomFromFile', min_long_side=64))(dict(img_path=str(dicom)))
    assert out['img_shape'] == (64, 48) and out['dicom_orig_shape'] == (128, 96)


def test_missing_file(tmp_path):
    t = build(dict(type='LoadDicomFromFile'))
    with pytest.raises(DicomReadError, match='nope.dicom'):
        t(dict(img_path=str(tmp_path / 'nope.dicom')))
    assert build(dict(type='LoadDicomFromFile', ignore_empty=True))(
        dict(img_path=str(tmp_path / 'nope.dicom'))) is None
    with pytest.raises(ValueError):
        build(dict(type='LoadDicomFromFile', color_type='rgba'))


def test_mmdet_detection_pipeline(dicom):
    pipeline = Compose([
        build(dict(type='LoadDicomFromFile')),
        build(dict(type='LoadAnnotations', with_bbox=True)),
        build(dict(type='Resize', scale=(64, 64), keep_ratio=True)),
        build(dict(type='RandomFlip', prob=0.5)),
        build(dict(type='PackDetInputs')),
    ])
    out = pipeline(dict(img_path=str(dicom), img_id=0,
                        instances=[dict(bbox=[10.0, 20.0, 50.0, 60.0], bbox_label=3,
                                        ignore_flag=0)]))
    assert tuple(out['inputs'].shape) == (3, 64, 48)
    boxes = out['data_samples'].gt_instances.bboxes.tensor
    assert boxes.shape == (1, 4) and float(boxes[0, 3]) == pytest.approx(30.0)


def test_mmpretrain_classification_pipeline(dicom):
    pipeline = Compose([
        build(dict(type='LoadDicomFromFile'), 'mmpretrain'),
        build(dict(type='Resize', scale=(48, 48)), 'mmpretrain'),
        build(dict(type='PackInputs'), 'mmpretrain'),
    ])
    out = pipeline(dict(img_path=str(dicom), gt_label=1))
    assert tuple(out['inputs'].shape) == (3, 48, 48)
    assert out['data_samples'].gt_label.tolist() == [1]
