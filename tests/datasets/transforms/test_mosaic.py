"""Tests for :class:`spinexr.datasets.transforms.mosaic.YOLOCachedMosaic`.

The reference is mmdet's own ``CachedMosaic`` (the real class): the same stream of samples under
the same ``np.random`` seed must give the same mosaics, bit for bit.
"""
import copy

import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import CachedMosaic
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.transforms.mosaic import YOLOCachedMosaic

TILE = (64, 64)  # (w, h): the recipe's img_scale, shrunk
# (h, w): tall and wide images larger than the tile (shrunk in the cache), one exactly the tile,
# one smaller (left as it is), and 65 x 98, whose resize (to 42 x 63, int truncation) the mosaic
# would resize again: kept at full size.
SIZES = [(102, 51), (80, 150), (64, 64), (40, 56), (101, 37), (65, 98), (130, 128)]


def _samples(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = SIZES[i % len(SIZES)]
        k = int(rng.integers(0, 4))
        xy = rng.uniform(0, 0.7, (k, 2)) * (w, h)
        wh = rng.uniform(0.05, 0.3, (k, 2)) * (w, h)
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32).reshape(-1, 4)
        out.append(dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_shape=(h, w),
                        ori_shape=(h, w), sample_idx=i, gt_bboxes=HorizontalBoxes(boxes),
                        gt_bboxes_labels=rng.integers(0, 7, k),
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


@pytest.mark.parametrize('mutate', [False, True], ids=['', 'mutate'])
@pytest.mark.parametrize('prob', [1.0, 0.6])
@pytest.mark.parametrize('random_pop', [False, True])
@pytest.mark.parametrize('seed', [0, 1, 42])
def test_same_mosaics_as_mmdet(seed, random_pop, prob, mutate):
    kwargs = dict(img_scale=TILE, pad_val=114.0, max_cached_images=6, random_pop=random_pop,
                  prob=prob)
    samples = _samples(30, seed)
    ref, ref_next = _run(CachedMosaic(**kwargs), samples, seed, mutate)
    ours, ours_next = _run(YOLOCachedMosaic(**kwargs), samples, seed, mutate)
    assert ours_next == ref_next
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert a['img'].shape == b['img'].shape, i
        np.testing.assert_array_equal(a['img'], b['img'], err_msg=str(i))
        assert torch.equal(a['gt_bboxes'].tensor, b['gt_bboxes'].tensor), i
        np.testing.assert_array_equal(a['gt_bboxes_labels'], b['gt_bboxes_labels'])
        np.testing.assert_array_equal(a['gt_ignore_flags'], b['gt_ignore_flags'])
    # the first samples pass through at their own size, as mmdet's
    assert ours[0]['img'].shape[:2] == SIZES[0]


def test_cache_holds_tile_sized_images():
    t = YOLOCachedMosaic(img_scale=TILE, pad_val=114.0, max_cached_images=len(SIZES),
                         random_pop=False)
    _run(t, _samples(len(SIZES)), 0)
    shapes = [e['img'].shape[:2] for e in t.results_cache]
    # larger than the tile: fitted to it, unless the mosaic would resize the small copy again
    for (h, w), shape in zip(SIZES, shapes):
        ratio = min(TILE[1] / h, TILE[0] / w)
        if ratio >= 1:
            assert shape == (h, w)
        else:
            assert shape == (h, w) or max(shape[0] / TILE[1], shape[1] / TILE[0]) == 1.0
    assert shapes[0] == (64, 32) and shapes[1] == (34, 64) and shapes[6] == (64, 63)
    assert shapes[5] == (65, 98)  # not a fixed point


def test_grey_images_and_cache_rebuilt_at_full_size():
    """2-D images; a cache of full results dicts (what a resume rebuilds) mosaics the same."""
    samples = _samples(20, 3)
    for s in samples:
        s['img'] = np.ascontiguousarray(s['img'][..., 0])
    kwargs = dict(img_scale=TILE, pad_val=114.0, max_cached_images=6, random_pop=True)
    ref_t, ours_t = CachedMosaic(**kwargs), YOLOCachedMosaic(**kwargs)
    _run(ref_t, samples[:10], 5)
    _run(ours_t, samples[:10], 5)
    assert [e['img'].shape for e in ours_t.results_cache] != [
        e['img'].shape for e in ref_t.results_cache]  # tile-sized copies in ours
    ours_t.results_cache = copy.deepcopy(ref_t.results_cache)  # as a resume rebuilds it
    ref, ref_next = _run(ref_t, samples[10:], 6)
    ours, ours_next = _run(ours_t, samples[10:], 6)
    assert ours_next == ref_next
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a['img'], b['img'])
        assert torch.equal(a['gt_bboxes'].tensor, b['gt_bboxes'].tensor)


def test_built_from_config():
    t = TRANSFORMS.build(dict(type='YOLOCachedMosaic', img_scale=TILE, pad_val=114.0,
                              max_cached_images=40, random_pop=False))
    assert isinstance(t, CachedMosaic) and t.max_cached_images == 40 and not t.random_pop
