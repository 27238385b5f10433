"""Tests for :class:`spinexr.datasets.transforms.affine.YOLORandomAffine`.

The reference is mmdet's own ``RandomAffine`` (the real class) with the YOLO11 recipe's
parameters, run on the same sample under the same ``np.random`` seed.
"""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import RandomAffine
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.transforms.affine import YOLORandomAffine

SEEDS = (0, 1, 7, 42, 2024)
SCALE = 64  # the recipe's img_scale, shrunk: the mosaic canvas is 2 x SCALE
# The recipe's parameters (configs/yolo11/yolo11l_35e_vindr-640.py).
RECIPE = dict(max_rotate_degree=0.0, max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5),
              max_shear_degree=0.0, border_val=(114, 114, 114))
BORDERS = {'mosaic': (-SCALE // 2, -SCALE // 2), 'letterbox': (0, 0)}


def _sample(size: int, seed: int = 5, sharp: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
    if not sharp:
        grey = cv2.GaussianBlur(grey, (5, 5), 1.5)
    xy = rng.uniform(0, size * 0.8, (12, 2))
    wh = rng.uniform(2, size * 0.3, (12, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, size)], axis=1).astype(np.float32)
    return dict(img=np.repeat(grey[..., None], 3, axis=2), img_shape=(size, size),
                gt_bboxes=HorizontalBoxes(boxes), gt_bboxes_labels=np.arange(12) % 7,
                gt_ignore_flags=np.zeros(12, dtype=bool))


def _run(transform, sample: dict, seed: int) -> tuple:
    np.random.seed(seed)
    out = transform.transform(copy.deepcopy(sample))
    return out, np.random.random()  # the next draw shows how much of the stream was used


@pytest.mark.parametrize('sharp', [False, True], ids=['smooth', 'noise'])
@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('stage', sorted(BORDERS))
def test_same_boxes_and_nearly_same_image_as_mmdet(stage, seed, sharp):
    size = 2 * SCALE if stage == 'mosaic' else SCALE
    sample = _sample(size, sharp=sharp)
    ref, ref_next = _run(RandomAffine(border=BORDERS[stage], **RECIPE), sample, seed)
    ours, ours_next = _run(YOLORandomAffine(border=BORDERS[stage], **RECIPE), sample, seed)
    assert ours_next == ref_next
    assert ours['img_shape'] == ref['img_shape'] == (SCALE, SCALE)
    assert torch.equal(ours['gt_bboxes'].tensor, ref['gt_bboxes'].tensor)
    np.testing.assert_array_equal(ours['gt_bboxes_labels'], ref['gt_bboxes_labels'])
    np.testing.assert_array_equal(ours['gt_ignore_flags'], ref['gt_ignore_flags'])
    # warpAffine and warpPerspective round the source position of a pixel differently (fixed
    # point vs doubles, both to a 1/32 px step), so a pixel can be interpolated one or two steps
    # apart: the difference is at most the local intensity step x 2/32. On a smooth image that is
    # one grey level; on pixel noise (steps up to 255) up to 16 levels at a few pixels.
    diff = np.abs(ours['img'].astype(np.int16) - ref['img'].astype(np.int16))
    assert diff.max() <= (16 if sharp else 1)
    assert diff.mean() < (1.0 if sharp else 0.15)


@pytest.mark.parametrize('seed', SEEDS)
def test_warps_with_warp_affine(seed):
    """The recipe's matrices are affine: the image is exactly cv2.warpAffine's."""
    sample = _sample(2 * SCALE)
    t = YOLORandomAffine(border=BORDERS['mosaic'], **RECIPE)
    np.random.seed(seed)
    matrix = t._get_random_homography_matrix(SCALE, SCALE)
    ours, _ = _run(t, sample, seed)
    expected = cv2.warpAffine(sample['img'], matrix[:2], dsize=(SCALE, SCALE),
                              borderValue=(114, 114, 114))
    np.testing.assert_array_equal(ours['img'], expected)


class _Perspective(YOLORandomAffine):
    """Draws the parent's matrix and adds a perspective part (a matrix mmdet never draws)."""

    def _get_random_homography_matrix(self, height, width):
        matrix = super()._get_random_homography_matrix(height, width)
        matrix[2, :2] = (1e-3, -5e-4)
        return matrix


def test_perspective_matrix_falls_back_to_warp_perspective():
    sample = _sample(SCALE)
    t = _Perspective(**RECIPE)
    np.random.seed(3)
    matrix = t._get_random_homography_matrix(SCALE, SCALE)
    ours, _ = _run(t, sample, 3)
    expected = cv2.warpPerspective(sample['img'], matrix, dsize=(SCALE, SCALE),
                                   borderValue=(114, 114, 114))
    np.testing.assert_array_equal(ours['img'], expected)


def test_built_from_config_and_no_boxes():
    t = TRANSFORMS.build(dict(type='YOLORandomAffine', border=BORDERS['mosaic'], **RECIPE))
    assert isinstance(t, YOLORandomAffine) and t.border == BORDERS['mosaic']
    sample = _sample(2 * SCALE)
    sample.update(gt_bboxes=HorizontalBoxes(np.zeros((0, 4), np.float32)),
                  gt_bboxes_labels=np.zeros(0, np.int64), gt_ignore_flags=np.zeros(0, bool))
    out = t(sample)
    assert out['img'].shape == (SCALE, SCALE, 3) and len(out['gt_bboxes']) == 0
