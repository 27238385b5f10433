"""classifier_rows / plot_roc_curves on a prediction CSV."""
import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from spinexr.evaluation.classifier_report import (classifier_rows, format_rows_markdown,
                                                  plot_roc_curves)


def _csv(path, n=80, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    b = rng.random(n)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'label', 'prob', 'pred', 'prob_a', 'prob_b'])
        for i in range(n):
            w.writerow([f'i{i}', f's{i}', 'test', y[i], 0.7 * a[i] + 0.3 * b[i], 0, a[i], b[i]])
    return str(path), y, a, b


def test_rows_and_plot(tmp_path):
    path, y, a, b = _csv(tmp_path / 'p.csv')
    thr = tmp_path / 'search.json'
    thr.write_text(json.dumps(dict(threshold=0.45, member_thresholds=dict(a=0.5, b=0.4),
                                   source=dict(split='train'))))
    rows = classifier_rows(path, thresholds=str(thr), n_bootstrap=100)
    assert [r['model'] for r in rows] == ['ensemble', 'a', 'b']
    assert [r['threshold'] for r in rows] == [0.45, 0.5, 0.4]
    assert rows[1]['auroc'] == pytest.approx(100 * roc_auc_score(y, a))
    assert rows[1]['sensitivity'] == pytest.approx(100 * np.mean(a[y == 1] >= 0.5))
    lo, hi = rows[1]['auroc_ci']
    assert lo < rows[1]['auroc'] < hi
    assert rows[0]['n_images'] == 80
    md = format_rows_markdown(rows)
    assert md.count('\n') == 5 and '| a |' in md
    png = plot_roc_curves(path, str(tmp_path / 'roc.png'), thresholds=str(thr))
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(threshold=0.5, source=dict(split='test'))))
    with pytest.raises(ValueError, match='leakage'):
        classifier_rows(path, thresholds=str(bad))
    assert rows[0]['bootstrap_units'] == 80  # one study per image in this file
    no_ci = classifier_rows(path, score_columns={'only_a': 'prob_a'}, n_bootstrap=0)
    assert no_ci[0]['auroc_ci'] is None and no_ci[0]['threshold'] == 0.5


def test_rows_resample_the_study_column(tmp_path):
    path, y, a, b = _csv(tmp_path / 'p.csv', n=60, seed=3)
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    for r in rows[1:]:  # pair the images into studies
        r[1] = f's{int(r[0][1:]) // 2}'
    paired = tmp_path / 'paired.csv'
    with open(paired, 'w', newline='') as f:
        csv.writer(f).writerows(rows)
    by_study = classifier_rows(str(paired), n_bootstrap=100)
    by_image = classifier_rows(path, n_bootstrap=100)
    assert by_study[0]['bootstrap_units'] == 30 and by_image[0]['bootstrap_units'] == 60
    assert by_study[0]['auroc'] == by_image[0]['auroc']
    assert by_study[0]['auroc_ci'] != by_image[0]['auroc_ci']
