"""ROC analysis of a binary classifier: AUROC, Youden's J, operating-point stats, bootstrap CIs.

The bootstrap resamples studies (all views of a drawn study together), not images; see
:mod:`spinexr.evaluation.bootstrap`.

Conventions: ``labels`` are 0/1 (1 = abnormal = positive), ``scores`` are probabilities of the
positive class, and an image is called positive when ``score >= threshold``. Results here are
fractions in [0, 1]; :class:`~spinexr.evaluation.metrics.BinaryClsMetric` reports percentages.

Leakage rule: a threshold chosen with :func:`youden_threshold` on some data is an honest
operating point only for *other* data. Choose it on validation / out-of-fold predictions and
apply it to the test split; never choose it on the test split.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from scipy.stats import rankdata

from .bootstrap import resample_weights, study_groups

ArrayLike = Union[Sequence[float], np.ndarray]

#: Statistics computed at an operating point.
POINT_STATS = ('sensitivity', 'specificity', 'f1', 'precision', 'accuracy')


def check_binary_inputs(labels: ArrayLike, scores: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``labels`` (0/1) and ``scores`` (finite) to 1-D arrays."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f'{y.size} labels but {s.size} scores')
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f'labels must be 0/1, got values {np.unique(y)[:10].tolist()}')
    if not np.isfinite(s).all():
        raise ValueError('scores contain NaN or infinite values')
    return y.astype(np.int64), s


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties; equals scikit-learn).

    Returns:
        float: AUROC in [0, 1], or ``nan`` when only one class is present.
    """
    y, s = check_binary_inputs(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve at every distinct score.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``fpr``, ``tpr`` and ``thresholds``
        (decreasing; the first is ``inf`` so the curve starts at (0, 0)), like
        ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
    """
    y, s = check_binary_inputs(labels, scores)
    order = np.argsort(-s, kind='mergesort')
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.nonzero(np.diff(s_sorted))[0], y.size - 1] if y.size else np.array(
        [], dtype=np.int64)
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = (last_of_run + 1) - tps
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.full(tps.size + 1, np.nan)
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.full(fps.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, s_sorted[last_of_run]]


def youden_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 on these data.

    Ties go to the highest threshold. Use it on validation data only (see the module note).

    Raises:
        ValueError: Only one class is present.
    """
    fpr, tpr, thr = roc_curve(labels, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        raise ValueError("Youden's J needs both classes in the data")
    j = tpr[1:] - fpr[1:]
    return float(thr[1:][int(np.argmax(j))])


def binary_stats(labels: ArrayLike, scores: ArrayLike, threshold: float) -> Dict[str, float]:
    """Confusion counts and sensitivity, specificity, F1, precision, accuracy at ``threshold``.

    Undefined ratios (e.g. sensitivity without positives) are ``nan``; F1 is 0 when there are no
    true positives, as in scikit-learn.
    """
    y, s = check_binary_inputs(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float('nan')

    return dict(tp=tp, fp=fp, tn=tn, fn=fn,
                sensitivity=ratio(tp, tp + fn),
                specificity=ratio(tn, tn + fp),
                precision=ratio(tp, tp + fp),
                f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
                accuracy=ratio(tp + tn, y.size))


def bootstrap_replicates(labels: ArrayLike,
                         scores: ArrayLike,
                         threshold: float,
                         n_bootstrap: int = 1000,
                         seed: int = 0,
                         study_ids: Optional[Sequence[object]] = None
                         ) -> Tuple[Dict[str, np.ndarray], int]:
    """Replicates of AUROC and the operating-point statistics under a study (cluster) bootstrap.

    Each replicate draws ``K`` of the ``K`` studies with replacement and keeps all images of a
    drawn study (:func:`spinexr.evaluation.bootstrap.resample_weights`); the threshold stays
    fixed. A statistic undefined in a replicate (AUROC or sensitivity without positives, e.g.)
    is ``nan`` there.

    Args:
        labels (ArrayLike): 0/1 labels.
        scores (ArrayLike): Positive-class probabilities.
        threshold (float): Operating threshold.
        n_bootstrap (int): Number of replicates.
        seed (int): Seed of the resampling.
        study_ids (Sequence, optional): Study id per image; ``None`` or missing entries: those
            images are resampled on their own (a warning is logged).

    Returns:
        tuple[dict[str, np.ndarray], int]: ``name -> (n_bootstrap,)`` replicate values for
        ``auroc`` and :data:`POINT_STATS`, and the number of resampled units ``K``.
    """
    y, s = check_binary_inputs(labels, scores)
    groups = study_groups(study_ids, y.size, what='bootstrap_ci')
    weights = resample_weights(y.size, n_bootstrap, seed, groups)
    names = ('auroc', *POINT_STATS)
    values = {k: np.full(n_bootstrap, np.nan) for k in names}
    image_index = np.arange(y.size)
    for b in range(n_bootstrap):
        idx = np.repeat(image_index, weights[b])
        yb, sb = y[idx], s[idx]
        values['auroc'][b] = auroc(yb, sb)
        stats = binary_stats(yb, sb, threshold)
        for k in POINT_STATS:
            values[k][b] = stats[k]
    return values, int(groups.max()) + 1 if groups.size else 0


def bootstrap_ci(labels: ArrayLike,
                 scores: ArrayLike,
                 threshold: float,
                 n_bootstrap: int = 1000,
                 ci_level: float = 0.95,
                 seed: int = 0,
                 study_ids: Optional[Sequence[object]] = None) -> Dict[str, Tuple[float, float]]:
    """Percentile bootstrap CIs over studies for AUROC and the operating-point statistics.

    Replicates in which a statistic is undefined (e.g. no positives) are left out for that
    statistic (see :func:`bootstrap_replicates`; :func:`summarize` reports how many).

    Args:
        labels (ArrayLike): 0/1 labels.
        scores (ArrayLike): Positive-class probabilities.
        threshold (float): Operating threshold.
        n_bootstrap (int): Number of replicates.
        ci_level (float): Coverage, e.g. 0.95.
        seed (int): Seed of the resampling; results are deterministic for a seed.
        study_ids (Sequence, optional): Study id per image (the resampled unit); without them
            images are resampled, with a logged warning.

    Returns:
        dict[str, tuple[float, float]]: ``name -> (lower, upper)`` for ``auroc`` and
        :data:`POINT_STATS`; ``(nan, nan)`` when no replicate defines the statistic.
    """
    values, _ = bootstrap_replicates(labels, scores, threshold, n_bootstrap, seed, study_ids)
    return _percentiles(values, ci_level)


def _percentiles(values: Dict[str, np.ndarray], ci_level: float) -> Dict[str, Tuple[float, float]]:
    lo_q, hi_q = 50 * (1 - ci_level), 50 * (1 + ci_level)
    out = {}
    for k, v in values.items():
        v = v[np.isfinite(v)]
        out[k] = (float(np.percentile(v, lo_q)), float(np.percentile(v, hi_q))) if v.size else (
            float('nan'), float('nan'))
    return out


def summarize(labels: ArrayLike,
              scores: ArrayLike,
              threshold: float,
              n_bootstrap: int = 1000,
              ci_level: float = 0.95,
              seed: int = 0,
              study_ids: Optional[Sequence[object]] = None) -> Dict[str, float]:
    """Point estimates and (optionally) study-bootstrap CIs in one flat dict of fractions.

    Keys: ``auroc``, ``sensitivity``, ``specificity``, ``f1``, ``precision``, ``accuracy``,
    ``threshold``, ``n_images``, ``n_positive``, ``tp``, ``fp``, ``tn``, ``fn``, and with
    ``n_bootstrap > 0`` also ``<stat>_ci_lower`` / ``<stat>_ci_upper``, ``bootstrap_units``
    (number of resampled studies) and ``auroc_ci_n_undefined`` (replicates with one label class
    only, left out of the AUROC interval).

    Args:
        labels (ArrayLike): 0/1 labels.
        scores (ArrayLike): Positive-class probabilities.
        threshold (float): Operating threshold.
        n_bootstrap (int): Number of replicates (0: no CIs).
        ci_level (float): Coverage.
        seed (int): Seed of the resampling.
        study_ids (Sequence, optional): Study id per image, the bootstrap's resampled unit.
    """
    y, s = check_binary_inputs(labels, scores)
    out: Dict[str, float] = dict(auroc=auroc(y, s))
    out.update(binary_stats(y, s, threshold))
    out.update(threshold=float(threshold), n_images=int(y.size), n_positive=int(y.sum()))
    if n_bootstrap > 0:
        values, units = bootstrap_replicates(y, s, threshold, n_bootstrap, seed, study_ids)
        for k, (lo, hi) in _percentiles(values, ci_level).items():
            out[f'{k}_ci_lower'], out[f'{k}_ci_upper'] = lo, hi
        out['bootstrap_units'] = units
        out['auroc_ci_n_undefined'] = int(np.sum(~np.isfinite(values['auroc'])))
    return out


def positive_probability(pred_score) -> np.ndarray:
    """Abnormal probability from ``pred_score`` rows of mmpretrain data samples.

    Accepts a score vector ``(C,)`` or a batch ``(N, C)`` (tensor or array): ``C == 2`` ->
    column 1 (softmax or :class:`BinaryClsHead` output), ``C == 1`` -> column 0 (sigmoid head).

    Returns:
        np.ndarray: ``(N,)`` probabilities (``(1,)`` for a single vector).
    """
    if hasattr(pred_score, 'detach'):
        pred_score = pred_score.detach().cpu().float().numpy()
    arr = np.asarray(pred_score, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        raise ValueError('pred_score must hold 1 (sigmoid) or 2 (normal, abnormal) scores per '
                         f'image, got shape {tuple(arr.shape)}')
    return arr[:, -1]


def resolve_threshold(threshold: Union[float, str, None], key: str = 'threshold',
                      default: float = 0.5) -> Optional[float]:
    """Turn a threshold setting into a number.

    Args:
        threshold (float | str | None): A number, a json file (written by
            ``tools/search_ensemble.py``) holding ``key``, or ``'youden'`` / ``None`` (returned
            as ``None``: the caller chooses on its own data, or uses ``default`` for ``None``).
        key (str): Key inside the json file.
        default (float): Value for ``None``.

    Returns:
        float | None: The threshold, or ``None`` for ``'youden'``.
    """
    if threshold is None:
        return default
    if isinstance(threshold, (int, float)):
        return float(threshold)
    if threshold == 'youden':
        return None
    import json
    import os.path as osp
    if not osp.isfile(str(threshold)):
        raise FileNotFoundError(f'threshold must be a number, "youden" or a json file; '
                                f'{threshold!r} is none of these')
    with open(threshold, encoding='utf-8') as f:
        payload = json.load(f)
    if key not in payload:
        raise KeyError(f'{threshold}: no "{key}" entry')
    return float(payload[key])
