"""All detection numbers of one model on one split, computed from plain arrays.

Used by :class:`spinexr.evaluation.metrics.VinDrDetMetric` (inside the Runner) and by the comparison
table (:mod:`spinexr.analysis.model_table`), so both report identical numbers.
"""
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from .bootstrap import bootstrap_map_ci
from .coco_ap import (COCO_IOU_THRS, ImageGT, ImagePred, MatchResult, ap_per_class, match_coco,
                      nanmean, precision_recall_at)
from .froc import FROC_FP_RATES, bootstrap_froc_ci, compact_curve, froc_curve, froc_table
from .voc_ap import eval_voc101


def class_key(name: str) -> str:
    """Metric-key form of a class name: ``'Surgical implant'`` -> ``'Surgical_implant'``."""
    return re.sub(r'[^0-9A-Za-z]+', '_', name).strip('_')


def summarize_detections(gts: Sequence[ImageGT],
                         preds: Sequence[ImagePred],
                         class_names: Sequence[str],
                         score_thr: float = 0.5,
                         max_dets: int = 100,
                         n_bootstrap: int = 0,
                         bootstrap_seed: int = 0,
                         ci: float = 0.95,
                         voc101: bool = True,
                         froc: bool = True) -> Dict[str, float]:
    """Compute the VinDr detection metrics.

    Keys (AP values are fractions in ``[0, 1]``):

    * ``mAP`` (COCO mAP@0.5:0.95), ``mAP_50``, ``mAP_75``;
    * ``AP50_<class>`` per class (COCO AP@0.5), ``nan`` when the class has no ground truth;
    * ``precision_<class>``, ``recall_<class>`` at IoU 0.5 and box score ``>= score_thr``, and
      their means ``precision``, ``recall``;
    * ``voc101_mAP`` and ``voc101_AP50_<class>`` (the VinDr paper's protocol) when ``voc101``;
    * ``mAP_50_ci_low``, ``mAP_50_ci_high`` (percentile bootstrap over **studies**: all images
      of a drawn study together, ``ImageGT.study_id``; images without one are resampled alone,
      with a warning), ``mAP_50_ci_units`` (number of resampled studies) and
      ``mAP_50_ci_dropped`` (resamples left out because a class had no ground truth in them,
      see :mod:`spinexr.evaluation.bootstrap`) when ``n_bootstrap > 0``;
    * with ``froc`` (:mod:`spinexr.evaluation.froc`; every detection counts, whatever
      ``max_dets``; false positives per image over all ``gts`` images): ``FROC_fp_<r>`` (pooled
      sensitivity at ``r`` false positives per image, ``r`` in ``0.125, 0.25, 0.5, 1, 2, 4, 8``),
      ``FROC_mean`` (their mean), ``FROC_fp_<r>_<class>`` and ``FROC_mean_<class>`` per class
      (``nan`` without ground truth), and with ``n_bootstrap > 0`` the study-bootstrap intervals
      ``FROC_mean_ci_low``/``_high``, ``FROC_fp_<r>_ci_low``/``_high``, ``FROC_ci_units`` and
      ``FROC_ci_dropped`` (resamples without a lesion, left out).

    Args:
        gts (Sequence[ImageGT]): Ground truth per evaluated image.
        preds (Sequence[ImagePred]): Detections per image.
        class_names (Sequence[str]): Class names, index = label.
        score_thr (float): Operating score threshold for precision/recall.
        max_dets (int): COCO ``maxDets``.
        n_bootstrap (int): Bootstrap resamples (0: no interval).
        bootstrap_seed (int): Bootstrap seed.
        ci (float): Interval coverage.
        voc101 (bool): Also compute the VOC-101 protocol.
        froc (bool): Also compute FROC (:func:`froc_metrics`).

    Returns:
        dict[str, float]: The metrics.
    """
    num_classes = len(class_names)
    match = match_coco(gts, preds, num_classes, COCO_IOU_THRS, max_dets)
    ap = ap_per_class(match)  # (10, C)
    out: Dict[str, float] = {}
    out['mAP'] = nanmean(ap.reshape(-1))
    out['mAP_50'] = nanmean(ap[0])
    out['mAP_75'] = nanmean(ap[5])
    prec, rec = precision_recall_at(match, score_thr, iou_index=0)
    for c, name in enumerate(class_names):
        out[f'AP50_{class_key(name)}'] = float(ap[0, c])
    for c, name in enumerate(class_names):
        out[f'precision_{class_key(name)}'] = float(prec[c])
        out[f'recall_{class_key(name)}'] = float(rec[c])
    has_gt = match.npos.sum(axis=1) > 0
    out['precision'] = float(prec[has_gt].mean()) if has_gt.any() else float('nan')
    out['recall'] = nanmean(rec)
    if voc101:
        voc = eval_voc101(gts, preds, num_classes, iou_thr=0.5)
        out['voc101_mAP'] = voc['mAP']
        for c, name in enumerate(class_names):
            out[f'voc101_AP50_{class_key(name)}'] = float(voc['ap'][c])
    # match_coco indexes images in img_id order; the study ids must follow the same order.
    study_ids = [g.study_id for g in sorted(gts, key=lambda g: g.img_id)]
    if not any(study_ids):
        study_ids = None
    if froc:
        froc_match = match if _max_per_image_class(preds) <= max_dets else \
            froc_matching(gts, preds, num_classes)
        out.update(froc_metrics(froc_match, class_names, n_bootstrap=n_bootstrap,
                                bootstrap_seed=bootstrap_seed, ci=ci, study_ids=study_ids))
    if n_bootstrap > 0:
        boot = bootstrap_map_ci(match, n_resamples=n_bootstrap, ci=ci, seed=bootstrap_seed,
                                iou_index=0, study_ids=study_ids)
        out['mAP_50_ci_low'] = boot['low']
        out['mAP_50_ci_high'] = boot['high']
        out['mAP_50_ci_units'] = float(boot['n_units'])
        out['mAP_50_ci_dropped'] = float(boot['n_dropped'])
    return out


