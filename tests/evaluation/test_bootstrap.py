"""Study (cluster) bootstrap of mAP: weighted evaluation equals explicit resampling, views of a
study are drawn together, a class absent from a resample follows the documented rule.

Speed is measured in ``benchmarks/bench_bootstrap.py``, not asserted here.
"""
import numpy as np
import pytest

from spinexr.evaluation.bootstrap import (bootstrap_map_ci, resample_weights, study_groups,
                                          weighted_map)
from spinexr.evaluation.coco_ap import (ImageGT, ImagePred, ap_per_class, interpolated_ap,
                                        match_coco, nanmean)


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


def _duplicate_views(gts, preds):
    """Every image twice, as two views of one study: perfectly correlated views."""
    new_gts, new_preds, studies = [], [], []
    for g, p in zip(gts, preds):
        for view in range(2):
            nid = 2 * g.img_id + view
            new_gts.append(ImageGT(nid, g.bboxes, g.labels, g.areas, g.iscrowd,
                                   study_id=f'study{g.img_id}'))
            new_preds.append(ImagePred(nid, p.bboxes, p.scores, p.labels))
            studies.append(f'study{g.img_id}')
    return new_gts, new_preds, studies


def _explicit_map(gts, preds, counts, nc):
    """mAP@0.5 of the resample that repeats image ``i`` ``counts[i]`` times."""
    new_gts, new_preds, nid = [], [], 0
    for i, count in enumerate(counts):
        for _ in range(count):
            nid += 1
            g, p = gts[i], preds[i]
            new_gts.append(ImageGT(nid, g.bboxes, g.labels, g.areas, g.iscrowd))
            new_preds.append(ImagePred(nid, p.bboxes, p.scores, p.labels))
    return nanmean(ap_per_class(match_coco(new_gts, new_preds, nc, iou_thrs=[0.5]))[0])


def test_weighted_equals_explicit_resample():
    gts, preds, nc = _data()
    match = match_coco(gts, preds, nc, iou_thrs=[0.5])
    groups = study_groups([f's{i // 3}' for i in range(len(gts))], len(gts))
    for w in (resample_weights(len(gts), 5, seed=1),  # images
              resample_weights(len(gts), 5, seed=1, groups=groups)):  # studies of 3 images
        fast = weighted_map(match, w)
        for b in range(5):
            assert fast[b] == pytest.approx(_explicit_map(gts, preds, w[b], nc), abs=1e-12)
    # weights of one reproduce the point estimate
    ones = weighted_map(match, np.ones((1, len(gts))))
    assert ones[0] == pytest.approx(nanmean(ap_per_class(match)[0]))


def test_batched_interpolation_equals_row_by_row():
    # 7 of 10 positives found with precision 1: recall 0.7 lies just below COCO's 71st recall
    # threshold (0.7000000000000001), which a batch must not round onto it.
    tp = np.cumsum(np.r_[np.ones(7), np.zeros(3)])[None, :]
    fp = np.cumsum(np.r_[np.zeros(7), np.ones(3)])[None, :]
    tp_cum, fp_cum = np.repeat(tp, 3, axis=0), np.repeat(fp, 3, axis=0)
    ap = interpolated_ap(tp_cum, fp_cum, np.full(3, 10.0))
    np.testing.assert_array_equal(ap, np.full(3, 70 / 101))
    assert interpolated_ap(tp, fp, np.array([10.0]))[0] == 70 / 101


def test_views_of_a_study_are_drawn_together():
    # 3 studies of two views and 2 single-view studies, in shuffled order
    ids = ['a', 'b', 'a', 'c', 'd', 'b', 'c', 'e']
    groups = study_groups(ids, len(ids))
    assert groups.tolist() == [0, 1, 0, 2, 3, 1, 2, 4]
    w = resample_weights(len(ids), 500, seed=0, groups=groups)
    assert (w[:, 0] == w[:, 2]).all() and (w[:, 1] == w[:, 5]).all()
    assert (w[:, 3] == w[:, 6]).all()
    # 5 studies drawn 5 times per resample; each study's count is given to all its views
    assert (w[:, [0, 1, 3, 4, 7]].sum(axis=1) == 5).all()
    assert w[:, 0].mean() == pytest.approx(1.0, abs=0.15)
    # no groups: the plain image bootstrap, identical to one study per image
    img = resample_weights(len(ids), 500, seed=0)
    assert (img.sum(axis=1) == len(ids)).all()
    np.testing.assert_array_equal(img, resample_weights(len(ids), 500, seed=0,
                                                        groups=np.arange(len(ids))))


