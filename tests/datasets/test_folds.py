"""Study-grouped stratified folds, the OOF table and the per-fold config."""
import csv
from collections import defaultdict

import numpy as np
import pytest
from mmengine.config import Config

from spinexr.datasets.folds import (make_folds, merge_oof_predictions, read_folds, set_fold,
                                    write_folds)
from _tools import REPO


def _toy(n_studies=60, seed=0):
    rng = np.random.default_rng(seed)
    labels, studies = [], []
    for s in range(n_studies):
        for _ in range(int(rng.integers(1, 4))):
            labels.append(int(rng.random() < 0.45))
            studies.append(f'study{s:03d}')
    return np.array(labels), studies


def test_no_study_in_two_folds_and_stratified():
    labels, studies = _toy()
    folds = make_folds(labels, studies, n_splits=5, seed=0)
    assert set(folds) == set(studies)
    assert sorted(set(folds.values())) == [0, 1, 2, 3, 4]
    image_folds = np.array([folds[s] for s in studies])
    per_study = defaultdict(set)
    for s, f in zip(studies, image_folds):
        per_study[s].add(f)
    assert all(len(v) == 1 for v in per_study.values())
    rate = labels.mean()
    for k in range(5):
        assert abs(labels[image_folds == k].mean() - rate) < 0.15


def test_deterministic_for_seed_and_order():
    labels, studies = _toy()
    a = make_folds(labels, studies, seed=1)
    assert a == make_folds(labels, studies, seed=1)
    perm = np.random.default_rng(0).permutation(len(studies))
    assert a == make_folds(labels[perm], [studies[i] for i in perm], seed=1)
    assert a != make_folds(labels, studies, seed=2)


def test_errors_and_roundtrip(tmp_path):
    with pytest.raises(ValueError, match='cannot fill'):
        make_folds([0, 1, 0], ['a', 'a', 'b'], n_splits=5)
    with pytest.raises(ValueError, match='labels but'):
        make_folds([0, 1], ['a'], n_splits=1)
    labels, studies = _toy(20)
    folds = make_folds(labels, studies, n_splits=4)
    path = write_folds(str(tmp_path / 'f.json'), folds, seed=0)
    assert read_folds(path) == folds
    with pytest.raises(FileNotFoundError):
        read_folds(str(tmp_path / 'none.json'))


def _write_pred(path, rows):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'label', 'prob', 'pred'])
        w.writerows(rows)
    return str(path)


def test_merge_oof(tmp_path):
    a0 = _write_pred(tmp_path / 'a0.csv', [['i1', 's1', 'train', 1, 0.9, 1]])
    a1 = _write_pred(tmp_path / 'a1.csv', [['i2', 's2', 'train', 0, 0.2, 0]])
    b0 = _write_pred(tmp_path / 'b0.csv', [['i1', 's1', 'train', 1, 0.6, 1]])
    b1 = _write_pred(tmp_path / 'b1.csv', [['i2', 's2', 'train', 0, 0.4, 0]])
    out = merge_oof_predictions({'a': {0: a0, 1: a1}, 'b': {0: b0, 1: b1}},
                                str(tmp_path / 'oof.csv'))
    rows = list(csv.DictReader(open(out)))
    assert [r['image_id'] for r in rows] == ['i1', 'i2']
    assert rows[1] == dict(image_id='i2', study_id='s2', split='train', fold='1', label='0',
                           prob_a='0.2', prob_b='0.4')
    with pytest.raises(ValueError, match='twice'):
        merge_oof_predictions({'a': {0: a0, 1: a0}}, str(tmp_path / 'x.csv'))
    with pytest.raises(ValueError, match='same images'):
        merge_oof_predictions({'a': {0: a0, 1: a1}, 'b': {0: b0}}, str(tmp_path / 'x.csv'))


def test_set_fold_rewrites_config(tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs/classifiers/resnet50_60e_vindr-384.py'))
    set_fold(cfg, 'F.json', 2, 5, str(tmp_path / 'p.csv'))
    train = cfg.train_dataloader.dataset
    assert train.folds == [0, 1, 3, 4] and train.fold_file == 'F.json'
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.folds == [2] and loader.dataset.fold_file == 'F.json'
        assert loader.dataset.ann_file == 'annotations/train.json'
    assert cfg.test_evaluator.prediction_file == str(tmp_path / 'p.csv')
