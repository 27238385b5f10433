"""Free-response ROC (FROC): lesion sensitivity at a few false positives per image.

Radiology reports lesion detection as FROC rather than only mAP. The rule used here:

* detections of a class are taken in order of decreasing score; each is a **hit** when it has
  IoU >= 0.5 (the match's first IoU threshold) with a ground-truth lesion of the same class in
  the same image that no higher-scoring detection has hit yet (one hit per lesion; further
  detections of that lesion are false positives). This is COCO's greedy matching, so the
  :class:`~spinexr.evaluation.coco_ap.MatchResult` of :func:`~spinexr.evaluation.coco_ap.match_coco`
  is reused as it is (build it with a large ``max_dets`` so no detection is cut);
* detections matched to an ignored (crowd) box count neither way;
* **false positives per image** divide by ALL evaluated images, normal ones included;
* an operating point is a score threshold: all detections scoring at least that much. Tied
  scores enter together. The sensitivity at a rate ``f`` is the highest sensitivity of an
  operating point with at most ``f`` false positives per image (0 when even the highest score
  gives more);
* per class, only that class's lesions and false positives count; ``overall`` pools the
  detections of all classes (one threshold for all) over all lesions;
* the summary figure is the mean sensitivity over :data:`FROC_FP_RATES`.

Every function takes image ``weights`` (bootstrap multiplicities), so a study-level bootstrap
reuses one matching, as :mod:`spinexr.evaluation.bootstrap` does for mAP
(:func:`bootstrap_froc_ci`: studies drawn with replacement, all views of a drawn study together).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .bootstrap import (bootstrap_warning, percentile_interval, resample_weights,
                        study_groups)
from .coco_ap import MatchResult

#: False positives per image at which sensitivity is reported.
FROC_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _sorted_detections(match: MatchResult, classes: Sequence[int], iou_index: int
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores, image indices, hit flags and tie-group ends of ``classes``' detections."""
    scores, imgs, hits = [], [], []
    for c in classes:
        keep = ~match.ignore[c][iou_index]
        scores.append(match.scores[c][keep])
        imgs.append(match.img_idx[c][keep])
        hits.append(match.tp[c][iou_index][keep])
    score = np.concatenate(scores) if scores else np.zeros(0)
    img = np.concatenate(imgs).astype(np.int64) if imgs else np.zeros(0, np.int64)
    hit = np.concatenate(hits).astype(bool) if hits else np.zeros(0, bool)
    order = np.argsort(-score, kind='stable')
    score, img, hit = score[order], img[order], hit[order]
    ends = np.flatnonzero(np.r_[score[1:] != score[:-1], True]) if score.size else \
        np.zeros(0, np.int64)
    return score, img, hit, ends


