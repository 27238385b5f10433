"""How well a detector's anchors fit the lesion sizes: best anchor IoU for a box of a given size.

An anchor-based detector only learns a ground-truth box from the anchors its assigner makes
positive. mmdet's RPN (``MaxIoUAssigner``, ``min_pos_iou=0.3``) gives a box no positive anchor at
all when even its best-overlapping anchor stays below 0.3, so a class whose boxes are much smaller
than the smallest anchor is hardly learnt. :func:`best_anchor_iou` measures that overlap with
mmdet's own anchor generator, for a box centred on an anchor centre (the best case of the
placement).
"""
from typing import Dict, Mapping, Tuple

import torch


def best_anchor_iou(anchor_generator: Mapping, box_wh: Tuple[float, float]) -> float:
    """Highest IoU between a centred box of size ``box_wh`` and the generator's base anchors.

    Args:
        anchor_generator (Mapping): An mmdet anchor generator config, e.g.
            ``model.rpn_head.anchor_generator``.
        box_wh (tuple[float, float]): Box width and height in pixels of the network input.

    Returns:
        float: The best IoU over all levels, scales and ratios.
    """
    from mmdet.registry import TASK_UTILS
    from mmdet.structures.bbox import bbox_overlaps
    gen = TASK_UTILS.build(dict(anchor_generator))
    w, h = float(box_wh[0]), float(box_wh[1])
    box = torch.tensor([[-w / 2, -h / 2, w / 2, h / 2]])
    best = 0.0
    for base in gen.base_anchors:  # one tensor of (x1, y1, x2, y2) per level
        cx, cy = (base[:, 0] + base[:, 2]) / 2, (base[:, 1] + base[:, 3]) / 2
        centred = base - torch.stack([cx, cy, cx, cy], dim=1)  # onto the box centre
        best = max(best, float(bbox_overlaps(box, centred).max()))
    return best


def anchor_coverage(anchor_generator: Mapping, boxes_wh: Mapping[str, Tuple[float, float]],
                    scale: float) -> Dict[str, float]:
    """:func:`best_anchor_iou` for named box sizes given in original pixels.

    Args:
        anchor_generator (Mapping): An mmdet anchor generator config.
        boxes_wh (Mapping[str, tuple[float, float]]): Name -> (width, height) in original pixels,
            e.g. :data:`spinexr.datasets.phantom.statistics.MEDIAN_BOX_WH`.
        scale (float): Network input pixels per original pixel (e.g. 640 / 2874).

    Returns:
        dict[str, float]: Name -> best anchor IoU.
    """
    return {name: best_anchor_iou(anchor_generator, (w * scale, h * scale))
            for name, (w, h) in boxes_wh.items()}
