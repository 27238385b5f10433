"""Bootstrap confidence intervals over images for COCO-style mAP.

A bootstrap resample draws ``N`` of the ``N`` test images with replacement. Instead of re-running
the matching, each image gets a multiplicity ``w_i`` (how often it was drawn): matching inside an
image does not depend on other images, so a resample's PR curve is the weighted cumulative sum of
the already matched detections (sorted once), with ``sum_i w_i * npos_i`` positives. Duplicated
images only add points that the precision envelope dominates, so the AP equals the one of the
explicit resample (checked in the tests). All resamples of a chunk are computed at once in NumPy.
"""
from typing import Optional

import numpy as np

from .coco_ap import MatchResult, interpolated_ap


def resample_weights(num_images: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Image multiplicities of ``n_resamples`` bootstrap draws.

    Args:
        num_images (int): Number of images.
        n_resamples (int): Number of resamples.
        seed (int): Seed of ``numpy.random.default_rng``.

    Returns:
        np.ndarray: ``(n_resamples, num_images)`` int counts, each row summing to ``num_images``.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_images, np.full(num_images, 1.0 / num_images), size=n_resamples)


def weighted_map(match: MatchResult, weights: np.ndarray, iou_index: int = 0) -> np.ndarray:
    """mAP at one IoU threshold for a batch of image weightings.

    Args:
        match (MatchResult): Matched detections (:func:`spinexr.evaluation.coco_ap.match_coco`).
        weights (np.ndarray): ``(B, num_images)`` image multiplicities.
        iou_index (int): Index into ``match.iou_thrs``.

    Returns:
        np.ndarray: ``(B,)`` mean over classes with positives in the resample (``nan`` if none).
    """
    weights = np.asarray(weights, dtype=np.float64)
    aps = np.full((weights.shape[0], match.num_classes), np.nan)
    for c in range(match.num_classes):
        npos = weights @ match.npos[c].astype(np.float64)
        keep = ~match.ignore[c][iou_index]
        w = weights[:, match.img_idx[c][keep]]
        tp = match.tp[c][iou_index][keep]
        tp_cum = np.cumsum(w * tp[None, :], axis=1)
        fp_cum = np.cumsum(w * (~tp)[None, :], axis=1)
        aps[:, c] = interpolated_ap(tp_cum, fp_cum, npos)
    valid = np.isfinite(aps)
    counts = valid.sum(axis=1)
    sums = np.where(valid, aps, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def bootstrap_map_ci(match: MatchResult,
                     n_resamples: int = 1000,
                     ci: float = 0.95,
                     seed: int = 0,
                     iou_index: int = 0,
                     chunk: Optional[int] = 100) -> dict:
    """Percentile bootstrap confidence interval of mAP over images.

    Args:
        match (MatchResult): Matched detections.
        n_resamples (int): Number of resamples (1000 is the usual choice).
        ci (float): Coverage of the interval.
        seed (int): Random seed; the result is deterministic for a seed.
        iou_index (int): Index into ``match.iou_thrs`` (0 = IoU 0.5 with COCO thresholds).
        chunk (int, optional): Resamples per vectorised batch (bounds memory); ``None``: all.

    Returns:
        dict: ``low``, ``high`` (percentile interval), ``mean`` and ``std`` of the resampled mAPs,
        ``n_resamples``, ``ci``, ``seed``.
    """
    weights = resample_weights(match.num_images, n_resamples, seed)
    step = chunk or n_resamples
    vals = np.concatenate([
        weighted_map(match, weights[i:i + step], iou_index) for i in range(0, n_resamples, step)
    ]) if n_resamples else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    alpha = (1.0 - ci) / 2.0
    if vals.size == 0:
        low = high = mean = std = float('nan')
    else:
        low, high = (float(v) for v in np.quantile(vals, [alpha, 1.0 - alpha]))
        mean, std = float(vals.mean()), float(vals.std())
    return dict(low=low, high=high, mean=mean, std=std, n_resamples=int(n_resamples), ci=ci,
                seed=seed)
