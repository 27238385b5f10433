"""Choose ensemble weights and the operating threshold on out-of-fold validation predictions.

The paper draft this project started from picked its weights (0.42 / 0.32 / 0.26) and threshold
(0.478) on the test labels. Here the search runs on the out-of-fold (OOF) table written by
:func:`spinexr.experiments.cross_validation.cross_validate` (``tools/cross_validate.py``): every
image of the *training* split is predicted by the member trained without its fold. The loader
refuses anything that is not such a table:

* a ``split`` column with any value ``test`` (or a file whose images appear in a test annotation
  file given with ``test_ann_file``);
* a table without a ``fold`` column (not out-of-fold), or with an image twice.

The search combines the members the way the ensemble will (``average``): a probability average,
or a logit average (the VinDr-SpineXR paper's). The OOF table holds probabilities with six
decimals, so for ``'logit'`` each is clipped to ``[5e-7, 1 - 5e-7]`` (half the last digit; 0 and
1 occur) before ``log(p / (1 - p))``: member logits beyond about +-14.5 are cut there in the
search, while the ensemble itself uses the members' exact logits.
"""
import csv
import itertools
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from spinexr.evaluation.roc import auroc, binary_stats, youden_threshold

#: Averaging modes, as ``WeightedEnsembleClassifier(average=...)``.
AVERAGES = ('prob', 'logit')

#: Clip of the OOF table's 6-decimal probabilities before the logit (half the last digit).
PROB_EPS = 5e-7


def member_scores(member_probs: np.ndarray, average: str = 'prob') -> np.ndarray:
    """The per-member values the ensemble averages: probabilities, or their clipped logits."""
    if average not in AVERAGES:
        raise ValueError(f'average={average!r}: choose from {AVERAGES}')
    member_probs = np.asarray(member_probs, dtype=np.float64)
    if average == 'prob':
        return member_probs
    p = np.clip(member_probs, PROB_EPS, 1.0 - PROB_EPS)
    return np.log(p) - np.log1p(-p)


def ensemble_probability(member_probs: np.ndarray, weights: np.ndarray,
                         average: str = 'prob') -> np.ndarray:
    """Ensemble abnormal probability ``(N,)``: weighted mean of probabilities, or sigmoid of the
    weighted mean of logits (``weights`` sum to 1)."""
    mean = member_scores(member_probs, average) @ np.asarray(weights, dtype=np.float64)
    return mean if average == 'prob' else 1.0 / (1.0 + np.exp(-mean))


def weight_grid(n_members: int, step: float = 0.05) -> np.ndarray:
    """All weight vectors of non-negative multiples of ``step`` that sum to 1.

    Returns:
        np.ndarray: ``(K, n_members)``; ``K = C(1/step + n - 1, n - 1)`` (231 for 3 members).
    """
    units = int(round(1.0 / step))
    if not np.isclose(units * step, 1.0):
        raise ValueError(f'step must divide 1, got {step}')
    rows = [c for c in itertools.product(range(units + 1), repeat=n_members - 1)
            if sum(c) <= units]
    grid = np.array([[*c, units - sum(c)] for c in rows], dtype=np.float64) / units
    return grid


def search_weights(labels: Sequence[int], member_probs: np.ndarray,
                   step: float = 0.05, average: str = 'prob') -> Tuple[np.ndarray, float]:
    """Grid-search the weights that maximise AUROC of the weighted probability (or logit) average.

    Ties (within 1e-12) go to the weights closest to uniform, then to the first in grid order.

    Args:
        labels (Sequence[int]): 0/1 labels ``(N,)``.
        member_probs (np.ndarray): ``(N, M)`` member probabilities.
        step (float): Grid step.
        average (str): ``'prob'`` or ``'logit'`` (AUROC of the logit average; the sigmoid
            does not change it).

    Returns:
        tuple[np.ndarray, float]: best weights ``(M,)`` and their AUROC.
    """
    values = member_scores(member_probs, average)
    grid = weight_grid(values.shape[1], step)
    scores = np.array([auroc(labels, values @ w) for w in grid])
    if np.isnan(scores).all():
        raise ValueError('AUROC is undefined: the predictions hold only one class')
    best = np.nanmax(scores)
    tied = np.flatnonzero(scores >= best - 1e-12)
    uniform = np.full(grid.shape[1], 1.0 / grid.shape[1])
    pick = tied[np.argmin(np.abs(grid[tied] - uniform).sum(1))]
    return grid[pick], float(scores[pick])


