"""Tests for :class:`spinexr.datasets.transforms.hsv.UltralyticsHSVRandomAug`.

The reference is Ultralytics' own ``RandomHSV`` (the real class, not a re-implementation), run on
the same image under the same ``np.random`` seed.
"""
import numpy as np
import pytest
from mmdet.datasets.transforms import YOLOXHSVRandomAug
from mmdet.registry import TRANSFORMS
from ultralytics.data.augment import RandomHSV

from spinexr.datasets.transforms.hsv import UltralyticsHSVRandomAug

SEEDS = (0, 1, 7, 42, 2024)


def _colour_image(seed: int = 123) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _grey_image(seed: int = 321) -> np.ndarray:
    grey = np.random.default_rng(seed).integers(0, 256, (24, 32), dtype=np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _ultralytics(img: np.ndarray, seed: int, gains=(0.015, 0.7, 0.4)) -> tuple:
    np.random.seed(seed)
    out = RandomHSV(hgain=gains[0], sgain=gains[1], vgain=gains[2])({'img': img.copy()})['img']
    return out, np.random.random()  # the next draw shows how much of the stream was used


def _ours(img: np.ndarray, seed: int, gains=(0.015, 0.7, 0.4)) -> tuple:
    np.random.seed(seed)
    aug = UltralyticsHSVRandomAug(hue_gain=gains[0], saturation_gain=gains[1], value_gain=gains[2])
    out = aug.transform({'img': img.copy()})['img']
    return out, np.random.random()


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('make', [_colour_image, _grey_image], ids=['colour', 'grey'])
def test_bitwise_equal_to_ultralytics(make, seed):
    img = make()
    ref, ref_next = _ultralytics(img, seed)
    out, out_next = _ours(img, seed)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert not np.array_equal(ref, img) or make is _grey_image  # the reference did change it
    np.testing.assert_array_equal(out, ref)
    assert out_next == ref_next  # same number of draws from the global stream


@pytest.mark.parametrize('gains', [(0.5, 0.9, 0.9), (0.0, 0.0, 0.0), (1.0, 0.0, 0.3)])
def test_bitwise_equal_other_gains(gains):
    img = _colour_image()
    ref, ref_next = _ultralytics(img, 5, gains)
    out, out_next = _ours(img, 5, gains)
    np.testing.assert_array_equal(out, ref)
    assert out_next == ref_next


def test_consecutive_calls_follow_the_stream():
    img = _colour_image()
    np.random.seed(3)
    reference = RandomHSV(hgain=0.015, sgain=0.7, vgain=0.4)
    refs = [reference({'img': img.copy()})['img'] for _ in range(4)]
    np.random.seed(3)
    aug = UltralyticsHSVRandomAug()
    outs = [aug({'img': img.copy()})['img'] for _ in range(4)]
    for ref, out in zip(refs, outs):
        np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize('shape', [(24, 32), (24, 32, 1), (24, 32, 4)])
def test_non_three_channel_unchanged_without_draws(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.random.seed(11)
    ref = RandomHSV(hgain=0.015, sgain=0.7, vgain=0.4)({'img': img.copy()})['img']
    ref_next = np.random.random()
    np.random.seed(11)
    out = UltralyticsHSVRandomAug()({'img': img.copy()})['img']
    assert np.random.random() == ref_next  # no draw consumed, like Ultralytics
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(ref, img)


def test_registered_and_builds_from_config():
    aug = TRANSFORMS.build(dict(type='UltralyticsHSVRandomAug'))
    assert isinstance(aug, UltralyticsHSVRandomAug)
    assert (aug.hue_gain, aug.saturation_gain, aug.value_gain) == (0.015, 0.7, 0.4)
    aug = TRANSFORMS.build(dict(type='UltralyticsHSVRandomAug', hue_gain=0.0, value_gain=0.2))
    assert (aug.hue_gain, aug.saturation_gain, aug.value_gain) == (0.0, 0.7, 0.2)
    assert repr(aug) == ('UltralyticsHSVRandomAug(hue_gain=0.0, saturation_gain=0.7, '
                         'value_gain=0.2)')


def test_value_is_multiplicative_black_stays_black():
    black = np.zeros((16, 16, 3), np.uint8)
    aug = UltralyticsHSVRandomAug()
    yolox = YOLOXHSVRandomAug()  # mmdet's default deltas (5, 30, 30)
    yolox_changed = 0
    for seed in range(20):
        np.random.seed(seed)
        assert not aug.transform({'img': black.copy()})['img'].any()
        np.random.seed(seed)
        yolox_changed += int(yolox.transform({'img': black.copy()})['img'].any())
    # YOLOX's jitter adds a value offset: black turns grey whenever the V delta is drawn positive.
    assert yolox_changed > 0


def test_value_scales_grey_levels():
    grey = np.full((4, 4, 3), 100, np.uint8)
    np.random.seed(0)
    gain = np.random.uniform(-1, 1, 3)[2] * 0.4
    np.random.seed(0)
    out = UltralyticsHSVRandomAug().transform({'img': grey.copy()})['img']
    assert np.all(out == int(np.clip(100 * (1 + gain), 0, 255)))  # a grey pixel stays grey


@pytest.mark.parametrize('kwargs', [
    dict(hue_gain=-0.1), dict(saturation_gain=1.5), dict(value_gain=float('nan')),
    dict(value_gain='0.4'), dict(hue_gain=True), dict(saturation_gain=None)])
def test_bad_gains_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UltralyticsHSVRandomAug(**kwargs)


def test_non_uint8_image_raises():
    img = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r'uint8.*a\.png'):
        UltralyticsHSVRandomAug().transform({'img': img, 'img_path': 'a.png'})
