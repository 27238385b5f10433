"""Stratified K-fold splits grouped by study, and the out-of-fold prediction table.

All images of a study land in the same fold (a patient's views never sit on both sides of a
split), and folds are stratified by the image-level abnormal label. The assignment is a json
file that the classification dataset reads (``fold_file`` + ``folds``)::

    {"n_splits": 5, "seed": 0, "ann_file": "...", "folds": {"<study_id>": 0, ...}}

This module knows nothing of the dataset: :mod:`spinexr.datasets.vindr_cls` imports it (to select
folds), and :func:`spinexr.datasets.vindr_cls.make_folds_for_dataset` writes the folds of an
annotation file with the dataset's labels.
"""
import copy
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from spinexr.utils.data_root import resolve_data_root


def make_folds(labels: Sequence[int],
               study_ids: Sequence[str],
               n_splits: int = 5,
               seed: int = 0) -> Dict[str, int]:
    """Assign every study to one of ``n_splits`` folds, stratified by image label.

    Uses :class:`sklearn.model_selection.StratifiedGroupKFold` with ``shuffle=True`` and
    ``random_state=seed``: the same inputs and seed give the same folds.

    Args:
        labels (Sequence[int]): Image-level label (0/1) per image.
        study_ids (Sequence[str]): Study id per image (the group).
        n_splits (int): Number of folds.
        seed (int): Random seed of the shuffle.

    Returns:
        dict[str, int]: ``study_id -> fold`` (0-based).

    Raises:
        ValueError: Lengths differ, or there are fewer studies than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray([str(s) for s in study_ids])
    if len(labels) != len(groups):
        raise ValueError(f'make_folds: {len(labels)} labels but {len(groups)} study ids')
    n_studies = len(set(groups.tolist()))
    if n_studies < n_splits:
        raise ValueError(f'make_folds: {n_studies} studies cannot fill {n_splits} folds')
    # Sort by study so the result does not depend on the order of the annotation file.
    order = np.lexsort((labels, groups))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    study_fold: Dict[str, int] = {}
    for fold, (_, val_idx) in enumerate(
            splitter.split(np.zeros(len(order)), labels[order], groups[order])):
        for study in groups[order][val_idx]:
            study_fold[str(study)] = fold
    return dict(sorted(study_fold.items()))


def write_folds(out_file: str, study_fold: Dict[str, int], **meta) -> str:
    """Write a fold assignment json (``meta`` such as ``seed``/``n_splits`` is stored too)."""
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    payload = dict(meta, n_splits=int(max(study_fold.values()) + 1) if study_fold else 0,
                   folds=study_fold)
    with open(out_file, 'w', encoding='utf-8') as f:
        json.dump(payload, f, indent=1)
    return out_file


def read_folds(fold_file: str) -> Dict[str, int]:
    """Read ``study_id -> fold`` from a json written by :func:`write_folds`."""
    if not osp.isfile(fold_file):
        raise FileNotFoundError(f'fold file not found: {fold_file}')
    with open(fold_file, encoding='utf-8') as f:
        payload = json.load(f)
    if not isinstance(payload, dict) or not isinstance(payload.get('folds'), dict):
        raise ValueError(f'{fold_file}: expected {{"folds": {{study_id: fold}}}}')
    return {str(k): int(v) for k, v in payload['folds'].items()}


#: Leading columns of an out-of-fold prediction table; ``prob_<model>`` columns follow.
OOF_COLUMNS = ('image_id', 'study_id', 'split', 'fold', 'label')


def read_prediction_csv(path: str) -> List[dict]:
    """Read a prediction CSV (as written by ``BinaryClsMetric(prediction_file=...)``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'prediction file not found: {path}')
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def merge_oof_predictions(per_model: Dict[str, Dict[int, str]], out_file: str) -> str:
    """Merge per-fold prediction CSVs of several models into one out-of-fold table.

    Args:
        per_model (dict[str, dict[int, str]]): ``model name -> {fold: CSV}``; each CSV holds the
            predictions of the model trained without that fold on that fold's images
            (``image_id, study_id, split, label, prob`` columns).
        out_file (str): Output CSV with :data:`OOF_COLUMNS` + ``prob_<model>`` per model.

    Returns:
        str: ``out_file``.

    Raises:
        ValueError: An image appears twice for a model, labels disagree between models, or the
            models do not cover the same images.
    """
    rows: Dict[str, dict] = {}
    names = list(per_model)
    for name, files in per_model.items():
        seen = set()
        for fold, path in sorted(files.items()):
            for r in read_prediction_csv(path):
                r['fold'] = str(int(fold))
                image_id = r['image_id']
                if image_id in seen:
                    raise ValueError(f'{path}: image {image_id} predicted twice for {name}; '
                                     'folds overlap')
                seen.add(image_id)
                row = rows.setdefault(image_id, {k: r.get(k, '') for k in OOF_COLUMNS})
                if str(row['label']) != str(r['label']):
                    raise ValueError(f'{path}: label of {image_id} disagrees between models')
                if str(row['fold']) != str(r.get('fold', '')):
                    raise ValueError(f'{path}: fold of {image_id} disagrees between models')
                row[f'prob_{name}'] = r['prob']
    missing = [(i, n) for i, r in rows.items() for n in names if f'prob_{n}' not in r]
    if missing:
        raise ValueError(f'models do not cover the same images, e.g. {missing[0][0]} has no '
                         f'prediction of {missing[0][1]}')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with open(out_file, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=[*OOF_COLUMNS, *[f'prob_{n}' for n in names]])
        writer.writeheader()
        for image_id in sorted(rows):
            writer.writerow(rows[image_id])
    return out_file


