"""Tests of the phantom's target statistics and samplers (planning only, no rendering)."""
import collections

import numpy as np

from spinexr.datasets.metainfo import CLASSES
from spinexr.datasets.phantom import plan_split
from spinexr.datasets.phantom import statistics as st


def test_real_statistics_are_the_notes():
    assert sum(st.TRAIN_BOXES.values()) == 15290
    assert round(st.TRAIN_BOXES['Osteophytes'] / st.TRAIN_BOXES['Vertebral collapse'], 1) == 46.9
    assert abs(st.normal_share('train') - 4260 / 8389) < 1e-12
    assert abs(st.normal_share('test') - 1070 / 2077) < 1e-12
    assert set(st.TRAIN_BOXES) == set(CLASSES) == set(st.MEDIAN_BOX_WH)


def test_findings_follow_the_real_train_statistics():
    rng = np.random.default_rng(0)
    n = 20000
    boxes, images = collections.Counter(), collections.Counter()
    for _ in range(n):
        f = st.sample_findings(rng, abnormal=True)
        assert f and all(k >= 1 for k in f.values())
        for c, k in f.items():
            boxes[c] += k
            images[c] += 1
    abnormal = 8389 - 4260
    for c in CLASSES:  # share of abnormal images with the class, boxes per abnormal image
        assert abs(images[c] / n - st.TRAIN_IMAGES_WITH[c] / abnormal) < 0.012, c
        assert abs(boxes[c] / n / (st.TRAIN_BOXES[c] / abnormal) - 1) < 0.15, c
    assert boxes['Osteophytes'] / boxes['Vertebral collapse'] > 30
    assert st.sample_findings(rng, abnormal=False) == {}


def test_plans_normal_share_views_photometric_sizes():
    plans = plan_split('train', 3000, seed=0)
    normal = np.mean([not p.findings for p in plans])
    assert abs(normal - st.normal_share('train')) < 0.035
    assert 0.06 < np.mean([p.monochrome1 for p in plans]) < 0.14
    assert {p.view for p in plans} == {'lateral', 'ap'}
    h = np.array([p.height for p in plans])
    w = np.array([p.width for p in plans])
    assert h.min() >= 815 and h.max() <= 4243 and w.min() >= 675 and w.max() <= 4061
    assert abs(np.median(h) - 2874) < 250 and abs(np.median(w) - 1243) < 200
    assert len({p.image_id for p in plans}) == 3000
    small = plan_split('train', 10, seed=0, size_scale=0.25)  # same plan, smaller images
    assert [p.image_id for p in small] == [p.image_id for p in plans[:10]]
    assert all(abs(s.height - p.height * 0.25) <= 1 for s, p in zip(small, plans))
