"""Fusing the boxes of several detectors on one image (weighted boxes fusion, NMS, soft-NMS).

A thin, tested layer over the maintained ``ensemble-boxes`` package (Solovyev et al., "Weighted
boxes fusion: ensembling boxes from different object detection models", 2021), which expects
boxes normalised to ``[0, 1]``. Here boxes stay in the image's pixels (``x1, y1, x2, y2``) on both
sides: :func:`normalise_boxes` divides by the image's width and height, :func:`denormalise_boxes`
maps the fused boxes back. Class labels are kept (boxes of different classes never merge).

The three methods (``method``):

* ``'wbf'``: boxes of one class overlapping with IoU > ``iou_thr`` form a cluster; the fused box
  is the mean of the cluster's boxes weighted by ``score * member weight``. With ``conf_type='avg'``
  its score is ``sum(score_i * w_i) / sum(w)`` over the members (a member that has no box in the
  cluster counts as 0, so a box found by one member alone of two equal members keeps half its
  score). Other ``conf_type`` values: those of ``ensemble_boxes.weighted_boxes_fusion``.
* ``'nms'``: all members' boxes pooled (each score multiplied by ``w_i / max(w)``, so equal weights
  keep the scores), per-class NMS keeps the best box of each overlapping group.
* ``'soft_nms'``: as ``'nms'`` but overlapping boxes have their scores decayed (Gaussian,
  ``score * exp(-IoU^2 / sigma)``) instead of being removed; boxes whose decayed score falls below
  ``soft_nms_thr`` are dropped. This one runs mmcv's ``soft_nms`` op per class
  (``mmcv.ops.batched_nms``): ``ensemble_boxes.soft_nms`` 1.0.9 returns the kept boxes with their
  *original* scores (the decayed ones only decide which are dropped), which is not soft-NMS.

``ensemble_boxes`` (and the numba it pulls in, slow to import) is imported only when a function
needs it.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Fusion methods.
METHODS = ('wbf', 'nms', 'soft_nms')
#: ``conf_type`` values of ``ensemble_boxes.weighted_boxes_fusion`` 1.0.9.
CONF_TYPES = ('avg', 'max', 'box_and_model_avg', 'absent_model_aware_avg')

#: One member's detections on one image: ``(bboxes (n, 4) xyxy pixels, scores (n,), labels (n,))``.
Dets = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _ensemble_boxes():
    """Import ``ensemble_boxes`` lazily, with an error naming the package when it is missing."""
    try:
        import ensemble_boxes
    except ImportError as err:  # pragma: no cover - the package is a runtime requirement
        raise ImportError('box fusion needs the "ensemble-boxes" package '
                          '(pip install ensemble-boxes==1.0.9, see requirements/runtime.txt)'
                          ) from err
    return ensemble_boxes


def normalise_boxes(bboxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel ``x1, y1, x2, y2`` boxes -> fractions of the image, clipped to ``[0, 1]``.

    Args:
        bboxes (np.ndarray): ``(n, 4)`` boxes in pixels.
        width (float): Image width in pixels (x axis).
        height (float): Image height in pixels (y axis).

    Returns:
        np.ndarray: ``(n, 4)`` float64 boxes in ``[0, 1]``.

    Raises:
        ValueError: If the width or height is not positive.
    """
    if not (width > 0 and height > 0):
        raise ValueError(f'image size must be positive, got width={width}, height={height}')
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(np.asarray(bboxes, dtype=np.float64).reshape(-1, 4) / scale, 0.0, 1.0)


