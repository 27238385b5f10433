"""Tests of the lesion signatures and of the realised box statistics of rendered images."""
import collections

import cv2
import numpy as np
import pytest

from spinexr.datasets.metainfo import CLASSES
from spinexr.datasets.phantom import plan_split, render_phantom_image
from spinexr.datasets.phantom import statistics as st

H, W = 575, 249  # 0.2 x the median real size


@pytest.mark.parametrize('view', ['lateral', 'ap'])
@pytest.mark.parametrize('cls', CLASSES)
def test_signature_is_visible_in_its_box(cls, view):
    for seed in range(5):
        with_lesion = render_phantom_image(H, W, view, {cls: 1}, (seed, 9))
        if with_lesion.boxes:
            break
    assert [c for c, _ in with_lesion.boxes] == [cls]
    normal = render_phantom_image(H, W, view, {}, (seed, 9))
    assert normal.boxes == [] and normal.window == with_lesion.window
    x0, y0, x1, y1 = with_lesion.boxes[0][1]
    assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
    diff = np.abs(with_lesion.pixels.astype(np.float32) - normal.pixels)
    inside = diff[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
    assert inside.mean() > 40, (cls, view, inside.mean())  # 12-bit stored units
    if cls in ('Osteophytes', 'Surgical implant', 'Foraminal stenosis', 'Other lesions'):
        # overlays change nothing far from their box
        mask = np.zeros_like(diff, np.uint8)
        cv2.rectangle(mask, (int(x0) - 8, int(y0) - 8), (int(x1) + 8, int(y1) + 8), 1, -1)
        assert diff[mask == 0].max() == 0


def test_monochrome1_inverts_values_and_window():
    m2 = render_phantom_image(H, W, 'lateral', {'Osteophytes': 2}, (1, 2))
    m1 = render_phantom_image(H, W, 'lateral', {'Osteophytes': 2}, (1, 2), monochrome1=True)
    assert (m2.photometric, m1.photometric) == ('MONOCHROME2', 'MONOCHROME1')
    np.testing.assert_array_equal(m1.pixels.astype(int), 4095 - m2.pixels.astype(int))
    assert m1.window == (4095 - m2.window[0], m2.window[1])
    assert m1.boxes == m2.boxes


def test_bone_is_brighter_than_soft_tissue():
    img = render_phantom_image(H, W, 'lateral', {}, (0, 0))
    c, w = img.window
    display = np.clip((img.pixels - (c - w / 2)) / w, 0, 1)
    assert np.percentile(display, 99) - np.percentile(display, 5) > 0.3


def test_realised_statistics_on_rendered_images():
    plans = plan_split('train', 300, seed=11, size_scale=0.1)
    boxes, wh = collections.Counter(), collections.defaultdict(list)
    normal = 0
    for p in plans:
        img = render_phantom_image(p.height, p.width, p.view, p.findings, p.seed)
        normal += not img.boxes
        for cls, (x0, y0, x1, y1) in img.boxes:
            assert 0 <= x0 < x1 <= p.width and 0 <= y0 < y1 <= p.height
            boxes[cls] += 1
            wh[cls].append(((x1 - x0) / 0.1, (y1 - y0) / 0.1))
    assert 0.42 < normal / len(plans) < 0.60
    total = sum(boxes.values())
    assert boxes.most_common(1)[0][0] == 'Osteophytes' and boxes['Osteophytes'] / total > 0.6
    for cls in CLASSES[1:]:  # rare classes stay rare
        assert boxes[cls] / total < 0.12, cls
    assert boxes['Osteophytes'] > 10 * max(boxes['Vertebral collapse'], 1)
    for cls in ('Osteophytes', 'Disc space narrowing'):  # box sizes near the real medians
        med = np.median(np.array(wh[cls]), axis=0)
        ref = np.array(st.MEDIAN_BOX_WH[cls])
        assert np.all(med / ref > 0.6) and np.all(med / ref < 1.6), (cls, med)
