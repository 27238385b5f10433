"""Bootstrap intervals over images: weighted evaluation equals explicit resampling."""
import time

import numpy as np
import pytest

from spinexr.evaluation.bootstrap import bootstrap_map_ci, resample_weights, weighted_map
from spinexr.evaluation.coco_ap import ImageGT, ImagePred, ap_per_class, match_coco, nanmean


def _data(n_img=30, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n_img):
        k = int(rng.integers(0, 4))
        xy = rng.uniform(0, 80, (k, 2))
        boxes = np.hstack([xy, xy + rng.uniform(10, 30, (k, 2))])
        labels = rng.integers(0, num_classes, k)
        gts.append(ImageGT(img_id=i + 1, bboxes=boxes, labels=labels,
                           areas=np.ones(k), iscrowd=np.zeros(k, bool)))
        det = boxes + rng.normal(0, 3, boxes.shape)
        extra_xy = rng.uniform(0, 80, (3, 2))
        extra = np.hstack([extra_xy, extra_xy + 20])
        preds.append(ImagePred(img_id=i + 1, bboxes=np.vstack([det, extra]),
                               scores=rng.random(k + 3),
                               labels=np.concatenate([labels, rng.integers(0, num_classes, 3)])))
    return gts, preds, num_classes


def test_weighted_equals_explicit_resample():
    gts, preds, nc = _data()
    match = match_coco(gts, preds, nc, iou_thrs=[0.5])
    w = resample_weights(len(gts), 5, seed=1)
    fast = weighted_map(match, w)
    for b in range(5):
        new_gts, new_preds, nid = [], [], 0
        for i, count in enumerate(w[b]):
            for _ in range(count):
                nid += 1
                g, p = gts[i], preds[i]
                new_gts.append(ImageGT(nid, g.bboxes, g.labels, g.areas, g.iscrowd))
                new_preds.append(ImagePred(nid, p.bboxes, p.scores, p.labels))
        ref = nanmean(ap_per_class(match_coco(new_gts, new_preds, nc, iou_thrs=[0.5]))[0])
        assert fast[b] == pytest.approx(ref, abs=1e-12)
    # weights of one reproduce the point estimate
    ones = weighted_map(match, np.ones((1, len(gts))))
    assert ones[0] == pytest.approx(nanmean(ap_per_class(match)[0]))


def test_ci_deterministic_and_sane():
    gts, preds, nc = _data(n_img=60, seed=2)
    match = match_coco(gts, preds, nc)
    point = nanmean(ap_per_class(match)[0])
    t0 = time.perf_counter()
    a = bootstrap_map_ci(match, n_resamples=1000, seed=7)
    assert time.perf_counter() - t0 < 10.0  # vectorised: 1000 resamples are fast
    b = bootstrap_map_ci(match, n_resamples=1000, seed=7)
    c = bootstrap_map_ci(match, n_resamples=1000, seed=8)
    assert a == b and a['low'] != c['low']
    assert a['low'] <= point <= a['high']
    assert 0.0 < a['high'] - a['low'] < 0.5
    assert abs(a['mean'] - point) < 0.1
    w = resample_weights(10, 4, seed=0)
    assert (w.sum(axis=1) == 10).all()
