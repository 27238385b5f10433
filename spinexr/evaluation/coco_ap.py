"""COCO-style box matching and average precision in NumPy (the pycocotools ``COCOeval`` rules).

This re-implements what ``pycocotools.cocoeval.COCOeval`` does for ``iouType='bbox'``, area range
``all`` and one ``maxDets`` value, so that the same matched detections can be re-weighted
quickly for bootstrap confidence intervals (:mod:`spinexr.evaluation.bootstrap`).
``tests/evaluation`` checks the numbers against pycocotools on the same predictions.

Conventions:
    * boxes are ``(x1, y1, x2, y2)`` float pixels, IoU without the legacy ``+1``;
    * labels are 0-based class indices (COCO category id minus one, in the file's category order);
    * ground truths with ``iscrowd=1`` are "ignored": a detection matched to one is neither a true
      nor a false positive (COCO's rule; crowd IoU is intersection over detection area).
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

#: Recall thresholds of COCO's 101-point interpolation.
REC_THRS = np.linspace(0.0, 1.0, 101)
#: COCO's IoU thresholds 0.50:0.05:0.95.
COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)


@dataclass
class ImageGT:
    """Ground truth of one image.

    Attributes:
        img_id (int): COCO image id (``images[].id``).
        bboxes (np.ndarray): ``(n, 4)`` boxes ``x1, y1, x2, y2``.
        labels (np.ndarray): ``(n,)`` 0-based class indices.
        areas (np.ndarray): ``(n,)`` the annotation ``area`` field (COCO uses it for area ranges).
        iscrowd (np.ndarray): ``(n,)`` bool, crowd (ignored) boxes.
        image_id (str): The dataset's own image identifier (VinDr: 32-hex), ``''`` if absent.
        study_id (str): The image's study (the bootstrap's resampled unit), ``''`` if absent.
    """
    img_id: int
    bboxes: np.ndarray
    labels: np.ndarray
    areas: np.ndarray
    iscrowd: np.ndarray
    image_id: str = ''
    study_id: str = ''


@dataclass
class ImagePred:
    """Detections of one image: ``bboxes`` ``(n, 4)`` xyxy, ``scores`` and ``labels`` ``(n,)``."""
    img_id: int
    bboxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


@dataclass
class MatchResult:
    """Per-class matched detections, the input of AP computation and of the bootstrap.

    Attributes:
        iou_thrs (np.ndarray): ``(T,)`` IoU thresholds.
        num_images (int): Number of evaluated images (image index range).
        scores (list[np.ndarray]): Per class, ``(n_c,)`` detection scores, sorted descending
            (stable, in image order for ties, as COCOeval).
        img_idx (list[np.ndarray]): Per class, ``(n_c,)`` index of the image of each detection.
        tp (list[np.ndarray]): Per class, ``(T, n_c)`` bool, true positive at each threshold.
        ignore (list[np.ndarray]): Per class, ``(T, n_c)`` bool, detection matched to an ignored gt.
        npos (np.ndarray): ``(C, num_images)`` count of non-ignored ground truths.
    """
    iou_thrs: np.ndarray
    num_images: int
    scores: List[np.ndarray] = field(default_factory=list)
    img_idx: List[np.ndarray] = field(default_factory=list)
    tp: List[np.ndarray] = field(default_factory=list)
    ignore: List[np.ndarray] = field(default_factory=list)
    npos: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def num_classes(self) -> int:
        """int: Number of classes."""
        return len(self.scores)


def load_coco_gt(ann_file: str) -> tuple:
    """Read a COCO detection file into per-image ground truth.

    Args:
        ann_file (str): Path of the COCO json.

    Returns:
        tuple[list[ImageGT], list[str]]: Ground truth per image (in ``images`` order) and the class
        names in category-id order.

    Raises:
        ValueError: If an annotation references an unknown image or category.
    """
    data = json.loads(Path(ann_file).read_text())
    cats = sorted(data.get('categories', []), key=lambda c: c['id'])
    cat_to_label = {c['id']: i for i, c in enumerate(cats)}
    per_img: Dict[int, list] = {img['id']: [] for img in data['images']}
    for ann in data.get('annotations', []):
        if ann['image_id'] not in per_img:
            raise ValueError(f'{ann_file}: annotation id {ann.get("id")} refers to unknown '
                             f'image_id {ann["image_id"]}')
        if ann['category_id'] not in cat_to_label:
            raise ValueError(f'{ann_file}: annotation id {ann.get("id")} has unknown '
                             f'category_id {ann["category_id"]}')
        per_img[ann['image_id']].append(ann)
    gts = []
    for img in data['images']:
        anns = per_img[img['id']]
        boxes = np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        gts.append(
            ImageGT(img_id=int(img['id']), bboxes=boxes,
                    labels=np.array([cat_to_label[a['category_id']] for a in anns], dtype=np.int64),
                    areas=np.array([a.get('area', 0.0) for a in anns], dtype=np.float64),
                    iscrowd=np.array([bool(a.get('iscrowd', 0)) for a in anns], dtype=bool),
                    image_id=str(img.get('image_id', '')),
                    study_id=str(img.get('study_id', '') or '')))
    return gts, [c['name'] for c in cats]


def box_iou(dets: np.ndarray, gts: np.ndarray, crowd: Optional[np.ndarray] = None) -> np.ndarray:
    """IoU matrix of ``(n, 4)`` and ``(m, 4)`` xyxy boxes (crowd columns: inter / det area).

    Args:
        dets (np.ndarray): ``(n, 4)`` detections.
        gts (np.ndarray): ``(m, 4)`` ground truths.
        crowd (np.ndarray, optional): ``(m,)`` bool; for these columns the union is the det area.

    Returns:
        np.ndarray: ``(n, m)`` IoU.
    """
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    lt = np.maximum(dets[:, None, :2], gts[None, :, :2])
    rb = np.minimum(dets[:, None, 2:], gts[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_d = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    area_g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    union = area_d[:, None] + area_g[None, :] - inter
    if crowd is not None and crowd.any():
        union = np.where(crowd[None, :], area_d[:, None], union)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _match_image_class(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray,
                       iou_thrs: np.ndarray) -> tuple:
    """COCOeval.evaluateImg for one image and class; dets must be sorted by score (desc)."""
    num_t, nd = len(iou_thrs), len(det_boxes)
    # COCOeval sorts gts so that ignored ones come last.
    gt_order = np.argsort(gt_crowd, kind='mergesort')
    gt_boxes, gt_ig = gt_boxes[gt_order], gt_crowd[gt_order]
    ious = box_iou(det_boxes, gt_boxes, gt_ig)
    tp = np.zeros((num_t, nd), dtype=bool)
    ignore = np.zeros((num_t, nd), dtype=bool)
    gtm = np.zeros((num_t, len(gt_boxes)), dtype=bool)
    for ti, t in enumerate(iou_thrs):
        for di in range(nd):
            iou = min(t, 1 - 1e-10)
            m = -1
            for gi in range(len(gt_boxes)):
                if gtm[ti, gi] and not gt_ig[gi]:
                    continue
                if m > -1 and not gt_ig[m] and gt_ig[gi]:
                    break
                if ious[di, gi] < iou:
                    continue
                iou = ious[di, gi]
                m = gi
            if m == -1:
                continue
            ignore[ti, di] = gt_ig[m]
            tp[ti, di] = not gt_ig[m]
            gtm[ti, m] = True
    return tp, ignore


def match_coco(gts: Sequence[ImageGT],
               preds: Sequence[ImagePred],
               num_classes: int,
               iou_thrs: Sequence[float] = tuple(COCO_IOU_THRS),
               max_dets: int = 100) -> MatchResult:
    """Match detections to ground truth with COCOeval's greedy rule, per image and class.

    Args:
        gts (Sequence[ImageGT]): Ground truth, one entry per evaluated image.
        preds (Sequence[ImagePred]): Detections; images without an entry have none. Entries for
            images not in ``gts`` are ignored (as COCOeval with ``imgIds`` set).
        num_classes (int): Number of classes.
        iou_thrs (Sequence[float]): IoU thresholds.
        max_dets (int): Detections kept per image and class (highest scores), COCO's ``maxDets``.

    Returns:
        MatchResult: Matched detections per class.
    """
    iou_thrs = np.asarray(iou_thrs, dtype=np.float64)
    pred_by_id = {p.img_id: p for p in preds}
    res = MatchResult(iou_thrs=iou_thrs, num_images=len(gts),
                      npos=np.zeros((num_classes, len(gts)), dtype=np.int64))
    per_cls: List[list] = [[] for _ in range(num_classes)]
    for ii, gt in enumerate(sorted(gts, key=lambda g: g.img_id)):
        pred = pred_by_id.get(gt.img_id)
        for c in range(num_classes):
            gmask = gt.labels == c
            res.npos[c, ii] = int(np.sum(gmask & ~gt.iscrowd))
            if pred is None:
                continue
            dmask = np.asarray(pred.labels) == c
            if not dmask.any():
                continue
            scores = np.asarray(pred.scores, dtype=np.float64)[dmask]
            order = np.argsort(-scores, kind='mergesort')[:max_dets]
            boxes = np.asarray(pred.bboxes, dtype=np.float64)[dmask][order]
            tp, ig = _match_image_class(boxes, gt.bboxes[gmask], gt.iscrowd[gmask], iou_thrs)
            per_cls[c].append((scores[order], np.full(len(order), ii), tp, ig))
    for c in range(num_classes):
        if per_cls[c]:
            scores = np.concatenate([x[0] for x in per_cls[c]])
            order = np.argsort(-scores, kind='mergesort')
            res.scores.append(scores[order])
            res.img_idx.append(np.concatenate([x[1] for x in per_cls[c]])[order])
            res.tp.append(np.concatenate([x[2] for x in per_cls[c]], axis=1)[:, order])
            res.ignore.append(np.concatenate([x[3] for x in per_cls[c]], axis=1)[:, order])
        else:
            res.scores.append(np.zeros(0))
            res.img_idx.append(np.zeros(0, dtype=np.int64))
            res.tp.append(np.zeros((len(iou_thrs), 0), dtype=bool))
            res.ignore.append(np.zeros((len(iou_thrs), 0), dtype=bool))
    return res


def interpolated_ap(tp_cum: np.ndarray, fp_cum: np.ndarray, npos: np.ndarray,
                    rec_thrs: np.ndarray = REC_THRS) -> np.ndarray:
    """COCO's 101-point interpolated AP for a batch of PR curves.

    Args:
        tp_cum (np.ndarray): ``(B, n)`` cumulative (possibly weighted) true positives.
        fp_cum (np.ndarray): ``(B, n)`` cumulative false positives.
        npos (np.ndarray): ``(B,)`` number of positives; rows with ``npos == 0`` give ``nan``.
        rec_thrs (np.ndarray): Recall thresholds.

    Returns:
        np.ndarray: ``(B,)`` AP values.
    """
    b, n = tp_cum.shape
    ap = np.full(b, np.nan)
    valid = npos > 0
    if n == 0:
        ap[valid] = 0.0
        return ap
    rc = tp_cum / np.maximum(npos, 1)[:, None]
    pr = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    # precision envelope: max over all points to the right
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    # Row by row: one searchsorted over rows offset by a constant rounds a recall just below a
    # threshold onto it (7/10 < linspace's 0.7000000000000001, but 7/10 + 2 == 0.7...01 + 2),
    # which made bootstrap replicates after the first of a chunk differ from COCOeval.
    idx = np.stack([np.searchsorted(row, rec_thrs, side='left') for row in rc])
    inside = idx < n
    q = np.where(inside, np.take_along_axis(pr, np.minimum(idx, n - 1), axis=1), 0.0)
    ap[valid] = q.mean(axis=1)[valid]
    return ap


def ap_per_class(match: MatchResult) -> np.ndarray:
    """AP per IoU threshold and class (``nan`` for classes without ground truth).

    Args:
        match (MatchResult): Output of :func:`match_coco`.

    Returns:
        np.ndarray: ``(T, C)`` AP.
    """
    out = np.full((len(match.iou_thrs), match.num_classes), np.nan)
    for c in range(match.num_classes):
        keep = ~match.ignore[c]
        tp = match.tp[c] & keep
        fp = ~match.tp[c] & keep
        npos = np.full(len(match.iou_thrs), match.npos[c].sum())
        out[:, c] = interpolated_ap(np.cumsum(tp, axis=1, dtype=np.float64),
                                    np.cumsum(fp, axis=1, dtype=np.float64), npos)
    return out


def precision_recall_at(match: MatchResult, score_thr: float, iou_index: int = 0) -> tuple:
    """Per-class precision and recall of the detections scoring at least ``score_thr``.

    COCO's greedy matching handles detections in score order, so restricting the matched
    detections to ``score >= score_thr`` equals matching only those.

    Args:
        match (MatchResult): Output of :func:`match_coco`.
        score_thr (float): Operating score threshold.
        iou_index (int): Index into ``match.iou_thrs`` (0 = IoU 0.5 for COCO thresholds).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(C,)`` precision (0 when a class has no detection above
        the threshold) and ``(C,)`` recall (``nan`` for classes without ground truth).
    """
    prec = np.zeros(match.num_classes)
    rec = np.full(match.num_classes, np.nan)
    for c in range(match.num_classes):
        sel = (match.scores[c] >= score_thr) & ~match.ignore[c][iou_index]
        ntp = int(np.sum(match.tp[c][iou_index] & sel))
        ndet = int(np.sum(sel))
        prec[c] = ntp / ndet if ndet else 0.0
        npos = match.npos[c].sum()
        if npos:
            rec[c] = ntp / npos
    return prec, rec


def nanmean(values: np.ndarray) -> float:
    """Mean over finite entries, ``nan`` if none (no warning)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float('nan')
