"""VinDrSpineXRClsDataset on make_tiny_coco data."""
import json

import numpy as np
import pytest
from mmpretrain.registry import DATASETS

import spinexr.datasets  # noqa: F401  (registration)
from spinexr.datasets.folds import make_folds, write_folds
from spinexr.datasets.metainfo import CLS_CLASSES
from spinexr.testing import make_tiny_coco


@pytest.fixture()
def data_root(tmp_path):
    make_tiny_coco(str(tmp_path), split='train', num_images=12, seed=3, normal_share=0.4)
    make_tiny_coco(str(tmp_path), split='test', num_images=4, seed=4)
    return tmp_path


def _build(root, **kwargs):
    cfg = dict(type='VinDrSpineXRClsDataset', data_root=str(root),
               ann_file='annotations/train.json', pipeline=[])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_labels_ids_and_metainfo(data_root):
    coco = json.loads((data_root / 'annotations/train.json').read_text())
    ds = _build(data_root)
    assert len(ds) == 12
    assert ds.metainfo['classes'] == CLS_CLASSES
    expected = [int(im['abnormal']) for im in coco['images']]
    assert ds.get_gt_labels().tolist() == expected
    assert 0 < sum(expected) < 12
    assert ds.get_study_ids() == [im['study_id'] for im in coco['images']]
    info = ds.get_data_info(0)
    assert info['image_id'] == coco['images'][0]['image_id']
    assert info['split'] == 'train'
    assert info['img_path'].endswith(coco['images'][0]['file_name'])
    with_boxes = {a['image_id'] for a in coco['annotations']}
    for i, im in enumerate(coco['images']):
        assert bool(ds.get_data_info(i)['lesion_labels']) == (im['id'] in with_boxes)
    assert ds.get_cat_ids(0) == [expected[0]]


def test_label_falls_back_to_annotations(data_root):
    ann = data_root / 'annotations/train.json'
    coco = json.loads(ann.read_text())
    for im in coco['images']:
        im.pop('abnormal')
    ann.write_text(json.dumps(coco))
    with_boxes = {a['image_id'] for a in coco['annotations']}
    ds = _build(data_root)
    assert ds.get_gt_labels().tolist() == [int(im['id'] in with_boxes) for im in coco['images']]


def test_fold_selection_computed_and_from_file(data_root, tmp_path):
    full = _build(data_root)
    parts = [_build(data_root, folds=[k], n_splits=3) for k in range(3)]
    ids = [set(p.get_image_ids()) for p in parts]
    assert sum(len(i) for i in ids) == len(full)
    assert set.union(*ids) == set(full.get_image_ids())
    studies = [set(p.get_study_ids()) for p in parts]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not studies[a] & studies[b]
    rest = _build(data_root, folds=[1, 2], n_splits=3)
    assert set(rest.get_image_ids()) == ids[1] | ids[2]

    folds = make_folds(full.get_gt_labels(), full.get_study_ids(), n_splits=3, seed=0)
    fold_file = write_folds(str(tmp_path / 'folds.json'), folds)
    from_file = _build(data_root, folds=[0], fold_file=fold_file)
    assert set(from_file.get_image_ids()) == ids[0]  # same seed, same folds

    bad = dict(folds)
    bad.pop(next(iter(bad)))
    bad_file = write_folds(str(tmp_path / 'bad.json'), bad)
    with pytest.raises(ValueError, match='has no fold'):
        _build(data_root, folds=[0], fold_file=bad_file)
    with pytest.raises(ValueError, match='out of range'):
        _build(data_root, folds=[5], n_splits=3)


def test_pipeline_replicates_grey_to_three_channels(data_root):
    ds = _build(data_root, ann_file='annotations/test.json', test_mode=True, pipeline=[
        dict(type='LoadImageFromFile', color_type='color'),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='PackInputs', meta_keys=('img_path', 'image_id', 'study_id', 'split')),
    ])
    item = ds[0]
    img = item['inputs'].numpy()
    assert img.shape == (3, 64, 64)
    assert np.array_equal(img[0], img[1]) and np.array_equal(img[1], img[2])
    sample = item['data_samples']
    assert sample.study_id == ds.get_data_info(0)['study_id']
    assert sample.split == 'test'
    assert int(sample.gt_label) == ds.get_data_info(0)['gt_label']


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='annotation file'):
        _build(tmp_path, ann_file='annotations/none.json')
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations/x.json').write_text(json.dumps(
        dict(images=[dict(id=1, file_name='train/a.png')], annotations=[], categories=[])))
    with pytest.raises(ValueError, match='study_id'):
        _build(tmp_path, ann_file='annotations/x.json')


def test_make_folds_for_dataset_writes_the_folds_the_dataset_computes(data_root, tmp_path):
    from spinexr.datasets.folds import read_folds
    from spinexr.datasets.vindr_cls import make_folds_for_dataset
    out = tmp_path / 'folds' / 'f.json'
    study_fold = make_folds_for_dataset('annotations/train.json', str(out), n_splits=3, seed=1,
                                        data_root=str(data_root))
    assert read_folds(str(out)) == study_fold
    payload = json.loads(out.read_text())
    assert payload['ann_file'] == str(data_root / 'annotations/train.json')
    assert sum(payload['fold_sizes'].values()) == 12  # images per fold
    for fold in range(3):
        from_file = _build(data_root, folds=[fold], fold_file=str(out))
        computed = _build(data_root, folds=[fold], n_splits=3, fold_seed=1)
        assert from_file.get_image_ids() == computed.get_image_ids()


def test_folds_does_not_import_the_dataset():
    """The fold assignment is the lower layer: vindr_cls imports folds, never the reverse."""
    import ast
    import inspect

    import spinexr.datasets.folds as folds
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(folds))):
        if isinstance(node, ast.ImportFrom):
            imported.add('.' * node.level + (node.module or ''))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not [m for m in imported if m.endswith('vindr_cls')], imported
