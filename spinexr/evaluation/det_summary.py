"""All detection numbers of one model on one split, computed from plain arrays.

Used by :class:`spinexr.evaluation.metrics.VinDrDetMetric` (inside the Runner) and by the comparison
table (:mod:`spinexr.evaluation.compare`), so both report identical numbers.
"""
import re
from typing import Dict, Optional, Sequence

import numpy as np

from .bootstrap import bootstrap_map_ci
from .coco_ap import (COCO_IOU_THRS, ImageGT, ImagePred, ap_per_class, match_coco, nanmean,
                      precision_recall_at)
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
                         voc101: bool = True) -> Dict[str, float]:
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
      see :mod:`spinexr.evaluation.bootstrap`) when ``n_bootstrap > 0``.

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
    if n_bootstrap > 0:
        # match_coco indexes images in img_id order; the study ids must follow the same order.
        study_ids = [g.study_id for g in sorted(gts, key=lambda g: g.img_id)]
        if not any(study_ids):
            study_ids = None
        boot = bootstrap_map_ci(match, n_resamples=n_bootstrap, ci=ci, seed=bootstrap_seed,
                                iou_index=0, study_ids=study_ids)
        out['mAP_50_ci_low'] = boot['low']
        out['mAP_50_ci_high'] = boot['high']
        out['mAP_50_ci_units'] = float(boot['n_units'])
        out['mAP_50_ci_dropped'] = float(boot['n_dropped'])
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
