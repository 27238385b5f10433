"""The side marker of the phantom's imaging chain, under OpenCV 4 and 5 alike."""
import cv2
import numpy as np
import pytest

from spinexr.datasets.phantom.imaging import MARKER_DENSITY, add_marker

OPENCV_MAJOR = int(cv2.__version__.split('.')[0])


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_marker_is_drawn_on_a_float_density_map(dtype, seed):
    h, w = 1000, 800  # the phantom's images are 1,000-3,000 px high
    metal = np.zeros((h, w), dtype)
    add_marker(metal, np.random.default_rng(seed))
    assert metal.dtype == dtype
    assert set(np.unique(metal).tolist()) == {0.0, MARKER_DENSITY}
    ys, xs = np.nonzero(metal)
    assert 10 <= ys.size < 0.01 * metal.size  # a small letter, not a blob
    # in one of the four corners (the letter's baseline sits at 8 % or 95 % of the height)
    assert ys.max() < 0.2 * h or ys.min() > 0.8 * h
    assert xs.max() < 0.2 * w or xs.min() > 0.8 * w


def test_marker_keeps_what_is_already_there():
    metal = np.full((1000, 800), 0.7, np.float32)
    add_marker(metal, np.random.default_rng(0))
    assert set(np.unique(metal).tolist()) == {np.float32(0.7), MARKER_DENSITY}


@pytest.mark.skipif(OPENCV_MAJOR >= 5, reason='OpenCV 5 draws text on 8-bit images only')
@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_marker_pixels_are_those_opencv4_drew_on_the_float_map(seed):
    """The 8-bit mask route gives exactly the phantom images of the earlier float drawing."""
    h, w = 1000, 800
    rng = np.random.default_rng(seed)
    scale = max(h * rng.uniform(0.012, 0.02), 4.0) / 22.0
    text = str(rng.choice(['L', 'R']))
    x, y = int(w * rng.choice([0.05, 0.85])), int(h * rng.choice([0.08, 0.95]))
    before = np.zeros((h, w), np.float32)
    cv2.putText(before, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 2.5,
                max(int(round(scale * 2.5)), 1), cv2.LINE_8)
    after = np.zeros((h, w), np.float32)
    add_marker(after, np.random.default_rng(seed))
    np.testing.assert_array_equal(after, before)