def denormalise_boxes(bboxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalise_boxes`: fractions -> pixel ``x1, y1, x2, y2`` (float64)."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.asarray(bboxes, dtype=np.float64).reshape(-1, 4) * scale


def fuse_image(members: Sequence[Dets],
               width: float,
               height: float,
               method: str = 'wbf',
               weights: Optional[Sequence[float]] = None,
               iou_thr: float = 0.55,
               skip_box_thr: float = 0.0,
               conf_type: str = 'avg',
               sigma: float = 0.5,
               soft_nms_thr: float = 1e-3) -> Dets:
    """Fuse the detections of several members on one image.

    Args:
        members (Sequence[Dets]): Per member ``(bboxes, scores, labels)``, boxes in pixels.
        width (float): Image width in pixels.
        height (float): Image height in pixels.
        method (str): One of :data:`METHODS`.
        weights (Sequence[float], optional): One positive weight per member (``None``: equal).
        iou_thr (float): IoU above which boxes of one class are clustered / suppressed.
        skip_box_thr (float): Boxes with a score below this are ignored before fusing (so are
            boxes without area once clipped to the image).
        conf_type (str): WBF score rule, one of :data:`CONF_TYPES` (see the module docstring).
        sigma (float): Gaussian soft-NMS decay.
        soft_nms_thr (float): Soft-NMS drops boxes whose decayed score falls below this.

    Returns:
        Dets: Fused ``(bboxes (m, 4) pixels float64, scores (m,) float64, labels (m,) int64)``,
        sorted by descending score.

    Raises:
        ValueError: On an unknown method or ``conf_type``, or a weight count that does not match.
    """
    if method not in METHODS:
        raise ValueError(f'method={method!r}: choose from {METHODS}')
    if conf_type not in CONF_TYPES:
        raise ValueError(f'conf_type={conf_type!r}: choose from {CONF_TYPES}')
    n = len(members)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or (w <= 0).any():
        raise ValueError(f'need {n} positive weights (one per member), got {list(w)}')
    boxes_l: List[np.ndarray] = []
    scores_l: List[np.ndarray] = []
    labels_l: List[np.ndarray] = []
    for b, s, lab in members:
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        nb = normalise_boxes(b, width, height)
        # boxes of no area inside the image are dropped here (ensemble_boxes would print a
        # warning for each)
        keep = (s >= skip_box_thr) & (nb[:, 2] > nb[:, 0]) & (nb[:, 3] > nb[:, 1])
        boxes_l.append(nb[keep])
        scores_l.append(s[keep])
        labels_l.append(np.asarray(lab, dtype=np.int64).reshape(-1)[keep])
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    if sum(len(s) for s in scores_l) == 0:
        return empty
    if method == 'wbf':
        eb = _ensemble_boxes()
        boxes, scores, labels = eb.weighted_boxes_fusion(
            boxes_l, scores_l, labels_l, weights=list(w), iou_thr=iou_thr,
            skip_box_thr=skip_box_thr, conf_type=conf_type)
    elif method == 'nms':
        eb = _ensemble_boxes()
        # ensemble_boxes' nms skips members without boxes badly; pass only non-empty ones
        idx = [i for i, s in enumerate(scores_l) if len(s)]
        boxes, scores, labels = eb.nms([boxes_l[i] for i in idx], [scores_l[i] for i in idx],
                                       [labels_l[i] for i in idx], weights=list(w[idx]),
                                       iou_thr=iou_thr)
        # ensemble_boxes scales scores by w_i / sum(w); rescale to w_i / max(w)
        scores = np.asarray(scores, dtype=np.float64) * (w[idx].sum() / w[idx].max())
    else:
        boxes, scores, labels = _soft_nms(boxes_l, scores_l, labels_l, w / w.max(), iou_thr,
                                          sigma, soft_nms_thr)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        return empty
    order = np.argsort(-scores, kind='stable')
    return (denormalise_boxes(boxes, width, height)[order], scores[order],
            np.asarray(labels).astype(np.int64).reshape(-1)[order])


def _soft_nms(boxes_l: Sequence[np.ndarray], scores_l: Sequence[np.ndarray],
              labels_l: Sequence[np.ndarray], w: np.ndarray, iou_thr: float, sigma: float,
              min_score: float) -> Dets:
    """Gaussian soft-NMS per class of the pooled, weight-scaled boxes (normalised coordinates)."""
    import torch
    from mmcv.ops import batched_nms
    boxes = np.concatenate([np.asarray(b).reshape(-1, 4) for b in boxes_l])
    scores = np.concatenate([s * wi for s, wi in zip(scores_l, w)])
    labels = np.concatenate(labels_l)
    dets, keep = batched_nms(
        torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(),
        torch.from_numpy(labels), dict(type='soft_nms', iou_threshold=iou_thr, sigma=sigma,
                                       min_score=min_score, method='gaussian'))
    return (dets[:, :4].double().numpy(), dets[:, 4].double().numpy(),
            labels[keep.numpy()])


def concat_nms_reference(members: Sequence[Dets], iou_thr: float = 0.5) -> Dets:
    """Pool all members' boxes and run per-class NMS with NumPy (the benchmark's baseline).

    Args:
        members (Sequence[Dets]): Per member ``(bboxes, scores, labels)``.
        iou_thr (float): Suppression IoU.

    Returns:
        Dets: Kept boxes, scores and labels, by descending score.
    """
    boxes = np.concatenate([np.asarray(m[0], dtype=np.float64).reshape(-1, 4) for m in members])
    scores = np.concatenate([np.asarray(m[1], dtype=np.float64).reshape(-1) for m in members])
    labels = np.concatenate([np.asarray(m[2], dtype=np.int64).reshape(-1) for m in members])
    keep_all = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(-scores[idx], kind='stable')]
        b = boxes[idx]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        alive = np.ones(len(idx), dtype=bool)
        for i in range(len(idx)):
            if not alive[i]:
                continue
            keep_all.append(idx[i])
            rest = np.flatnonzero(alive[i + 1:]) + i + 1
            if len(rest) == 0:
                break
            iw = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
            ih = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
            inter = iw * ih
            iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
            alive[rest[iou > iou_thr]] = False
    keep = np.asarray(keep_all, dtype=np.int64)
    order = keep[np.argsort(-scores[keep], kind='stable')] if len(keep) else keep
    return boxes[order], scores[order], labels[order]
