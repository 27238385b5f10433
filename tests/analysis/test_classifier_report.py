"""classifier_rows / plot_roc_curves on a prediction CSV."""
import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from spinexr.analysis.classifier_report import (classifier_rows, format_rows_markdown,
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


def _study_csv(path):
    """4 studies x 2 views; one model. Hand-checked AUROCs:

    image level: positives 0.9, 0.4, 0.3 vs negatives 0.1, 0.2, 0.6, 0.35, 0.05 -> 12/15 = 0.8;
    study level (max): abnormal s1 0.9, s2 0.4 vs normal s3 0.6, s4 0.35 -> 3/4 = 0.75.
    """
    table = [('s1', 1, 0.9), ('s1', 0, 0.1), ('s2', 1, 0.4), ('s2', 1, 0.3),
             ('s3', 0, 0.2), ('s3', 0, 0.6), ('s4', 0, 0.35), ('s4', 0, 0.05)]
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'label', 'prob', 'pred'])
        for i, (s, y, p) in enumerate(table):
            w.writerow([f'i{i}', s, 'test', y, p, int(p >= 0.45)])
    return str(path)


def test_study_rows_differ_from_image_rows_by_hand(tmp_path):
    from spinexr.analysis.classifier_report import study_rows
    path = _study_csv(tmp_path / 'p.csv')
    image = classifier_rows(path, thresholds=0.45, n_bootstrap=0)[0]
    assert image['auroc'] == pytest.approx(80.0)
    thr = tmp_path / 'search.json'  # image-level threshold only (an older json)
    thr.write_text(json.dumps(dict(threshold=0.45, source=dict(split='train'))))
    row = study_rows(path, rule='max', thresholds=str(thr), n_bootstrap=0)[0]
    assert (row['model'], row['level'], row['rule']) == ('model', 'study', 'max')
    assert (row['n_studies'], row['n_abnormal']) == (4, 2)
    assert row['auroc'] == pytest.approx(75.0)
    # at 0.45: s1 TP, s2 (0.4) FN, s3 (0.6) FP, s4 TN
    assert (row['sensitivity'], row['specificity'], row['f1']) == (50.0, 50.0, 50.0)
    assert row['threshold'] == 0.45 and row['threshold_source'].startswith('image-level')
    # noisy-or: s1 0.91, s2 0.58 vs s3 0.68, s4 0.3825 -> 3/4; mean: 0.5, 0.35 vs 0.4, 0.2 -> 3/4
    for rule in ('noisy_or', 'mean'):
        assert study_rows(path, rule=rule, n_bootstrap=0)[0]['auroc'] == pytest.approx(75.0)
    # a study-level threshold of the json (for this rule) wins over the image-level one
    thr.write_text(json.dumps(dict(threshold=0.45, source=dict(split='train'),
                                   study_thresholds=dict(max=dict(threshold=0.38)))))
    row = study_rows(path, rule='max', thresholds=str(thr), n_bootstrap=50)[0]
    assert row['threshold'] == 0.38 and row['threshold_source'].startswith('study-level Youden')
    assert (row['sensitivity'], row['specificity']) == (100.0, 50.0)
    assert row['bootstrap_units'] == 4
    md = format_rows_markdown([image, row])
    assert '| model (study, max, 4 studies) |' in md
    thr.write_text(json.dumps(dict(threshold=0.5, source=dict(split='test'),
                                   study_thresholds=dict(max=dict(threshold=0.38)))))
    with pytest.raises(ValueError, match='leakage'):
        study_rows(path, thresholds=str(thr))
    with pytest.raises(ValueError, match='unknown study rule'):
        study_rows(path, rule='vote')
    with pytest.raises(KeyError, match='study_id'):
        study_rows({'label': [0, 1], 'prob': [0.2, 0.8]})


def test_report_tool_writes_study_rows(tmp_path):
    import importlib.util

    from _tools import REPO
    spec = importlib.util.spec_from_file_location(
        'classifier_report_tool', REPO / 'tools' / 'analysis_tools' / 'classifier_report.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = _study_csv(tmp_path / 'p.csv')
    out = tmp_path / 'report'
    rows = tool.main([path, '--thresholds', '0.45', '--out-dir', str(out), '--n-bootstrap', '0',
                      '--study-rule', 'noisy_or'])
    assert [(r['model'], r.get('rule')) for r in rows] == [('model', None), ('model', 'noisy_or')]
    assert rows[1]['auroc'] == pytest.approx(75.0) and rows[0]['auroc'] == pytest.approx(80.0)
    saved = json.loads((out / 'classifier_rows.json').read_text())
    assert saved[1]['level'] == 'study' and saved[1]['n_studies'] == 4
    assert 'model (study, noisy_or, 4 studies)' in (out / 'classifier_table.md').read_text()
    assert len(tool.main([path, '--out-dir', str(out), '--n-bootstrap', '0',
                          '--study-rule', 'none'])) == 1
