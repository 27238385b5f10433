"""Tests for :class:`spinexr.datasets.transforms.canvas.FitMosaicCanvas`.

The reference is mmdet's own ``Resize(keep_ratio=True)`` + ``Pad`` (the real classes): every key
the two write must come out the same.
"""
import copy

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.datasets.transforms import Pad, Resize
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.transforms.canvas import FitMosaicCanvas

CANVAS = (96, 80)  # (w, h)
PAD = (114, 114, 114)


def _sample(h: int, w: int, homography: bool = False) -> dict:
    rng = np.random.default_rng(h * 1000 + w)
    boxes = np.array([[1.5, 2.25, 30.0, 41.0], [w - 10.0, h - 8.0, w + 5.0, h + 3.0],
                      [-4.0, 3.0, 6.0, 9.5]], dtype=np.float32)
    out = dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_shape=(h, w),
               ori_shape=(h, w), gt_bboxes=HorizontalBoxes(boxes),
               gt_bboxes_labels=np.array([0, 3, 5]), gt_ignore_flags=np.zeros(3, dtype=bool))
    if homography:
        out['homography_matrix'] = np.array([[2, 0, 1], [0, 2, 3], [0, 0, 1]], np.float32)
    return out


def _reference() -> Compose:
    return Compose([Resize(scale=CANVAS, keep_ratio=True), Pad(size=CANVAS, pad_val=dict(img=PAD))])


def _assert_same(ours: dict, ref: dict) -> None:
    assert sorted(ours) == sorted(ref)
    for key, value in ref.items():
        if isinstance(value, HorizontalBoxes):
            assert torch.equal(ours[key].tensor, value.tensor), key
        elif isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype, key
            np.testing.assert_array_equal(ours[key], value, err_msg=key)
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize('homography', [False, True])
@pytest.mark.parametrize('hw', [(80, 96), (40, 48), (120, 60), (80, 50), (100, 200)])
def test_same_as_resize_then_pad(hw, homography):
    sample = _sample(*hw, homography=homography)
    ref = _reference()(copy.deepcopy(sample))
    ours = FitMosaicCanvas(scale=CANVAS, pad_val=PAD)(copy.deepcopy(sample))
    _assert_same(ours, ref)


def test_canvas_sized_image_is_not_copied():
    sample = _sample(CANVAS[1], CANVAS[0])
    img = sample['img']
    out = FitMosaicCanvas(scale=CANVAS, pad_val=PAD)(sample)
    assert out['img'] is img


def test_built_from_config_and_bad_scale():
    t = TRANSFORMS.build(dict(type='FitMosaicCanvas', scale=CANVAS, pad_val=PAD))
    assert isinstance(t, FitMosaicCanvas) and t.scale == CANVAS
    with pytest.raises(ValueError, match='scale must be two positive ints'):
        FitMosaicCanvas(scale=(96, ))
