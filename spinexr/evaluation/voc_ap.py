"""The VinDr-SpineXR paper's detection protocol: VOC-style AP@0.5 with 101-point interpolation.

Differences from COCO's AP@0.5 (:mod:`spinexr.evaluation.coco_ap`):

* **matching**: detections of a class are processed in descending score order over the whole test
  set; each is compared with the ground-truth box of its image that it overlaps most. If that IoU is
  at least ``iou_thr`` and that box is still unclaimed, the detection is a true positive;
  otherwise it is a false positive, even if another unclaimed box overlaps it by more than
  ``iou_thr`` (PASCAL VOC's rule; COCO instead looks for the best *unclaimed* box);
* **no cap** on detections per image (COCO keeps 100 per image and class);
* **interpolation**: AP is the mean, over the 101 recall levels ``0, 0.01, ..., 1``, of the highest
  precision reached at a recall of at least that level (0 if the level is never reached).

IoU has no legacy ``+1``. Classes without ground truth get ``nan`` and are left out of the mean.
"""
from typing import Dict, List, Sequence

import numpy as np

from .coco_ap import ImageGT, ImagePred, box_iou, nanmean

#: The 101 recall levels.
VOC101_REC_THRS = np.linspace(0.0, 1.0, 101)


def voc_ap_101(recall: np.ndarray, precision: np.ndarray) -> float:
    """101-point interpolated AP of one precision/recall curve.

    Args:
        recall (np.ndarray): Recall after each detection (non-decreasing).
        precision (np.ndarray): Precision after each detection.

    Returns:
        float: ``mean_r max{precision_i : recall_i >= r}`` over ``r in {0, 0.01, ..., 1}``.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, VOC101_REC_THRS, side='left')
    vals = np.where(idx < recall.size, envelope[np.minimum(idx, recall.size - 1)], 0.0)
    return float(vals.mean())


def voc_match_class(gts: Sequence[ImageGT], preds: Sequence[ImagePred], label: int,
                    iou_thr: float = 0.5) -> tuple:
    """VOC matching of one class over all images.

    Args:
        gts (Sequence[ImageGT]): Ground truth per image.
        preds (Sequence[ImagePred]): Detections per image.
        label (int): Class index.
        iou_thr (float): IoU threshold.

    Returns:
        tuple[np.ndarray, np.ndarray, int]: ``tp`` and ``fp`` flags in descending score order
        (ties keep image order), and the number of non-crowd ground-truth boxes.
    """
    gt_by_id = {g.img_id: g for g in gts}
    npos = 0
    claimed: Dict[int, np.ndarray] = {}
    for g in gts:
        m = g.labels == label
        npos += int(np.sum(m & ~g.iscrowd))
        claimed[g.img_id] = np.zeros(int(m.sum()), dtype=bool)
    recs: List[tuple] = []
    for p in sorted(preds, key=lambda x: x.img_id):
        if p.img_id not in gt_by_id:
            continue
        m = np.asarray(p.labels) == label
        for box, score in zip(np.asarray(p.bboxes, dtype=np.float64)[m],
                              np.asarray(p.scores, dtype=np.float64)[m]):
            recs.append((score, p.img_id, box))
    order = np.argsort(-np.array([r[0] for r in recs]), kind='mergesort')
    tp = np.zeros(len(recs), dtype=bool)
    fp = np.zeros(len(recs), dtype=bool)
    for k, i in enumerate(order):
        _, img_id, box = recs[i]
        g = gt_by_id[img_id]
        gm = g.labels == label
        gboxes, gcrowd = g.bboxes[gm], g.iscrowd[gm]
        if len(gboxes) == 0:
            fp[k] = True
            continue
        ious = box_iou(box[None], gboxes)[0]
        j = int(np.argmax(ious))
        if ious[j] >= iou_thr:
            if gcrowd[j]:
                continue  # VOC "difficult": neither TP nor FP
            if not claimed[img_id][j]:
                tp[k] = True
                claimed[img_id][j] = True
            else:
                fp[k] = True
        else:
            fp[k] = True
    keep = tp | fp
    return tp[keep], fp[keep], npos


def eval_voc101(gts: Sequence[ImageGT], preds: Sequence[ImagePred], num_classes: int,
                iou_thr: float = 0.5) -> dict:
    """Per-class and mean VOC-101 AP.

    Args:
        gts (Sequence[ImageGT]): Ground truth per image.
        preds (Sequence[ImagePred]): Detections per image.
        num_classes (int): Number of classes.
        iou_thr (float): IoU threshold (the paper: 0.5).

    Returns:
        dict: ``ap`` (``(C,)`` array, ``nan`` for classes without ground truth) and ``mAP``.
    """
    aps = np.full(num_classes, np.nan)
    for c in range(num_classes):
        tp, fp, npos = voc_match_class(gts, preds, c, iou_thr)
        if npos == 0:
            continue
        tpc, fpc = np.cumsum(tp), np.cumsum(fp)
        rec = tpc / npos
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        aps[c] = voc_ap_101(rec, prec)
    return dict(ap=aps, mAP=nanmean(aps))
