"""Pipeline state (mosaic / mixup caches, own generators) survives a checkpoint round trip."""
import io
import random

import numpy as np
import pytest
import torch

from spinexr.datasets.transforms.state import load_pipeline_state, pipeline_state


def _dataset(root):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    pipeline = [
        dict(type='LoadImageFromFile', color_type='color'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='CachedMosaic', img_scale=(64, 64), pad_val=114.0, max_cached_images=6,
             random_pop=False),
        dict(type='RandomAffine', max_rotate_degree=0.0, scaling_ratio_range=(0.5, 1.5),
             max_shear_degree=0.0, border=(-32, -32)),
        dict(type='CachedMixUp', img_scale=(64, 64), ratio_range=(1.0, 1.0), flip_ratio=0.0,
             max_cached_images=3, random_pop=False, prob=1.0),
        dict(type='PackDetInputs'),
    ]
    return CocoDataset(data_root=str(root) + '/', ann_file='annotations/train.json',
                       data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
                       pipeline=pipeline)


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)


def _draw(dataset, indices):
    out = []
    for i in indices:
        packed = dataset[i]
        out.append((packed['inputs'].clone(), packed['data_samples'].gt_instances.bboxes.tensor))
    return out


def _same(a, b):
    return all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))


def test_caches_round_trip_through_a_weights_only_checkpoint(tiny_coco):
    ds = _dataset(tiny_coco)
    _seed(0)
    _draw(ds, [0, 1, 2, 3, 4, 5, 6, 7, 0, 1])  # fills both caches
    transforms = ds.pipeline.transforms
    state = pipeline_state(transforms)
    assert [s['type'] for s in state if s] == ['CachedMosaic', 'CachedMixUp']
    assert state[2]['cache'] == {'sample_idx': [
        int(r['sample_idx']) for r in transforms[2].results_cache]}  # loaders only: by index
    assert 'results' in state[4]['cache']  # after a random affine: its arrays
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # no allow-list needed

    fresh = _dataset(tiny_coco)
    load_pipeline_state(fresh.pipeline.transforms, state, fresh)
    empty = _dataset(tiny_coco)
    _seed(1)
    expected = _draw(ds, [2, 5, 7, 3])
    _seed(1)
    got = _draw(fresh, [2, 5, 7, 3])
    _seed(1)
    without = _draw(empty, [2, 5, 7, 3])
    assert _same(expected, got)
    assert not _same(expected, without)  # the caches matter: empty ones give other images


def test_own_generator_is_saved_and_a_different_pipeline_is_refused():
    class WithRng:
        def __init__(self):
            self._rng = np.random.default_rng(3)

    class Plain:
        pass

    a = [Plain(), WithRng()]
    a[1]._rng.random(5)
    state = pipeline_state(a)
    b = [Plain(), WithRng()]
    load_pipeline_state(b, state)
    assert a[1]._rng.random() == b[1]._rng.random()
    with pytest.raises(ValueError, match='does not fit this pipeline'):
        load_pipeline_state([WithRng(), Plain()], state)
