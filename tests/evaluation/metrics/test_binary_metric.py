"""BinaryClsMetric through mmengine's Evaluator, checked against scikit-learn."""
import csv
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from spinexr.evaluation.metrics import BinaryClsMetric
from spinexr.evaluation.roc import summarize


def _samples(n=120, seed=0, members=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y)))
    out = []
    for i in range(n):
        s = DataSample().set_gt_label(int(y[i])).set_pred_score(
            torch.tensor([1 - p[i], p[i]], dtype=torch.float32))
        s.set_metainfo(dict(image_id=f'img{i:03d}', study_id=f'st{i // 2}', split='test'))
        if members:
            s.set_field(torch.tensor([p[i], 1 - p[i]]), 'member_scores')
            s.set_field(['a', 'b'], 'member_names', field_type='metainfo')
        out.append(s)
    return y, p.astype(np.float32).astype(np.float64), out


def _evaluate(metric_cfg, samples):
    evaluator = Evaluator(metric_cfg)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_metric_matches_sklearn():
    y, p, samples = _samples()
    res = _evaluate(BinaryClsMetric(threshold=0.5, n_bootstrap=200), samples)
    pred = (p >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert res['binary/auroc'] == pytest.approx(100 * roc_auc_score(y, p), abs=1e-6)
    assert res['binary/sensitivity'] == pytest.approx(100 * tp / (tp + fn))
    assert res['binary/specificity'] == pytest.approx(100 * tn / (tn + fp))
    assert res['binary/f1'] == pytest.approx(100 * f1_score(y, pred))
    assert res['binary/threshold'] == 0.5
    for k in ('auroc', 'sensitivity', 'specificity', 'f1'):
        assert res[f'binary/{k}_ci_lower'] <= res[f'binary/{k}'] <= res[f'binary/{k}_ci_upper']


def test_bootstrap_resamples_the_samples_studies():
    y, p, samples = _samples(n=80, seed=2)  # study_id st{i // 2}: two views per study
    res = _evaluate(BinaryClsMetric(threshold=0.5, n_bootstrap=200, seed=3), samples)
    studies = [f'st{i // 2}' for i in range(80)]
    ref = summarize(y, p, 0.5, n_bootstrap=200, seed=3, study_ids=studies)
    by_image = summarize(y, p, 0.5, n_bootstrap=200, seed=3)
    for k in ('auroc', 'sensitivity', 'specificity', 'f1'):
        for side in ('lower', 'upper'):
            assert res[f'binary/{k}_ci_{side}'] == pytest.approx(100 * ref[f'{k}_ci_{side}'])
    assert ref['bootstrap_units'] == 40 and by_image['bootstrap_units'] == 80
    assert ref['auroc_ci_lower'] != by_image['auroc_ci_lower']


def test_threshold_from_json_and_youden(tmp_path):
    y, p, samples = _samples(seed=1)
    f = tmp_path / 'search.json'
    f.write_text(json.dumps(dict(threshold=0.7)))
    res = _evaluate(BinaryClsMetric(threshold=str(f), n_bootstrap=0), samples)
    assert res['binary/threshold'] == 0.7
    assert res['binary/sensitivity'] == pytest.approx(100 * np.mean(p[y == 1] >= 0.7))
    assert 'binary/auroc_ci_lower' not in res
    res_y = _evaluate(BinaryClsMetric(threshold='youden', n_bootstrap=0), samples)
    assert 0 < res_y['binary/threshold'] < 1
    # in-sample Youden threshold maximises sens + spec on these data
    assert (res_y['binary/sensitivity'] + res_y['binary/specificity']
            >= res['binary/sensitivity'] + res['binary/specificity'] - 1e-9)
    with pytest.raises(FileNotFoundError):
        BinaryClsMetric(threshold=str(tmp_path / 'missing.json'))
    assert res['binary/threshold_validated'] == 1
    assert res_y['binary/threshold_validated'] == 0


def test_unvalidated_threshold_of_an_ensemble_is_reported():
    """A number as threshold is not validated; an ensemble without weights file says so too."""
    _, _, samples = _samples(n=20, seed=2)
    res = _evaluate(BinaryClsMetric(threshold=0.5, n_bootstrap=0), samples)
    assert res['binary/threshold_validated'] == 0
    for s in samples:
        s.set_metainfo(dict(threshold_validated=False))
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        _evaluate(BinaryClsMetric(threshold=0.5, n_bootstrap=0), samples)
    finally:
        logger.removeHandler(handler)
    assert any('not at a validated operating point' in r.getMessage() for r in records)


def test_prediction_file_with_members(tmp_path):
    y, p, samples = _samples(n=10, members=True)
    out = tmp_path / 'sub' / 'pred.csv'
    _evaluate(BinaryClsMetric(n_bootstrap=0, prediction_file=str(out)), samples)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 10
    assert list(rows[0]) == ['image_id', 'study_id', 'split', 'label', 'prob', 'pred',
                             'prob_a', 'prob_b']
    assert rows[3]['image_id'] == 'img003' and rows[3]['split'] == 'test'
    assert float(rows[3]['prob']) == pytest.approx(p[3], abs=1e-5)
    assert float(rows[3]['prob_b']) == pytest.approx(1 - p[3], abs=1e-5)
    assert int(rows[3]['label']) == y[3]


def test_missing_pred_score_is_clear():
    s = DataSample().set_gt_label(1)
    with pytest.raises(KeyError, match='pred_score'):
        _evaluate(BinaryClsMetric(n_bootstrap=0), [s])
