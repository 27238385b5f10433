"""The classifier chain adds study-level rows beside the image-level ones (issue #15 item 4)."""
import csv
import json

import pytest

from spinexr.experiments.classifier_chain import MEMBERS, run_classifier_chain


def _finished_chain(work):
    """Every output of the chain's steps already there, so only the table rows are computed."""
    cv = work / 'cv'
    cv.mkdir(parents=True)
    (cv / 'oof_predictions.csv').write_text('done\n')
    names = [n for n, _ in MEMBERS]
    (cv / 'ensemble_search.json').write_text(json.dumps(dict(
        threshold=0.45, member_thresholds={n: 0.45 for n in names}, source=dict(split='train'),
        study_thresholds=dict(max=dict(threshold=0.38,
                                       member_thresholds={n: 0.38 for n in names})))))
    for n in names:
        (work / n).mkdir()
        (work / n / 'last_checkpoint').write_text(str(work / n / 'epoch_1.pth'))
    (work / 'ensemble.pth').write_bytes(b'')
    (work / 'ensemble_test').mkdir()
    # 4 studies x 2 views (the hand-checked table of tests/evaluation/test_classifier_report.py)
    table = [('s1', 1, 0.9), ('s1', 0, 0.1), ('s2', 1, 0.4), ('s2', 1, 0.3),
             ('s3', 0, 0.2), ('s3', 0, 0.6), ('s4', 0, 0.35), ('s4', 0, 0.05)]
    with open(work / 'ensemble_test' / 'test_predictions.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'label', 'prob', 'pred',
                    *[f'prob_{n}' for n in names]])
        for i, (s, y, p) in enumerate(table):
            w.writerow([f'i{i}', s, 'test', y, p, int(p >= 0.45), *[p] * len(names)])


def test_chain_rows_include_study_rows(tmp_path):
    _finished_chain(tmp_path)

    def run(cmd, log):  # every step's output exists: nothing may run
        raise AssertionError(f'unexpected run: {cmd}')

    out = run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), run, n_bootstrap=20)
    models = [r['model'] for r in out['rows']]
    assert models[:4] == ['ensemble (weights+threshold on OOF)', *[n for n, _ in MEMBERS]]
    assert models[4:] == ['ensemble [study, max]', *[f'{n} [study, max]' for n, _ in MEMBERS]]
    study = out['rows'][4]
    assert study['AUROC'] == pytest.approx(0.75) and out['rows'][0]['AUROC'] == pytest.approx(0.8)
    assert (study['sensitivity'], study['specificity']) == (1.0, 0.5)  # at the study threshold
    assert '4 studies' in study['notes'] and 'study-level Youden' in study['notes']
    only_images = run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), run,
                                       n_bootstrap=0, study_rule=None)
    assert len(only_images['rows']) == 4
