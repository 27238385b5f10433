"""Weight/threshold search on out-of-fold predictions, and its leakage guards."""
import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from spinexr.models.classifiers.ensemble import read_weights_file
from spinexr.models.classifiers.ensemble_search import (load_oof_predictions, run_search,
                                                        search_weights, weight_grid)


def test_grid():
    g = weight_grid(3, 0.05)
    assert g.shape == (231, 3)
    np.testing.assert_allclose(g.sum(1), 1.0)
    assert (g >= 0).all()
    np.testing.assert_allclose(np.round(g / 0.05), g / 0.05, atol=1e-9)
    assert len({tuple(r) for r in g}) == 231
    assert weight_grid(2, 0.5).tolist() == [[0, 1], [0.5, 0.5], [1, 0]]
    with pytest.raises(ValueError):
        weight_grid(3, 0.3)


def _oof(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = 1 / (1 + np.exp(-(2.5 * y - 1.25 + rng.normal(0, 1, n))))
    weak = 1 / (1 + np.exp(-(0.8 * y - 0.4 + rng.normal(0, 1, n))))
    noise = rng.random(n)
    return y, np.stack([good, weak, noise], 1)


def test_search_prefers_informative_member_and_beats_members():
    y, p = _oof()
    w, best = search_weights(y, p)
    assert w[0] >= 0.5 and w[2] <= 0.15
    assert best == pytest.approx(roc_auc_score(y, p @ w))
    for k in range(3):
        assert best >= roc_auc_score(y, p[:, k]) - 1e-12
    grid_best = max(roc_auc_score(y, p @ g) for g in weight_grid(3))
    assert best == pytest.approx(grid_best)


def _write(path, y, p, split='train', fold=True, ids=None):
    names = ['densenet121', 'efficientnetv2-s', 'resnet50']
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', *(['fold'] if fold else []), 'label',
                    *[f'prob_{n}' for n in names]])
        for i in range(len(y)):
            iid = ids[i] if ids else f'img{i}'
            w.writerow([iid, f's{i}', split, *([i % 5] if fold else []), y[i], *p[i]])
    return str(path)


def test_run_search_writes_json_the_ensemble_reads(tmp_path):
    y, p = _oof()
    pred = _write(tmp_path / 'oof.csv', y, p)
    out = tmp_path / 'search.json'
    payload = run_search(pred, str(out))
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(payload))
    assert sum(saved['weights'].values()) == pytest.approx(1.0)
    assert saved['source']['split'] == 'train' and saved['source']['kind'] == 'out-of-fold'
    assert set(saved['member_thresholds']) == {'densenet121', 'efficientnetv2-s', 'resnet50'}
    w = np.array([saved['weights'][n] for n in saved['members']])
    ens = p @ w
    st = saved['oof']
    # the threshold maximises sens + spec on the OOF data
    thr = saved['threshold']
    j = np.mean(ens[y == 1] >= thr) + np.mean(ens[y == 0] < thr)
    assert st['sensitivity'] + st['specificity'] == pytest.approx(j)
    for t in np.linspace(0.05, 0.95, 19):
        assert j >= np.mean(ens[y == 1] >= t) + np.mean(ens[y == 0] < t) - 1e-12
    loaded = read_weights_file(str(out), ['densenet121', 'efficientnetv2-s', 'resnet50'])
    np.testing.assert_allclose(loaded['weights'], w)
    assert loaded['threshold'] == thr


def test_refuses_test_data(tmp_path):
    y, p = _oof(50)
    with pytest.raises(ValueError, match='test split'):
        load_oof_predictions(_write(tmp_path / 't.csv', y, p, split='test'))
    with pytest.raises(ValueError, match='not an out-of-fold'):
        load_oof_predictions(_write(tmp_path / 'nf.csv', y, p, fold=False))
    ann = tmp_path / 'test.json'
    ann.write_text(json.dumps(dict(images=[dict(id=1, image_id='img7')])))
    with pytest.raises(ValueError, match='belong to'):
        load_oof_predictions(_write(tmp_path / 'ok.csv', y, p), test_ann_file=str(ann))
    dup = _write(tmp_path / 'dup.csv', y, p, ids=['same'] * 50)
    with pytest.raises(ValueError, match='more than once'):
        load_oof_predictions(dup)


def test_tool_main(tmp_path):
    import importlib.util

    from _tools import REPO
    spec = importlib.util.spec_from_file_location('search_ensemble',
                                                  REPO / 'tools/search_ensemble.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    y, p = _oof(100)
    pred = _write(tmp_path / 'oof.csv', y, p)
    payload = tool.main([pred, '--out', str(tmp_path / 's.json'), '--members', 'resnet50',
                         'densenet121'])
    assert list(payload['weights']) == ['resnet50', 'densenet121']
    with pytest.raises(ValueError, match='no prob_'):
        tool.main([pred, '--out', str(tmp_path / 's2.json'), '--members', 'vit'])


def _logit(p, eps=5e-7):
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def test_logit_search_maximises_auroc_of_the_logit_average():
    y, p = _oof()
    p = np.round(p, 6)  # the OOF table's 6 decimals: 0 and 1 occur
    p[0, 0], p[1, 1] = 1.0, 0.0
    w, best = search_weights(y, p, average='logit')
    z = _logit(p)
    assert np.isfinite(best)
    assert best == pytest.approx(roc_auc_score(y, z @ w))
    assert best == pytest.approx(max(roc_auc_score(y, z @ g) for g in weight_grid(3)))
    with pytest.raises(ValueError, match='average'):
        search_weights(y, p, average='mean')


def test_run_search_logit_threshold_is_on_the_logit_ensemble(tmp_path):
    y, p = _oof(seed=3)
    pred = _write(tmp_path / 'oof.csv', y, p)
    saved = run_search(pred, str(tmp_path / 's.json'), average='logit')
    assert saved['average'] == 'logit'
    names = saved['members']
    w = np.array([saved['weights'][n] for n in names])
    ens = 1 / (1 + np.exp(-(_logit(p) @ w)))
    thr = saved['threshold']
    j = np.mean(ens[y == 1] >= thr) + np.mean(ens[y == 0] < thr)
    st = saved['oof']
    assert st['sensitivity'] + st['specificity'] == pytest.approx(j)
    assert st['auroc'] == pytest.approx(roc_auc_score(y, ens))
    assert read_weights_file(str(tmp_path / 's.json'), names)['average'] == 'logit'
    assert run_search(pred, str(tmp_path / 'p.json'))['average'] == 'prob'


def test_tool_average_option(tmp_path):
    import importlib.util

    from _tools import REPO
    spec = importlib.util.spec_from_file_location('search_ensemble',
                                                  REPO / 'tools/search_ensemble.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    y, p = _oof(100)
    pred = _write(tmp_path / 'oof.csv', y, p)
    out = tmp_path / 'logit.json'
    assert tool.main([pred, '--out', str(out), '--average', 'logit'])['average'] == 'logit'
    assert json.loads(out.read_text())['average'] == 'logit'