def load_oof_predictions(path: str, test_ann_file: Optional[str] = None
                         ) -> Tuple[List[dict], List[str]]:
    """Read an OOF prediction table and enforce the no-leakage rules (see module docstring).

    Returns:
        tuple[list[dict], list[str]]: rows and the member names (``prob_<name>`` columns).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'prediction file not found: {path}')
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    if 'fold' not in columns:
        raise ValueError(f'{path} has no "fold" column: it is not an out-of-fold table. Make one '
                         'with tools/cross_validate.py; weights are never chosen on test data.')
    test_rows = [r['image_id'] for r in rows if r.get('split', '').strip().lower() == 'test']
    if test_rows:
        raise ValueError(f'{path}: {len(test_rows)} rows come from the test split (e.g. '
                         f'{test_rows[0]}); refusing to choose weights on test data')
    names = [c[len('prob_'):] for c in columns if c.startswith('prob_')]
    if not names:
        raise ValueError(f'{path}: no prob_<model> columns')
    ids = [r['image_id'] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f'{path}: an image appears more than once; not an out-of-fold table')
    if test_ann_file is not None:
        with open(test_ann_file, encoding='utf-8') as f:
            test_ids = {str(im.get('image_id', im.get('id'))) for im in json.load(f)['images']}
        overlap = test_ids.intersection(ids)
        if overlap:
            raise ValueError(f'{path}: {len(overlap)} images belong to {test_ann_file} (e.g. '
                             f'{sorted(overlap)[0]}); refusing to choose weights on test data')
    for i, r in enumerate(rows):
        for n in names:
            if r[f'prob_{n}'] in ('', None):
                raise ValueError(f'{path}: row {i + 2} ({r["image_id"]}) has no prob_{n}')
    return rows, names


def run_search(predictions: str,
               out_file: str,
               members: Optional[Sequence[str]] = None,
               step: float = 0.05,
               test_ann_file: Optional[str] = None,
               average: str = 'prob') -> Dict[str, object]:
    """Search weights (grid) and threshold (Youden's J) on OOF predictions; write the json.

    The json holds ``weights`` (name -> weight), ``threshold`` (of the ensemble probability),
    ``average`` (the combination both were chosen for),
    ``member_thresholds`` (each member's own Youden threshold), ``oof`` statistics,
    ``source`` (file, ``split: 'train'``, ``kind: 'out-of-fold'``) and, when the table has study
    ids, ``study_thresholds`` (per study rule: ``threshold``, ``member_thresholds``,
    ``n_studies``, ``auroc``, the same Youden rule on the OOF study probabilities, read by
    :func:`spinexr.analysis.classifier_report.study_rows`). It is read by
    ``WeightedEnsembleClassifier(weights_file=...)`` and ``BinaryClsMetric(threshold=...)``.

    Args:
        predictions (str): OOF CSV from ``tools/cross_validate.py``.
        out_file (str): Output json.
        members (Sequence[str], optional): Member names (``prob_<name>`` columns) in the order
            of the ensemble config; default all.
        step (float): Grid step. Defaults to 0.05.
        test_ann_file (str, optional): Test COCO json whose images must not appear.
        average (str): ``'prob'`` (default) or ``'logit'``: how the ensemble that reads the json
            combines its members; it refuses a json searched for the other mode.

    Returns:
        dict: The written payload.
    """
    rows, names = load_oof_predictions(predictions, test_ann_file=test_ann_file)
    if members:
        unknown = [m for m in members if m not in names]
        if unknown:
            raise ValueError(f'{predictions}: no prob_ column for {unknown}; has {names}')
        names = list(members)
    labels = np.array([int(r['label']) for r in rows], dtype=np.int64)
    probs = np.array([[float(r[f'prob_{n}']) for n in names] for r in rows], dtype=np.float64)
    weights, best_auroc = search_weights(labels, probs, step=step, average=average)
    ensemble = ensemble_probability(probs, weights, average)
    threshold = youden_threshold(labels, ensemble)
    stats = binary_stats(labels, ensemble, threshold)
    payload = dict(
        members=names,
        weights={n: round(float(w), 6) for n, w in zip(names, weights)},
        threshold=threshold,
        average=average,
        member_thresholds={n: youden_threshold(labels, probs[:, i]) for i, n in enumerate(names)},
        oof=dict(auroc=best_auroc, n_images=int(labels.size), n_abnormal=int(labels.sum()),
                 member_auroc={n: auroc(labels, probs[:, i]) for i, n in enumerate(names)},
                 **{k: stats[k] for k in ('sensitivity', 'specificity', 'f1')}),
        search=dict(step=step, objective='auroc', threshold_rule="youden's J"),
        source=dict(file=osp.abspath(predictions), split='train', kind='out-of-fold',
                    folds=sorted({int(r['fold']) for r in rows})))
    study_thr = _study_thresholds(rows, labels, ensemble, probs, names)
    if study_thr:
        payload['study_thresholds'] = study_thr
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with open(out_file, 'w', encoding='utf-8') as f:
        json.dump(payload, f, indent=1)
    return payload



#: The experiment step's name (``python -m spinexr.cli.search_ensemble``, the classifier chain):
#: the same function as :func:`run_search`.
search_ensemble = run_search

def _study_thresholds(rows: List[dict], labels: np.ndarray, ensemble: np.ndarray,
                      probs: np.ndarray, names: List[str]) -> Dict[str, dict]:
    """Per study rule: Youden thresholds of the ensemble and members on OOF *study* probabilities.

    ``ensemble`` ``(N,)`` is the ensemble's image probability, ``probs`` ``(N, M)`` the members'.

    A study's probability is its views' aggregated by the rule
    (:mod:`spinexr.evaluation.study_level`); a study is abnormal when any view is. Empty when the
    table has no ``study_id`` column, an empty id, or studies of one class only.
    """
    from spinexr.evaluation.study_level import RULES, aggregate_probabilities
    study_ids = [r.get('study_id') or '' for r in rows]
    if not all(study_ids):
        return {}
    out = {}
    for rule in RULES:
        agg = [aggregate_probabilities(study_ids, p, labels, rule)
               for p in (ensemble, *probs.T)]
        if agg[0]['label'].min() == agg[0]['label'].max():
            return {}
        out[rule] = dict(
            threshold=youden_threshold(agg[0]['label'], agg[0]['prob']),
            member_thresholds={n: youden_threshold(a['label'], a['prob'])
                               for n, a in zip(names, agg[1:])},
            n_studies=len(agg[0]['study_id']),
            auroc=auroc(agg[0]['label'], agg[0]['prob']))
    return out
