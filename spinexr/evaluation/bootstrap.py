"""Cluster (study) bootstrap confidence intervals for COCO-style mAP.

**Unit of resampling.** A VinDr-SpineXR study holds about two views of one patient, and the views'
findings and errors are correlated. Resampling images treats them as independent and gives
intervals that are too narrow, so a resample draws ``K`` of the ``K`` *studies* with replacement
and keeps every image of a drawn study (a cluster bootstrap). Each image then gets a multiplicity
``w_i`` = how often its study was drawn. Images without a study id are their own study (a warning
is logged); with no study id at all this is the plain image bootstrap.

**Fast evaluation.** Matching inside an image does not depend on other images, so a resample's PR
curve is the weighted cumulative sum of the already matched detections (sorted once), with
``sum_i w_i * npos_i`` positives. Duplicated images only add points that the precision envelope
dominates, so the AP equals the one of the explicit resample (checked in the tests). All
resamples of a chunk are computed at once in NumPy.

**A class absent from a resample** (none of its ground truth drawn) has no AP there. Default rule
``absent_class='drop_replicate'``: the replicate is undefined (``nan``) and the interval uses the
replicates in which every class of the point estimate has ground truth, so every replicate
averages the same classes as the point estimate; ``n_dropped`` says how many were left out (a
warning is logged above 5%: the interval is then conditional on the rare class being drawn and
should not be trusted). ``absent_class='drop_class'`` instead leaves that class out of that
replicate's mean (COCO's rule for a split without the class).
"""
import logging
from typing import Optional, Sequence

import numpy as np

from .coco_ap import MatchResult, interpolated_ap

#: The rules for a class without ground truth in a resample (see the module docstring).
ABSENT_CLASS_RULES = ('drop_replicate', 'drop_class')


def bootstrap_warning(msg: str) -> None:
    """Log a warning about a bootstrap (missing study ids, dropped resamples) to the current
    MMLogger; the interval functions of :mod:`spinexr.evaluation` share it.

    Args:
        msg (str): The message, starting with the name of the function that warns.
    """
    from mmengine.logging import print_log
    print_log(msg, logger='current', level=logging.WARNING)


def study_groups(study_ids: Optional[Sequence[object]], num_images: int,
                 what: str = 'bootstrap') -> np.ndarray:
    """Cluster index of every image from its study id.

    Images with a missing id (``None`` or ``''``) become clusters of their own, and a warning is
    logged, because image resampling understates the interval when views are correlated.

    Args:
        study_ids (Sequence | None): Study id per image, in the images' index order; ``None``:
            no ids at all (each image is its own cluster).
        num_images (int): Number of images (checked against ``study_ids``).
        what (str): Name of the caller for the warning.

    Returns:
        np.ndarray: ``(num_images,)`` int64 cluster indices ``0..K-1``, numbered in order of first
        appearance.

    Raises:
        ValueError: ``study_ids`` has the wrong length.
    """
    if study_ids is None:
        bootstrap_warning(f'{what}: no study ids; resampling images instead of studies. Views of '
                          'one study are correlated, so this interval is too narrow.')
        return np.arange(num_images, dtype=np.int64)
    ids = ['' if s is None else str(s) for s in study_ids]
    if len(ids) != num_images:
        raise ValueError(f'{what}: {len(ids)} study ids for {num_images} images')
    missing = sum(1 for s in ids if s in ('', 'nan', 'None'))
    if missing:
        bootstrap_warning(f'{what}: {missing} of {num_images} images have no study id; each of '
                          'them is resampled as its own study (the interval is too narrow if '
                          'they share studies).')
    index: dict = {}
    groups = np.empty(num_images, dtype=np.int64)
    for i, s in enumerate(ids):
        key = ('#image', i) if s in ('', 'nan', 'None') else s
        groups[i] = index.setdefault(key, len(index))
    return groups