CLS_DATASET_TYPE = 'VinDrSpineXRClsDataset'


def _innermost_dataset(dataset_cfg: dict) -> dict:
    """The ``VinDrSpineXRClsDataset`` dict inside dataset wrappers (``dataset=...`` chains)."""
    node = dataset_cfg
    while node.get('type') != CLS_DATASET_TYPE and isinstance(node.get('dataset'), dict):
        node = node['dataset']
    if node.get('type') != CLS_DATASET_TYPE:
        raise ValueError(f'cross-validation needs a {CLS_DATASET_TYPE} in train_dataloader, '
                         f'found {dataset_cfg.get("type")}')
    return node


def fold_dataset_args(cfg) -> dict:
    """``ann_file`` and ``data_root`` of the training dataset of a config.

    The config's ``{data_root}`` paths are resolved on a copy first
    (:func:`spinexr.utils.data_root.resolve_data_root`), so ``data_root`` is a real folder.
    """
    cfg = resolve_data_root(copy.deepcopy(cfg))
    train = _innermost_dataset(cfg.train_dataloader.dataset)
    return dict(ann_file=train['ann_file'], data_root=train.get('data_root', ''))


def set_fold(cfg, fold_file: str, fold: int, n_splits: int, prediction_file: str) -> None:
    """Point a classification config at one cross-validation fold, in place.

    Training uses the studies of every other fold, validation (early stopping, best
    checkpoint) and the test loop use the held-out fold of the *train* split; the test loop writes
    the out-of-fold predictions to ``prediction_file``. The official test split is not used.

    Args:
        cfg (mmengine.Config): A config built on ``vindr_spinexr_classification.py``.
        fold_file (str): Fold json of :func:`write_folds`.
        fold (int): The held-out fold.
        n_splits (int): Number of folds.
        prediction_file (str): CSV for the held-out predictions.
    """
    train = _innermost_dataset(cfg.train_dataloader.dataset)
    train.pop('n_splits', None)
    train.pop('fold_seed', None)
    train.update(fold_file=fold_file, folds=[f for f in range(n_splits) if f != fold])
    val_loader = copy.deepcopy(cfg.val_dataloader)
    val = _innermost_dataset(val_loader.dataset)
    val.pop('n_splits', None)
    val.pop('fold_seed', None)
    val.update(ann_file=train['ann_file'], data_root=train.get('data_root', ''),
               fold_file=fold_file, folds=[fold], test_mode=True)
    cfg.val_dataloader = val_loader
    cfg.test_dataloader = copy.deepcopy(val_loader)
    cfg.test_evaluator = dict(type='BinaryClsMetric', threshold=0.5, n_bootstrap=0,
                              prediction_file=prediction_file)
