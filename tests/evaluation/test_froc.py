"""FROC against a hand-computed case: one hit per lesion, FPs over all images, ties together."""
import numpy as np
import pytest

from spinexr.analysis.report import plot_froc
from spinexr.evaluation.coco_ap import ImageGT, ImagePred, match_coco
from spinexr.evaluation.froc import FROC_FP_RATES, froc_curve, froc_summary, froc_table


def _gt(img_id, boxes, labels):
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    return ImageGT(img_id=img_id, bboxes=boxes, labels=np.array(labels, dtype=np.int64),
                   areas=(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
                   iscrowd=np.zeros(len(labels), bool))


def _pred(img_id, dets):
    """dets: (box, score, label) tuples."""
    return ImagePred(img_id=img_id,
                     bboxes=np.array([d[0] for d in dets], dtype=np.float64).reshape(-1, 4),
                     scores=np.array([d[1] for d in dets], dtype=np.float64),
                     labels=np.array([d[2] for d in dets], dtype=np.int64))


A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]


def _case():
    """4 images (2 normal), lesions: class 0 x2 (image 0), class 1 x1 (image 1)."""
    return match_coco(*_case_inputs(), num_classes=2, max_dets=1000)


def _case_inputs():
    """Ground truth and detections of :func:`_case`."""
    gts = [_gt(0, [A, B], [0, 0]), _gt(1, [C], [1]), _gt(2, [], []), _gt(3, [], [])]
    preds = [
        _pred(0, [(A, 0.9, 0), ([1, 1, 11, 11], 0.8, 0),   # hit A, then a second box on A: FP
                  (B, 0.5, 0)]),                           # hit B
        _pred(1, [(C, 0.6, 1), (C, 0.3, 0)]),              # hit C; wrong class: FP of class 0
        _pred(2, [([50, 50, 60, 60], 0.7, 0)]),            # FP on a normal image
        _pred(3, [([50, 50, 60, 60], 0.4, 1)]),            # FP on a normal image
    ]
    return gts, preds