def froc_curve(match: MatchResult,
               weights: Optional[np.ndarray] = None,
               class_index: Optional[int] = None,
               iou_index: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """FROC operating points of one image weighting.

    Args:
        match (MatchResult): Matched detections.
        weights (np.ndarray, optional): ``(num_images,)`` image multiplicities (default all 1).
        class_index (int, optional): One class; ``None`` pools all classes.
        iou_index (int): Index into ``match.iou_thrs`` (0 = IoU 0.5 with COCO thresholds).

    Returns:
        tuple[np.ndarray, np.ndarray]: False positives per image and sensitivity at each
        operating point, starting with ``(0, 0)`` (no detection kept); ``nan`` sensitivities when
        there is no lesion.
    """
    fps, sens = weighted_froc_points(
        match, None if weights is None else np.asarray(weights)[None], class_index, iou_index)
    return fps[0], sens[0]


def weighted_froc_points(match: MatchResult,
                         weights: Optional[np.ndarray] = None,
                         class_index: Optional[int] = None,
                         iou_index: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """FROC operating points for a batch of image weightings.

    Args:
        match (MatchResult): Matched detections.
        weights (np.ndarray, optional): ``(B, num_images)`` multiplicities; ``None``: one row of 1.
        class_index (int, optional): One class; ``None`` pools all classes.
        iou_index (int): Index into ``match.iou_thrs``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(B, K + 1)`` false positives per image and sensitivity
        at the ``K`` tie-group ends, with the point ``(0, 0)`` first.
    """
    if weights is None:
        weights = np.ones((1, match.num_images))
    weights = np.asarray(weights, dtype=np.float64)
    classes = range(match.num_classes) if class_index is None else [class_index]
    _, img, hit, ends = _sorted_detections(match, list(classes), iou_index)
    w = weights[:, img]
    tp_cum = np.cumsum(w * hit[None], axis=1)[:, ends]
    fp_cum = np.cumsum(w * (~hit)[None], axis=1)[:, ends]
    npos = weights @ match.npos[list(classes)].sum(axis=0).astype(np.float64)
    n_img = weights.sum(axis=1)
    zero = np.zeros((weights.shape[0], 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        fps = np.hstack([zero, fp_cum]) / np.maximum(n_img, 1e-12)[:, None]
        sens = np.hstack([zero, tp_cum]) / npos[:, None]
    sens[npos <= 0] = np.nan
    return fps, sens


def sensitivity_at(fps: np.ndarray, sens: np.ndarray,
                   rates: Sequence[float] = FROC_FP_RATES) -> np.ndarray:
    """Highest sensitivity with at most ``rate`` false positives per image, per row.

    Args:
        fps (np.ndarray): ``(B, K)`` false positives per image, non-decreasing along a row.
        sens (np.ndarray): ``(B, K)`` sensitivity, non-decreasing along a row.
        rates (Sequence[float]): False-positive rates.

    Returns:
        np.ndarray: ``(B, len(rates))`` sensitivities (``nan`` rows stay ``nan``).
    """
    rates = np.asarray(rates, dtype=np.float64)
    out = np.empty((fps.shape[0], rates.size))
    for b in range(fps.shape[0]):
        # index of the last operating point with fps <= rate (the first one is (0, 0))
        last = np.searchsorted(fps[b], rates + 1e-12, side='right') - 1
        out[b] = sens[b][np.maximum(last, 0)]
    return out


def froc_table(match: MatchResult,
               weights: Optional[np.ndarray] = None,
               rates: Sequence[float] = FROC_FP_RATES,
               iou_index: int = 0) -> np.ndarray:
    """Sensitivity at ``rates`` for every class and pooled, for a batch of weightings.

    Args:
        match (MatchResult): Matched detections.
        weights (np.ndarray, optional): ``(B, num_images)`` multiplicities; ``None``: one row of 1.
        rates (Sequence[float]): False-positive rates per image.
        iou_index (int): Index into ``match.iou_thrs``.

    Returns:
        np.ndarray: ``(B, num_classes + 1, len(rates))``; index ``num_classes`` is the pooled
        (``overall``) curve. Classes without lesions in a weighting are ``nan``.
    """
    rows = []
    for c in list(range(match.num_classes)) + [None]:
        fps, sens = weighted_froc_points(match, weights, c, iou_index)
        rows.append(sensitivity_at(fps, sens, rates))
    return np.stack(rows, axis=1)


def froc_summary(match: MatchResult,
                 class_names: Sequence[str],
                 rates: Sequence[float] = FROC_FP_RATES,
                 iou_index: int = 0) -> Dict[str, Dict[str, float]]:
    """FROC sensitivities in percent, per class and ``overall``, with their mean.

    Args:
        match (MatchResult): Matched detections.
        class_names (Sequence[str]): One name per class.
        rates (Sequence[float]): False-positive rates per image.
        iou_index (int): Index into ``match.iou_thrs``.

    Returns:
        dict: ``{name: {'fp_<rate>': sens, ..., 'mean': mean_sens}}`` for every class and
        ``'overall'`` (``nan`` for a class without lesions).
    """
    table = froc_table(match, None, rates, iou_index)[0]
    out: Dict[str, Dict[str, float]] = {}
    for name, row in zip(list(class_names) + ['overall'], table):
        entry = {f'fp_{r:g}': 100.0 * float(v) for r, v in zip(rates, row)}
        entry['mean'] = 100.0 * float(np.mean(row)) if np.all(np.isfinite(row)) else float('nan')
        out[name] = entry
    return out


def _resampled_sensitivity(dets: Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                           npos_img: np.ndarray, weights: np.ndarray, rates: Sequence[float],
                           block: int) -> np.ndarray:
    """:func:`sensitivity_at` of :func:`weighted_froc_points` (pooled), walking the sorted
    detections ``block`` at a time and stopping once every row exceeds ``max(rates)``."""
    _, img, hit, ends = dets
    weights = np.asarray(weights, dtype=np.float64)
    rows = weights.shape[0]
    n_img = np.maximum(weights.sum(axis=1), 1e-12)
    npos = weights @ npos_img
    limit = (max(rates) + 1e-9) * n_img
    tp_run, fp_run = np.zeros(rows), np.zeros(rows)
    tp_pts, fp_pts = [np.zeros((rows, 1))], [np.zeros((rows, 1))]
    start = 0
    while start < img.size:
        # the step ends at the end of a tie group, so tied scores enter together
        stop = int(ends[min(np.searchsorted(ends, start + block - 1), ends.size - 1)]) + 1
        w = weights[:, img[start:stop]]
        tp_cum = tp_run[:, None] + np.cumsum(w * hit[None, start:stop], axis=1)
        fp_cum = fp_run[:, None] + np.cumsum(w * ~hit[None, start:stop], axis=1)
        sel = ends[(ends >= start) & (ends < stop)] - start
        tp_pts.append(tp_cum[:, sel])
        fp_pts.append(fp_cum[:, sel])
        tp_run, fp_run = tp_cum[:, -1], fp_cum[:, -1]
        start = stop
        if np.all(fp_run > limit):
            break
    with np.errstate(invalid='ignore', divide='ignore'):
        fps = np.hstack(fp_pts) / n_img[:, None]
        sens = np.hstack(tp_pts) / npos[:, None]
    sens[npos <= 0] = np.nan
    return sensitivity_at(fps, sens, rates)


def bootstrap_froc_ci(match: MatchResult,
                      n_resamples: int = 1000,
                      ci: float = 0.95,
                      seed: int = 0,
                      rates: Sequence[float] = FROC_FP_RATES,
                      iou_index: int = 0,
                      study_ids: Optional[Sequence[object]] = None,
                      block: int = 2048,
                      max_elements: int = 10_000_000) -> dict:
    """Percentile study-bootstrap intervals of the pooled (``overall``) FROC.

    The resamples are :func:`~spinexr.evaluation.bootstrap.resample_weights` over the study
    clusters of ``study_ids`` (the draws of :func:`~spinexr.evaluation.bootstrap.bootstrap_map_ci`
    for the same seed and ids), applied to the one matching as image weights. A resample without
    any lesion has no sensitivity: it is left out and counted in ``n_dropped``. The detections are
    walked in score order ``block`` at a time, and the walk stops once every resample is past
    ``max(rates)`` false positives per image: no later operating point can be chosen, so the
    result is exact (a model's many low-score boxes cost nothing).

    Args:
        match (MatchResult): Matched detections (all of them: build it with a large ``max_dets``).
        n_resamples (int): Number of resamples.
        ci (float): Coverage of the intervals.
        seed (int): Random seed; the result is deterministic for a seed.
        rates (Sequence[float]): False-positive rates per image.
        iou_index (int): Index into ``match.iou_thrs``.
        study_ids (Sequence, optional): Study id per image in the match's image order (sorted
            ``img_id``); ``None`` or missing entries: those images are resampled alone (warned).
        block (int): Detections per step of the walk (at least; a step ends after tied scores).
        max_elements (int): Bound on ``resamples x block`` per vectorised chunk (memory).

    Returns:
        dict: ``mean_low``/``mean_high`` (interval of the mean sensitivity over ``rates``),
        ``rate_low``/``rate_high`` (``(len(rates),)`` arrays, per rate), ``n_resamples``,
        ``n_dropped``, ``n_units`` (resampled clusters), ``unit`` (``'study'`` or ``'image'``),
        ``ci``, ``seed``. Sensitivities are fractions.
    """
    groups = study_groups(study_ids, match.num_images, what='bootstrap_froc_ci')
    weights = resample_weights(match.num_images, n_resamples, seed, groups)
    dets = _sorted_detections(match, list(range(match.num_classes)), iou_index)
    npos_img = match.npos.sum(axis=0).astype(np.float64)
    step = max(1, min(n_resamples, max_elements // max(block, 1)))
    vals = np.concatenate([
        _resampled_sensitivity(dets, npos_img, weights[i:i + step], rates, block)
        for i in range(0, n_resamples, step)
    ]) if n_resamples else np.zeros((0, len(rates)))
    means = vals.mean(axis=1)
    defined = np.isfinite(means)
    n_dropped = int((~defined).sum())
    if n_resamples and n_dropped > 0.05 * n_resamples:
        bootstrap_warning(f'bootstrap_froc_ci: {n_dropped} of {n_resamples} resamples hold no '
                          'lesion and are left out; the interval is unreliable.')
    mean_low, mean_high, _, _ = percentile_interval(means, ci)
    per_rate = [percentile_interval(vals[defined, j], ci) for j in range(len(rates))]
    n_units = int(groups.max()) + 1 if groups.size else 0
    return dict(mean_low=mean_low, mean_high=mean_high,
                rate_low=np.array([p[0] for p in per_rate]),
                rate_high=np.array([p[1] for p in per_rate]), n_resamples=int(n_resamples),
                n_dropped=n_dropped, n_units=n_units,
                unit='image' if n_units == match.num_images else 'study', ci=ci, seed=seed)


def compact_curve(fps: np.ndarray, sens: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The corners of a FROC step curve: the first point, each rise of sensitivity, the last point.

    Sensitivity is constant between the kept points, so a ``where='post'`` step plot and
    :func:`sensitivity_at` give the same values as with the full curve (whose length is the number
    of distinct scores); the compact one has at most ``lesions + 2`` points and fits in a json row.

    Args:
        fps (np.ndarray): ``(K,)`` false positives per image (:func:`froc_curve`).
        sens (np.ndarray): ``(K,)`` sensitivities.

    Returns:
        tuple[np.ndarray, np.ndarray]: The kept false-positive rates and sensitivities.
    """
    fps, sens = np.asarray(fps, dtype=np.float64), np.asarray(sens, dtype=np.float64)
    if fps.size == 0:
        return fps, sens
    keep = np.zeros(fps.size, bool)
    keep[0] = keep[-1] = True
    keep[1:] |= np.diff(sens) > 0
    return fps[keep], sens[keep]


__all__: List[str] = ['FROC_FP_RATES', 'froc_curve', 'weighted_froc_points', 'sensitivity_at',
                      'froc_table', 'froc_summary', 'bootstrap_froc_ci', 'compact_curve']