def resample_weights(num_images: int, n_resamples: int, seed: int = 0,
                     groups: Optional[np.ndarray] = None) -> np.ndarray:
    """Image multiplicities of ``n_resamples`` bootstrap draws of clusters.

    ``K`` clusters are drawn with replacement ``K`` times; an image's weight is its cluster's draw
    count. Without ``groups`` every image is a cluster (rows sum to ``num_images``); with
    ``groups = arange(num_images)`` the draws are identical to that.

    Args:
        num_images (int): Number of images.
        n_resamples (int): Number of resamples.
        seed (int): Seed of ``numpy.random.default_rng``.
        groups (np.ndarray, optional): ``(num_images,)`` cluster index ``0..K-1`` per image
            (:func:`study_groups`).

    Returns:
        np.ndarray: ``(n_resamples, num_images)`` int counts.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(num_images, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (num_images,):
        raise ValueError(f'groups has shape {groups.shape}, expected ({num_images},)')
    k = int(groups.max()) + 1 if num_images else 0
    if k == 0:
        return np.zeros((n_resamples, 0), dtype=np.int64)
    counts = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)
    return counts[:, groups]


def weighted_map(match: MatchResult, weights: np.ndarray, iou_index: int = 0,
                 absent_class: str = 'drop_class') -> np.ndarray:
    """mAP at one IoU threshold for a batch of image weightings.

    Args:
        match (MatchResult): Matched detections (:func:`spinexr.evaluation.coco_ap.match_coco`).
        weights (np.ndarray): ``(B, num_images)`` image multiplicities.
        iou_index (int): Index into ``match.iou_thrs``.
        absent_class (str): ``'drop_class'``: mean over the classes with positives in the
            resample; ``'drop_replicate'``: ``nan`` when a class with ground truth in ``match``
            has none in the resample.

    Returns:
        np.ndarray: ``(B,)`` mAP (``nan`` if undefined).
    """
    if absent_class not in ABSENT_CLASS_RULES:
        raise ValueError(f'absent_class must be one of {ABSENT_CLASS_RULES}, got {absent_class!r}')
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
    out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    if absent_class == 'drop_replicate':
        present = match.npos.sum(axis=1) > 0
        out[~valid[:, present].all(axis=1)] = np.nan
    return out


def percentile_interval(values: np.ndarray, ci: float) -> tuple:
    """``(low, high, mean, std)`` of the finite ``values`` (all ``nan`` if none)."""
    vals = np.asarray(values, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return (float('nan'), ) * 4
    alpha = (1.0 - ci) / 2.0
    low, high = (float(v) for v in np.quantile(vals, [alpha, 1.0 - alpha]))
    return low, high, float(vals.mean()), float(vals.std())


def bootstrap_map_ci(match: MatchResult,
                     n_resamples: int = 1000,
                     ci: float = 0.95,
                     seed: int = 0,
                     iou_index: int = 0,
                     chunk: Optional[int] = 100,
                     study_ids: Optional[Sequence[object]] = None,
                     absent_class: str = 'drop_replicate') -> dict:
    """Percentile cluster-bootstrap confidence interval of mAP, resampling studies.

    Args:
        match (MatchResult): Matched detections.
        n_resamples (int): Number of resamples (1000 is the usual choice).
        ci (float): Coverage of the interval.
        seed (int): Random seed; the result is deterministic for a seed.
        iou_index (int): Index into ``match.iou_thrs`` (0 = IoU 0.5 with COCO thresholds).
        chunk (int, optional): Resamples per vectorised batch (bounds memory); ``None``: all.
        study_ids (Sequence, optional): Study id per image **in the match's image order**
            (``match_coco`` sorts images by ``img_id``). ``None`` or missing entries: those images
            are resampled on their own, with a logged warning.
        absent_class (str): Rule for a class absent from a resample (module docstring).

    Returns:
        dict: ``low``, ``high`` (percentile interval), ``mean`` and ``std`` of the defined
        resampled mAPs, ``n_resamples``, ``n_dropped`` (undefined replicates, left out),
        ``n_units`` (resampled clusters), ``unit`` (``'study'`` or ``'image'`` when every image
        is its own cluster), ``ci``, ``seed``.
    """
    groups = study_groups(study_ids, match.num_images, what='bootstrap_map_ci')
    weights = resample_weights(match.num_images, n_resamples, seed, groups)
    step = chunk or n_resamples
    vals = np.concatenate([
        weighted_map(match, weights[i:i + step], iou_index, absent_class)
        for i in range(0, n_resamples, step)
    ]) if n_resamples else np.zeros(0)
    n_dropped = int(np.sum(~np.isfinite(vals)))
    if n_resamples and n_dropped > 0.05 * n_resamples:
        bootstrap_warning(f'bootstrap_map_ci: {n_dropped} of {n_resamples} resamples lack a class '
                          'and are left out; the interval is conditional on drawing it and '
                          'unreliable.')
    low, high, mean, std = percentile_interval(vals, ci)
    n_units = int(groups.max()) + 1 if groups.size else 0
    return dict(low=low, high=high, mean=mean, std=std, n_resamples=int(n_resamples),
                n_dropped=n_dropped, n_units=n_units,
                unit='image' if n_units == match.num_images else 'study', ci=ci, seed=seed)