def test_hand_computed_froc():
    match = _case()
    # pooled, by score: .9 hit, .8 FP, .7 FP, .6 hit, .5 hit, .4 FP, .3 FP; 4 images, 3 lesions
    fps, sens = froc_curve(match)
    np.testing.assert_allclose(fps, [0, 0, .25, .5, .5, .5, .75, 1.0])
    np.testing.assert_allclose(sens, [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1, 1, 1])
    table = froc_table(match)[0]
    assert FROC_FP_RATES == (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    np.testing.assert_allclose(table[2], [1 / 3, 1 / 3, 1, 1, 1, 1, 1])        # overall
    np.testing.assert_allclose(table[0], [.5, .5, 1, 1, 1, 1, 1])              # class 0
    np.testing.assert_allclose(table[1], [1, 1, 1, 1, 1, 1, 1])                # class 1
    summary = froc_summary(match, ['a', 'b'])
    assert summary['overall']['fp_0.125'] == pytest.approx(100 / 3)
    assert summary['overall']['mean'] == pytest.approx(100 * (2 / 3 + 5) / 7)
    assert summary['a']['mean'] == pytest.approx(100 * (1 + 5) / 7)


def test_ties_enter_together_and_weights_replicate_images():
    gts = [_gt(0, [A], [0])]
    preds = [_pred(0, [([50, 50, 60, 60], 0.5, 0), (A, 0.5, 0)])]
    match = match_coco(gts, preds, num_classes=1, max_dets=1000)
    fps, sens = froc_curve(match)
    np.testing.assert_allclose(fps, [0, 1])      # one operating point for the tied pair
    np.testing.assert_allclose(sens, [0, 1])
    assert froc_table(match)[0, 0, 2] == 0        # at 0.5 FP/image the pair is not yet in
    # weights: the hand case with image 2 (one FP, normal) drawn twice and image 3 not at all
    match = _case()
    w = np.array([[1, 1, 2, 0]])
    fps, sens = froc_curve(match, weights=w[0])
    # by score: .9 hit, .8 FP, .7 FP x2, .6 hit, .5 hit, .4 (weight 0), .3 FP; 4 images drawn
    np.testing.assert_allclose(fps, [0, 0, .25, .75, .75, .75, .75, 1.0])
    np.testing.assert_allclose(sens, [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1, 1, 1])


def test_class_without_lesions_is_nan_and_plot(tmp_path):
    gts = [_gt(0, [A], [0])]
    preds = [_pred(0, [(A, 0.9, 0), (B, 0.8, 1)])]
    match = match_coco(gts, preds, num_classes=2, max_dets=1000)
    table = froc_table(match)[0]
    assert np.all(np.isnan(table[1])) and np.all(table[0] == 1)
    out = plot_froc({'overall': froc_curve(match), 'b': froc_curve(match, class_index=1)},
                    str(tmp_path / 'froc.png'))
    assert (tmp_path / 'froc.png').stat().st_size > 0 and out.endswith('froc.png')


def test_study_bootstrap_interval_of_the_froc_mean():
    from spinexr.evaluation.bootstrap import resample_weights, study_groups
    from spinexr.evaluation.froc import bootstrap_froc_ci
    match = _case()
    studies = ['s0', 's0', 's1', 's2']  # images 0 and 1 are two views of one study
    boot = bootstrap_froc_ci(match, n_resamples=200, seed=3, study_ids=studies)
    assert boot['n_units'] == 3 and boot['unit'] == 'study' and boot['n_resamples'] == 200
    # the replicates are the FROC of the study-resampled weights, computed explicitly
    w = resample_weights(4, 200, seed=3, groups=study_groups(studies, 4))
    table = froc_table(match, w)[:, 2]                    # overall, (200, 7)
    means = table.mean(axis=1)
    defined = np.isfinite(means)                          # no lesion drawn: undefined, left out
    assert boot['n_dropped'] == int((~defined).sum()) > 0
    lo, hi = np.quantile(means[defined], [0.025, 0.975])
    assert boot['mean_low'] == pytest.approx(lo) and boot['mean_high'] == pytest.approx(hi)
    lo1, hi1 = np.quantile(table[defined, 3], [0.025, 0.975])   # 1 FP/image
    assert boot['rate_low'][3] == pytest.approx(lo1) and boot['rate_high'][3] == pytest.approx(hi1)
    point = froc_table(match)[0, 2].mean()
    assert boot['mean_low'] <= point <= boot['mean_high']
    # same seed, same interval; image resampling without study ids has 4 units
    again = bootstrap_froc_ci(match, n_resamples=200, seed=3, study_ids=studies)
    assert (again['mean_low'], again['mean_high']) == (boot['mean_low'], boot['mean_high'])
    chunked = bootstrap_froc_ci(match, n_resamples=200, seed=3, study_ids=studies, max_elements=7,
                                block=1)
    np.testing.assert_array_equal(chunked['rate_high'], boot['rate_high'])
    # the walk stops early once past the largest rate, with the same result
    low_rates = bootstrap_froc_ci(match, n_resamples=200, seed=3, study_ids=studies, block=1,
                                  rates=(0.125, 0.25))
    lo, hi = np.quantile(froc_table(match, w, rates=(0.125, 0.25))[defined, 2, 1],
                         [0.025, 0.975])
    assert (low_rates['rate_low'][1], low_rates['rate_high'][1]) == (pytest.approx(lo),
                                                                     pytest.approx(hi))
    assert bootstrap_froc_ci(match, n_resamples=50, seed=3)['n_units'] == 4


def test_compact_curve_keeps_the_steps():
    from spinexr.evaluation.froc import compact_curve
    fps, sens = froc_curve(_case())
    cf, cs = compact_curve(fps, sens)
    # the steps where sensitivity rises, then the last operating point
    np.testing.assert_allclose(cf, [0, 0, .5, .5, 1.0])
    np.testing.assert_allclose(cs, [0, 1 / 3, 2 / 3, 1, 1])
    from spinexr.evaluation.froc import sensitivity_at
    np.testing.assert_allclose(sensitivity_at(cf[None], cs[None]), sensitivity_at(fps[None],
                                                                                  sens[None]))


def test_comparison_row_curve_sees_every_detection():
    """The table's curve fields: the hand case's corners, with no ``max_dets`` cut."""
    from spinexr.evaluation.det_summary import froc_curve_fields
    fields = froc_curve_fields(*_case_inputs(), num_classes=2)
    np.testing.assert_allclose(fields['froc_curve_fps'], [0, 0, .5, .5, 1.0])
    np.testing.assert_allclose(fields['froc_curve_sens'], [0, 1 / 3, 2 / 3, 1, 1])