def test_study_ids_missing_or_wrong():
    assert study_groups(None, 4).tolist() == [0, 1, 2, 3]
    # an image without a study id is a study of its own
    assert study_groups(['s', '', 's', None], 4).tolist() == [0, 1, 0, 2]
    with pytest.raises(ValueError, match='3 study ids for 4 images'):
        study_groups(['a', 'b', 'c'], 4)
    gts, preds, nc = _data(n_img=12)
    match = match_coco(gts, preds, nc, iou_thrs=[0.5])
    no_ids = bootstrap_map_ci(match, n_resamples=50)
    assert no_ids['unit'] == 'image' and no_ids['n_units'] == 12
    pairs = bootstrap_map_ci(match, n_resamples=50, study_ids=[i // 2 for i in range(12)])
    assert pairs['unit'] == 'study' and pairs['n_units'] == 6


def test_duplicated_views_widen_the_interval():
    gts, preds, nc = _data(n_img=60, seed=2)
    dup_gts, dup_preds, studies = _duplicate_views(gts, preds)
    match = match_coco(gts, preds, nc, iou_thrs=[0.5])
    dup = match_coco(dup_gts, dup_preds, nc, iou_thrs=[0.5])
    single = bootstrap_map_ci(match, n_resamples=400, seed=3)
    by_study = bootstrap_map_ci(dup, n_resamples=400, seed=3, study_ids=studies)
    by_image = bootstrap_map_ci(dup, n_resamples=400, seed=3, study_ids=None)
    # A copy adds no information: resampling the studies of the duplicated set is exactly the
    # image bootstrap of the originals; resampling its images pretends to twice the data.
    for k in ('low', 'high', 'mean', 'std'):
        assert by_study[k] == pytest.approx(single[k], abs=1e-9), k
    assert by_image['high'] - by_image['low'] < 0.85 * (by_study['high'] - by_study['low'])
    assert by_image['std'] < 0.85 * by_study['std']


def _absent_class_case():
    """Class 1 only in study 'rare' (two views), found below a false positive of class 1 that
    every image has; class 0 everywhere, found perfectly."""
    gts, preds, studies = [], [], []
    for i in range(6):
        study = 'rare' if i < 2 else f's{i}'
        labels = np.array([0, 1]) if i < 2 else np.array([0])
        boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float)[:len(labels)]
        gts.append(ImageGT(i + 1, boxes, labels, np.ones(len(labels)),
                           np.zeros(len(labels), bool), study_id=study))
        det = np.vstack([boxes, [[50, 50, 60, 60]]])
        scores = np.array([0.9, 0.5, 0.7]) if i < 2 else np.array([0.9, 0.7])
        preds.append(ImagePred(i + 1, det, scores, np.r_[labels, 1]))
        studies.append(study)
    return gts, preds, studies


def test_absent_class_rule():
    gts, preds, studies = _absent_class_case()
    match = match_coco(gts, preds, 2, iou_thrs=[0.5])
    with_rare = np.array([[1, 1, 1, 1, 1, 1]])
    without = np.array([[0, 0, 2, 1, 1, 2]])
    assert weighted_map(match, with_rare, absent_class='drop_replicate')[0] < 0.9
    # drop_replicate: a resample without class 1 is undefined, it is not the mean over class 0
    assert np.isnan(weighted_map(match, without, absent_class='drop_replicate')[0])
    # drop_class: class 1 leaves that replicate's mean, which is then the AP of class 0 (1.0)
    assert weighted_map(match, without, absent_class='drop_class')[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='absent_class'):
        weighted_map(match, without, absent_class='zero')
    # the interval uses the defined replicates and reports how many were left out
    groups = study_groups(studies, len(studies))
    w = resample_weights(len(studies), 300, seed=5, groups=groups)
    expected_dropped = int(np.sum(w[:, 0] == 0))
    assert 0 < expected_dropped < 300
    res = bootstrap_map_ci(match, n_resamples=300, seed=5, study_ids=studies, chunk=64)
    assert res['n_dropped'] == expected_dropped and res['n_units'] == 5
    vals = weighted_map(match, w, absent_class='drop_replicate')
    kept = vals[np.isfinite(vals)]
    assert res['low'] == pytest.approx(np.quantile(kept, 0.025))
    assert res['high'] == pytest.approx(np.quantile(kept, 0.975))
    old_rule = bootstrap_map_ci(match, n_resamples=300, seed=5, study_ids=studies,
                                absent_class='drop_class')
    assert old_rule['n_dropped'] == 0 and old_rule['high'] == pytest.approx(1.0)


def test_ci_deterministic_and_sane():
    gts, preds, nc = _data(n_img=60, seed=2)
    match = match_coco(gts, preds, nc)
    point = nanmean(ap_per_class(match)[0])
    studies = [i // 2 for i in range(60)]
    a = bootstrap_map_ci(match, n_resamples=1000, seed=7, study_ids=studies)
    b = bootstrap_map_ci(match, n_resamples=1000, seed=7, study_ids=studies)
    c = bootstrap_map_ci(match, n_resamples=1000, seed=8, study_ids=studies)
    assert a == b and a['low'] != c['low']
    assert a['low'] <= point <= a['high']
    assert 0.0 < a['high'] - a['low'] < 0.5
    assert abs(a['mean'] - point) < 0.1
