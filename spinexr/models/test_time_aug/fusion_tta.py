"""Merge a detector's predictions over test-time views with box fusion.

mmdet's :class:`~mmdet.models.DetTTAModel` pools the views' boxes and keeps the survivors of one
NMS. :class:`FusionTTAModel` keeps its view handling (boxes of a flipped view are flipped back in
the original image's frame; views without a flip step need no ``flip`` key) and merges the views with the fusion the detector ensemble uses
(:func:`spinexr.evaluation.box_fusion.fuse_image`): weighted boxes fusion by default (each view is
one "member"; a box found in fewer views keeps a lower score under ``conf_type='avg'``), or NMS /
Gaussian soft-NMS. The wrapped detector is any mmdet detector or the YOLO11 adapter: the wrapper
sees only ``pred_instances`` in original-image pixels.

Built by :func:`spinexr.models.test_time_aug.enable_tta` (``tools/test.py --tta``), which also
swaps the test pipeline for the views (:func:`~spinexr.models.test_time_aug.build_tta_pipeline`).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_flip
from mmengine.structures import InstanceData

from spinexr.evaluation.box_fusion import CONF_TYPES, METHODS, fuse_image


@MODELS.register_module()
class FusionTTAModel(DetTTAModel):
    """Test-time augmentation wrapper whose views are merged by box fusion.

    Args:
        module (dict | torch.nn.Module): The detector (its config or the built model).
        method (str): ``'wbf'`` (default), ``'nms'`` or ``'soft_nms'``.
        iou_thr (float): IoU above which boxes of one class are fused / suppressed.
            Defaults to 0.55.
        skip_box_thr (float): Boxes scored below this are ignored before fusing. Defaults to 0.
        conf_type (str): WBF's score rule (see :mod:`spinexr.evaluation.box_fusion`). Defaults
            to ``'avg'``.
        view_weights (Sequence[float], optional): One positive weight per view, in the order
            of the TTA pipeline's views; ``None`` weighs them equally.
        max_per_img (int): Boxes kept per image after fusion, best first. Defaults to 100.
        data_preprocessor (dict, optional): Passed to mmengine's ``BaseTTAModel``.
    """

    def __init__(self,
                 module,
                 method: str = 'wbf',
                 iou_thr: float = 0.55,
                 skip_box_thr: float = 0.0,
                 conf_type: str = 'avg',
                 view_weights: Optional[Sequence[float]] = None,
                 max_per_img: int = 100,
                 data_preprocessor: Optional[dict] = None) -> None:
        if method not in METHODS:
            raise ValueError(f'FusionTTAModel: method={method!r}, choose from {METHODS}')
        if conf_type not in CONF_TYPES:
            raise ValueError(f'FusionTTAModel: conf_type={conf_type!r}, choose from {CONF_TYPES}')
        if max_per_img < 1:
            raise ValueError(f'FusionTTAModel: max_per_img must be >= 1, got {max_per_img}')
        super().__init__(module=module, data_preprocessor=data_preprocessor,
                         tta_cfg=dict(max_per_img=max_per_img))
        self.fusion: Dict[str, object] = dict(method=method, iou_thr=float(iou_thr),
                                              skip_box_thr=float(skip_box_thr),
                                              conf_type=conf_type)
        self.view_weights = None if view_weights is None else [float(w) for w in view_weights]
        self.max_per_img = int(max_per_img)

    def _merge_single_sample(self, data_samples: List[DetDataSample]) -> DetDataSample:
        """Fuse the predictions of one image's views into one prediction.

        Args:
            data_samples (list[DetDataSample]): The views of one image, each with
                ``pred_instances`` in the original image's pixels (of the view's flipped frame
                when the view was flipped) and metainfo ``ori_shape``, ``flip``,
                ``flip_direction``.

        Returns:
            DetDataSample: The first view's sample carrying the fused ``pred_instances``.

        Raises:
            ValueError: When ``view_weights`` does not have one weight per view.
        """
        if self.view_weights is not None and len(self.view_weights) != len(data_samples):
            raise ValueError(f'FusionTTAModel: {len(self.view_weights)} view_weights for '
                             f'{len(data_samples)} views; give one per view of the TTA pipeline')
        ref = data_samples[0].pred_instances.bboxes
        members = []
        for sample in data_samples:
            pred = sample.pred_instances
            boxes = pred.bboxes.float()
            if sample.metainfo.get('flip', False):  # back to the original image's frame
                boxes = bbox_flip(boxes, img_shape=sample.metainfo['ori_shape'],
                                  direction=sample.metainfo['flip_direction'])
            members.append((boxes.detach().cpu().numpy(),
                            pred.scores.detach().float().cpu().numpy(),
                            pred.labels.detach().cpu().numpy()))
        height, width = data_samples[0].metainfo['ori_shape'][:2]
        boxes, scores, labels = fuse_image(members, width=float(width), height=float(height),
                                           weights=self.view_weights, **self.fusion)
        keep = slice(0, self.max_per_img)
        merged = InstanceData()
        merged.bboxes = torch.as_tensor(np.ascontiguousarray(boxes[keep]), dtype=torch.float32,
                                        device=ref.device).reshape(-1, 4)
        merged.scores = torch.as_tensor(scores[keep], dtype=torch.float32, device=ref.device)
        merged.labels = torch.as_tensor(labels[keep], dtype=torch.long, device=ref.device)
        result = data_samples[0]
        result.pred_instances = merged
        return result
