"""YOLORandomAffine is Ultralytics' RandomPerspective (no perspective) for mmdet samples."""
import random

import numpy as np
import pytest
from mmdet.datasets.transforms import RandomAffine
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.transforms.affine import YOLORandomAffine


def _sample(h, w, boxes, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return dict(img=img, img_shape=(h, w), gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=np.arange(len(boxes), dtype=np.int64),
                gt_ignore_flags=np.zeros(len(boxes), dtype=bool))


def _ultralytics(sample, size, **kwargs):
    from ultralytics.data.augment import RandomPerspective
    from ultralytics.utils.instance import Instances
    boxes = sample['gt_bboxes'].numpy().copy()
    labels = dict(img=sample['img'].copy(), cls=sample['gt_bboxes_labels'][:, None].copy(),
                  instances=Instances(boxes, np.zeros((0, 1000, 2), dtype=np.float32),
                                      bbox_format='xyxy', normalized=False))
    out = RandomPerspective(size=size, **kwargs)(labels)
    out['instances'].convert_bbox('xyxy')
    return out['img'], out['instances'].bboxes, out['cls'].reshape(-1)


BOXES = [[10, 20, 90, 70], [150, 150, 250, 230], [0, 0, 30, 40], [300, 300, 380, 370],
         [180, 10, 196, 150]]


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('stage', ['mosaic', 'letterbox'])
def test_equals_ultralytics_random_perspective(seed, stage):
    """Same python-random seed: the same image (bitwise) and the same kept boxes as Ultralytics'
    RandomPerspective with the recipe's parameters (translate 0.1, scale 0.5, no rotation)."""
    if stage == 'mosaic':  # (2w, 2h) canvas -> (w, h)
        sample, size, ours = _sample(384, 384, BOXES, seed), (192, 192), YOLORandomAffine(
            border=(-96, -96))
    else:  # an image resized to the long side, letterboxed to (w, h) by the warp itself
        sample, size, ours = _sample(154, 192, [b for b in BOXES if max(b) < 150], seed), \
            (192, 192), YOLORandomAffine(size=(192, 192))
    random.seed(seed)
    img, boxes, cls = _ultralytics(sample, size, degrees=0.0, translate=0.1, scale=0.5, shear=0.0)
    random.seed(seed)
    out = ours.transform(sample)
    assert np.array_equal(out['img'], img)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), boxes, rtol=0, atol=1e-4)
    assert out['gt_bboxes_labels'].tolist() == cls.astype(int).tolist()
    assert random.random() == (random.seed(seed), _ultralytics(sample, size, translate=0.1,
                                                               scale=0.5)[0], random.random())[2]


def test_rotation_and_shear_follow_ultralytics_too():
    sample = _sample(200, 240, BOXES[:2], 3)
    random.seed(5)
    img, boxes, _ = _ultralytics(sample, (240, 200), degrees=10.0, translate=0.1, scale=0.3,
                                 shear=2.0)
    random.seed(5)
    out = YOLORandomAffine(max_rotate_degree=10.0, scaling_ratio_range=(0.7, 1.3),
                           max_shear_degree=2.0).transform(sample)
    assert np.array_equal(out['img'], img)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), boxes, rtol=0, atol=1e-4)


def test_window_is_centred_unlike_mmdet():
    """At scale 1 without translation the output is the canvas's centre; mmdet's RandomAffine
    (YOLOX) shows its top-left quarter."""
    canvas = np.zeros((384, 384, 3), dtype=np.uint8)
    canvas[96:288, 96:288] = 255  # the centre, where the mosaic's tiles meet
    sample = dict(img=canvas, img_shape=(384, 384), gt_bboxes=HorizontalBoxes(np.zeros((0, 4))),
                  gt_bboxes_labels=np.zeros(0, dtype=np.int64),
                  gt_ignore_flags=np.zeros(0, dtype=bool))
    kwargs = dict(max_translate_ratio=0.0, scaling_ratio_range=(1.0, 1.0), border=(-96, -96))
    ours = YOLORandomAffine(**kwargs).transform(dict(sample))['img']
    assert ours.shape == (192, 192, 3) and (ours == 255).all()
    theirs = RandomAffine(max_rotate_degree=0.0, max_shear_degree=0.0, **kwargs).transform(
        dict(sample, img=canvas.copy()))['img']
    assert (theirs[:96, :96] == 0).all()  # top-left quarter of the canvas


def test_slivers_are_dropped():
    """A box left with under 10 % of its area (or under 2 px) is not a positive any more."""
    sample = _sample(192, 192, [[0, 50, 100, 150], [60, 60, 120, 120]])
    t = YOLORandomAffine(max_translate_ratio=0.0, scaling_ratio_range=(1.0, 1.0),
                         size=(100, 192))  # centre crop: x 46..146 of the input
    out = t.transform(sample)
    # box 0 keeps x 46..100 (54 %): kept; now shift the crop so that it keeps 4 px (4 %)
    assert out['gt_bboxes_labels'].tolist() == [0, 1]
    sample = _sample(192, 192, [[0, 50, 50, 150], [60, 60, 120, 120]])
    out = t.transform(sample)
    assert out['gt_bboxes_labels'].tolist() == [1]  # box 0 keeps x 46..50: 8 % of its area


def test_built_from_config_and_checks():
    t = TRANSFORMS.build(dict(type='YOLORandomAffine', border=(-320, -320)))
    assert isinstance(t, YOLORandomAffine) and 'border=(-320, -320)' in repr(t)
    with pytest.raises(ValueError, match='not both'):
        YOLORandomAffine(size=(64, 64), border=(-8, -8))
    with pytest.raises(ValueError, match='output size'):
        YOLORandomAffine(border=(-64, -64)).transform(_sample(100, 100, []))
