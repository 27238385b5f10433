"""The classifier chain's rows: both ensembles (issue #15 item 5), each member once, and the
study-level rows beside the image-level ones (issue #15 item 4)."""
import csv
import json

import pytest

from spinexr.experiments.classifier_chain import ENSEMBLES, MEMBERS, run_classifier_chain

NAMES = [n for n, _ in MEMBERS]
# 4 studies x 2 views (the hand-checked table of tests/evaluation/test_classifier_report.py)
TABLE = [('s1', 1, 0.9), ('s1', 0, 0.1), ('s2', 1, 0.4), ('s2', 1, 0.3),
         ('s3', 0, 0.2), ('s3', 0, 0.6), ('s4', 0, 0.35), ('s4', 0, 0.05)]


def _write_search(path, names):
    path.write_text(json.dumps(dict(
        threshold=0.45, member_thresholds={n: 0.45 for n in names}, source=dict(split='train'),
        study_thresholds=dict(max=dict(threshold=0.38,
                                       member_thresholds={n: 0.38 for n in names})))))


def _write_predictions(folder, names):
    folder.mkdir()
    with open(folder / 'test_predictions.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'label', 'prob', 'pred',
                    *[f'prob_{n}' for n in names]])
        for i, (s, y, p) in enumerate(TABLE):
            w.writerow([f'i{i}', s, 'test', y, p, int(p >= 0.45), *[p] * len(names)])


def _finished_chain(work, ensembles=ENSEMBLES):
    """Every output of the chain's steps already there, so only the table rows are computed."""
    cv = work / 'cv'
    cv.mkdir(parents=True)
    members = [n for n in NAMES if any(n in e.members for e in ensembles)]
    (cv / 'oof_predictions.csv').write_text(
        ','.join(['image_id', 'fold', 'label', *[f'prob_{n}' for n in members]]) + '\n')
    for n in members:
        (work / n).mkdir()
        (work / n / 'last_checkpoint').write_text(str(work / n / 'epoch_1.pth'))
    for e in ensembles:
        _write_search(cv / f'{e.key}_search.json', e.members)
        (work / f'{e.key}.pth').write_bytes(b'')
        _write_predictions(work / f'{e.key}_test', e.members)


def _no_run(cmd, args, log_file=None):  # every step's output exists: nothing may run
    raise AssertionError(f'unexpected run: {cmd}')


def test_chain_rows_include_both_ensembles_and_study_rows(tmp_path):
    _finished_chain(tmp_path)
    out = run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), _no_run, n_bootstrap=20)
    models = [r['model'] for r in out['rows']]
    paper = 'DenseNet-121/169/201 paper ensemble, logit average'
    image = ['ensemble (weights+threshold on OOF)', 'densenet121', 'efficientnetv2-s',
             'resnet50', f'{paper} (weights+threshold on OOF)', 'densenet169', 'densenet201']
    study = [f'{m} [study, max]' for m in ('ensemble', 'densenet121', 'efficientnetv2-s',
                                           'resnet50', paper, 'densenet169', 'densenet201')]
    assert models == image + study  # DenseNet-121 (in both ensembles) is reported once
    row = out['rows'][len(image)]
    assert row['AUROC'] == pytest.approx(0.75) and out['rows'][0]['AUROC'] == pytest.approx(0.8)
    assert (row['sensitivity'], row['specificity']) == (1.0, 0.5)  # at the study threshold
    assert '4 studies' in row['notes'] and 'study-level Youden' in row['notes']
    assert set(out['searches']) == {'ensemble', 'densenet-paper'}
    assert out['search'] == out['searches']['ensemble']
    assert all((tmp_path / f'roc_curves{s}.png').is_file() for s in ('', '_densenet-paper'))
    only_images = run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), _no_run,
                                       n_bootstrap=0, study_rule=None)
    assert len(only_images['rows']) == len(image)


def test_chain_finished_before_runs_only_the_new_ensemble(tmp_path):
    """A work dir of the three-member chain: the paper ensemble adds only its two new members'
    folds and trainings, its search (for the logit average) and its test."""
    _finished_chain(tmp_path, ensembles=ENSEMBLES[:1])
    calls = []

    def run(cmd, args, log_file=None):
        calls.append((cmd, list(args)))
        raise RuntimeError('stop')  # the first step needed is enough to check what runs

    with pytest.raises(RuntimeError, match='stop'):
        run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), run, n_bootstrap=0)
    cmd, args = calls[0]
    names = args[args.index('--names') + 1:args.index('--n-splits')]
    assert cmd == 'cross_validate' and names == NAMES  # done folds are skipped by cross_validate

    # with the new members' folds merged, the chain goes on to train only those two
    header = ','.join(['image_id', 'fold', 'label', *[f'prob_{n}' for n in NAMES]])
    (tmp_path / 'cv' / 'oof_predictions.csv').write_text(header + '\n')
    calls.clear()

    def run_ok(cmd, args, log_file=None):
        calls.append((cmd, list(args)))
        if cmd == 'train':
            work = args[args.index('--work-dir') + 1]
            (tmp_path / work).mkdir(parents=True, exist_ok=True)
            (tmp_path / work / 'last_checkpoint').write_text('x.pth')
        elif cmd == 'search_ensemble':
            assert args[args.index('--average') + 1] == 'logit'
            assert args[args.index('--members') + 1:args.index('--average')] == [
                'densenet121', 'densenet169', 'densenet201']
            _write_search(tmp_path / 'cv' / 'densenet-paper_search.json',
                          ENSEMBLES[1].members)
        elif cmd == 'test':
            _write_predictions(tmp_path / 'densenet-paper_test', ENSEMBLES[1].members)
        return 1.0

    out = run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), run_ok, n_bootstrap=0,
                               study_rule=None)
    trained = [a[a.index('--work-dir') + 1] for c, a in calls if c == 'train']
    assert [t.rsplit('/', 1)[-1] for t in trained] == ['densenet169', 'densenet201']
    assert [c for c, _ in calls] == ['train', 'train', 'search_ensemble', 'ensemble_checkpoint',
                                     'test']
    assert len(out['rows']) == 7


def test_unknown_ensemble_is_refused(tmp_path):
    with pytest.raises(ValueError, match='unknown ensembles'):
        run_classifier_chain(str(tmp_path), str(tmp_path / 'data'), _no_run,
                             ensembles=['nope'])