def _max_per_image_class(preds: Sequence[ImagePred]) -> int:
    """Largest number of detections of one class in one image."""
    return max((int(np.bincount(np.asarray(p.labels, dtype=np.int64)).max())
                for p in preds if len(p.labels)), default=0)


def froc_matching(gts: Sequence[ImageGT], preds: Sequence[ImagePred],
                  num_classes: int) -> MatchResult:
    """COCO's greedy matching at IoU 0.5 with no cap on detections, the input of FROC.

    Args:
        gts (Sequence[ImageGT]): Ground truth of every evaluated image (normal ones included).
        preds (Sequence[ImagePred]): Detections.
        num_classes (int): Number of classes.

    Returns:
        MatchResult: One IoU threshold (0.5), every detection kept.
    """
    cap = max(1, _max_per_image_class(preds))
    return match_coco(gts, preds, num_classes, iou_thrs=(0.5, ), max_dets=cap)


def froc_curve_fields(gts: Sequence[ImageGT], preds: Sequence[ImagePred],
                      num_classes: int) -> Dict[str, List[float]]:
    """The pooled FROC curve's corners as table-row fields, for the ``froc.png`` of
    :func:`spinexr.analysis.report.write_comparison` (any row built from predictions, e.g. a
    fused ensemble, can add them).

    Args:
        gts (Sequence[ImageGT]): Ground truth of every evaluated image.
        preds (Sequence[ImagePred]): Detections (all of them are matched, no ``max_dets`` cap).
        num_classes (int): Number of classes.

    Returns:
        dict: ``froc_curve_fps`` and ``froc_curve_sens`` lists (:func:`froc.compact_curve`).
    """
    fps, sens = compact_curve(*froc_curve(froc_matching(gts, preds, num_classes)))
    return dict(froc_curve_fps=fps.tolist(), froc_curve_sens=sens.tolist())


def froc_metrics(match: MatchResult,
                 class_names: Sequence[str],
                 n_bootstrap: int = 0,
                 bootstrap_seed: int = 0,
                 ci: float = 0.95,
                 study_ids: Optional[Sequence[str]] = None,
                 rates: Sequence[float] = FROC_FP_RATES) -> Dict[str, float]:
    """FROC keys of :func:`summarize_detections` (fractions) from a matching at IoU 0.5 first.

    Args:
        match (MatchResult): Matching with every detection (:func:`froc_matching`), IoU 0.5 at
            index 0.
        class_names (Sequence[str]): Class names, index = label.
        n_bootstrap (int): Study-bootstrap resamples (0: no interval).
        bootstrap_seed (int): Bootstrap seed.
        ci (float): Interval coverage.
        study_ids (Sequence[str], optional): Study id per image in the match's image order.
        rates (Sequence[float]): False positives per image.

    Returns:
        dict[str, float]: ``FROC_*`` keys (see :func:`summarize_detections`).
    """
    table = froc_table(match, None, rates, iou_index=0)[0]
    out: Dict[str, float] = {}
    suffixes = [f'_{class_key(n)}' for n in class_names] + ['']  # table's last row: overall
    for suffix, row in zip(suffixes, table):
        for r, v in zip(rates, row):
            out[f'FROC_fp_{r:g}{suffix}'] = float(v)
        out[f'FROC_mean{suffix}'] = float(np.mean(row))
    if n_bootstrap > 0:
        boot = bootstrap_froc_ci(match, n_resamples=n_bootstrap, ci=ci, seed=bootstrap_seed,
                                 rates=rates, iou_index=0, study_ids=study_ids)
        out['FROC_mean_ci_low'] = boot['mean_low']
        out['FROC_mean_ci_high'] = boot['mean_high']
        for r, lo, hi in zip(rates, boot['rate_low'], boot['rate_high']):
            out[f'FROC_fp_{r:g}_ci_low'] = float(lo)
            out[f'FROC_fp_{r:g}_ci_high'] = float(hi)
        out['FROC_ci_units'] = float(boot['n_units'])
        out['FROC_ci_dropped'] = float(boot['n_dropped'])
    return out


def preds_from_arrays(img_id: int, bboxes: np.ndarray, scores: np.ndarray,
                      labels: np.ndarray, score_floor: Optional[float] = None) -> ImagePred:
    """Build an :class:`ImagePred`, optionally dropping scores below ``score_floor``."""
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if score_floor is not None:
        keep = scores >= score_floor
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    return ImagePred(img_id=int(img_id), bboxes=bboxes, scores=scores, labels=labels)
