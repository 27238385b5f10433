"""Tests for :class:`spinexr.datasets.transforms.mixup.YOLOCachedMixUp`.

The reference is mmdet's own ``CachedMixUp`` (the real class): the same stream of samples under
the same ``np.random`` seed must give the same samples, every key, bit for bit.
"""
import copy

import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import CachedMixUp
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.transforms.mixup import MIXUP_KEYS, YOLOCachedMixUp

SIZE = 64


def _samples(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 4))  # some samples without boxes
        xy = rng.uniform(0, 0.7 * SIZE, (k, 2))
        wh = rng.uniform(2, 0.3 * SIZE, (k, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32).reshape(-1, 4)
        out.append(dict(img=rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                        img_shape=(SIZE, SIZE), ori_shape=(96, 80), img_path=f'/d/{i}.png',
                        sample_idx=i, homography_matrix=np.eye(3, dtype=np.float32),
                        gt_bboxes=HorizontalBoxes(boxes), gt_bboxes_labels=rng.integers(0, 7, k),
                        gt_ignore_flags=np.zeros(k, dtype=bool)))
    return out


def _run(transform, samples: list, seed: int, mutate: bool = False) -> tuple:
    np.random.seed(seed)
    out = []
    for s in samples:
        result = transform(copy.deepcopy(s))
        out.append(copy.deepcopy(result))
        if mutate:  # later transforms may change arrays and boxes in place: not the cache's
            result['img'][...] = 7
            result['gt_bboxes'].rescale_([2.0, 2.0])
            result['gt_bboxes_labels'][...] = 0
    return out, np.random.random()  # the next draw shows how much of the stream was used


def _assert_same(a: dict, b: dict, where: str) -> None:
    assert sorted(a) == sorted(b), where
    for key, value in b.items():
        if isinstance(value, HorizontalBoxes):
            assert torch.equal(a[key].tensor, value.tensor), (where, key)
        elif isinstance(value, np.ndarray):
            assert a[key].dtype == value.dtype, (where, key)
            np.testing.assert_array_equal(a[key], value, err_msg=f'{where} {key}')
        else:
            assert a[key] == value, (where, key)


RECIPE = dict(ratio_range=(1.0, 1.0), flip_ratio=0.0, prob=0.1)
JITTER = dict(ratio_range=(0.5, 1.5), flip_ratio=0.5, prob=0.7)


@pytest.mark.parametrize('mutate', [False, True], ids=['', 'mutate'])
@pytest.mark.parametrize('params', [RECIPE, JITTER], ids=['recipe', 'jitter'])
@pytest.mark.parametrize('random_pop', [False, True])
@pytest.mark.parametrize('seed', [0, 3])
def test_same_samples_as_mmdet(seed, random_pop, params, mutate):
    kwargs = dict(img_scale=(SIZE, SIZE), pad_val=114.0, max_cached_images=5,
                  random_pop=random_pop, **params)
    samples = _samples(40, seed)
    ref, ref_next = _run(CachedMixUp(**kwargs), samples, seed, mutate)
    ours, ours_next = _run(YOLOCachedMixUp(**kwargs), samples, seed, mutate)
    assert ours_next == ref_next
    mixed = 0
    for i, (a, b) in enumerate(zip(ours, ref)):
        _assert_same(a, b, str(i))
        mixed += len(b['gt_bboxes']) > len(samples[i]['gt_bboxes'])
    assert mixed > 0  # the mixup did fire


def test_cache_holds_only_what_the_mixup_reads():
    t = YOLOCachedMixUp(img_scale=(SIZE, SIZE), max_cached_images=5)
    _run(t, _samples(8), 0)
    assert len(t.results_cache) == 5
    assert all(sorted(e) == sorted(MIXUP_KEYS) for e in t.results_cache)


def test_built_from_config():
    t = TRANSFORMS.build(dict(type='YOLOCachedMixUp', img_scale=(SIZE, SIZE),
                              ratio_range=(1.0, 1.0), flip_ratio=0.0, pad_val=114.0,
                              max_cached_images=20, random_pop=False, prob=0.1))
    assert isinstance(t, CachedMixUp) and t.prob == 0.1 and t.dynamic_scale == (SIZE, SIZE)
