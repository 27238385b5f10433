"""The weight search also stores study-level Youden thresholds on the out-of-fold studies."""
import csv

import pytest

from spinexr.evaluation.roc import youden_threshold
from spinexr.models.classifiers.ensemble_search import run_search


def test_study_thresholds_on_oof_studies(tmp_path):
    # 4 studies x 2 views, two members; b is constant, so weights (0.5, 0.5) tie with (1, 0)
    # and win (closest to uniform): ensemble = 0.5 * a + 0.25
    table = [('s1', 1, 0.9, 0.5), ('s1', 0, 0.1, 0.5), ('s2', 1, 0.4, 0.5), ('s2', 1, 0.3, 0.5),
             ('s3', 0, 0.2, 0.5), ('s3', 0, 0.6, 0.5), ('s4', 0, 0.35, 0.5), ('s4', 0, 0.05, 0.5)]
    oof = tmp_path / 'oof.csv'
    with open(oof, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'fold', 'label', 'prob_a', 'prob_b'])
        for i, (s, y, a, b) in enumerate(table):
            w.writerow([f'i{i}', s, 'train', i % 2, y, a, b])
    payload = run_search(str(oof), str(tmp_path / 'search.json'), step=0.5)
    assert payload['weights'] == {'a': 0.5, 'b': 0.5}
    study = payload['study_thresholds']
    assert sorted(study) == ['max', 'mean', 'noisy_or']
    # study max of the ensemble: abnormal 0.7, 0.45; normal 0.55, 0.425. Youden's J is 0.5 at
    # 0.7 and at 0.45; ties go to the highest threshold -> 0.7. Member a: 0.9 likewise.
    assert study['max']['threshold'] == pytest.approx(0.7)
    assert study['max']['member_thresholds']['a'] == pytest.approx(0.9)
    assert study['max']['member_thresholds']['a'] == youden_threshold([1, 1, 0, 0],
                                                                       [0.9, 0.4, 0.6, 0.35])
    assert study['max']['n_studies'] == 4 and study['max']['auroc'] == pytest.approx(0.75)
    assert payload['oof']['auroc'] == pytest.approx(0.8)  # image level: 12 of 15 pairs
