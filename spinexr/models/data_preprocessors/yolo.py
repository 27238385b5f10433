"""Data preprocessor with Ultralytics' input conventions for the YOLO11 adapter."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from torch import Tensor

#: Ultralytics' letterbox grey.
YOLO_PAD_VALUE = 114


@MODELS.register_module()
class YOLODetDataPreprocessor(DetDataPreprocessor):
    """Batch images the way Ultralytics feeds YOLO models.

    * BGR (mmcv's loading order) -> RGB, values scaled to [0, 1] by /255 (no mean/std);
    * the batch is padded at the bottom/right with the letterbox grey 114 to a size divisible by 32
      (the largest YOLO stride);
    * optional ``batch_augments`` (e.g. mmdet's ``BatchSyncRandomResize`` for multi-scale training)
      run on the padded 0-255 batch before scaling.

    Padding is done before the /255 scaling, so ``pad_value`` is in pixel units as in Ultralytics'
    ``letterbox``. The loss targets (``batch_idx``, ``cls``, normalised ``xywh`` ``bboxes``) are made
    from the final batch by :func:`pack_yolo_targets`, which the detector calls, so they always match
    the tensor the network sees, also after batch-level resizing.

    Args:
        pad_size_divisor (int): Size divisor of the padded batch. Defaults to 32.
        pad_value (float): Padding value in 0-255 pixel units. Defaults to 114.
        bgr_to_rgb (bool): Convert mmcv's BGR to RGB. Defaults to True.
        batch_augments (list[dict], optional): Batch-level augmentations (training only).
        **kwargs: Other arguments of :class:`mmdet.models.DetDataPreprocessor`; ``mean`` and
            ``std`` are not accepted (the scaling is fixed to /255).
    """

    def __init__(self,
                 pad_size_divisor: int = 32,
                 pad_value: float = YOLO_PAD_VALUE,
                 bgr_to_rgb: bool = True,
                 batch_augments: Optional[List[dict]] = None,
                 **kwargs) -> None:
        if kwargs.get('mean') is not None or kwargs.get('std') is not None:
            raise ValueError('YOLODetDataPreprocessor scales images by 1/255; do not pass mean/std')
        kwargs.pop('mean', None)
        kwargs.pop('std', None)
        super().__init__(
            mean=None,
            std=None,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            bgr_to_rgb=bgr_to_rgb,
            batch_augments=batch_augments,
            **kwargs)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack, pad (114), convert to RGB, run batch augments, scale by 1/255.

        Args:
            data (dict): Data from the dataloader (``inputs``, ``data_samples``).
            training (bool): Whether batch augmentations run.

        Returns:
            dict: ``inputs`` (float tensor N x 3 x H x W in [0, 1]) and ``data_samples``.
        """
        data = super().forward(data=data, training=training)
        data['inputs'] = data['inputs'] / 255.0
        return data


def pack_yolo_targets(data_samples: Sequence[DetDataSample],
                      input_shape: Tuple[int, int],
                      device: Optional[torch.device] = None) -> Dict[str, Tensor]:
    """Convert mmdet ground truth into the batch dict of Ultralytics' detection loss.

    Args:
        data_samples (Sequence[DetDataSample]): Samples with ``gt_instances.bboxes`` (xyxy pixels of
            the batch tensor) and ``gt_instances.labels`` (0-based).
        input_shape (tuple[int, int]): ``(H, W)`` of the padded batch tensor.
        device (torch.device, optional): Device of the returned tensors.

    Returns:
        dict[str, Tensor]: ``batch_idx`` (N,), ``cls`` (N, 1) and ``bboxes`` (N, 4) as xywh
        (centre) normalised by the batch width/height, as Ultralytics' ``v8DetectionLoss`` expects.
    """
    h, w = input_shape
    idx, cls, boxes = [], [], []
    for i, sample in enumerate(data_samples):
        gt = sample.gt_instances
        bboxes = gt.bboxes
        if hasattr(bboxes, 'tensor'):  # mmdet HorizontalBoxes
            bboxes = bboxes.tensor
        bboxes = bboxes.float().reshape(-1, 4)
        if device is not None:
            bboxes = bboxes.to(device)
        x1 = bboxes[:, 0].clamp(0, w)
        y1 = bboxes[:, 1].clamp(0, h)
        x2 = bboxes[:, 2].clamp(0, w)
        y2 = bboxes[:, 3].clamp(0, h)
        keep = (x2 - x1 > 0) & (y2 - y1 > 0)
        xywh = torch.stack(((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h), 1)
        labels = gt.labels.reshape(-1).to(xywh.device)
        boxes.append(xywh[keep])
        cls.append(labels[keep].float())
        idx.append(torch.full((int(keep.sum()), ), float(i), device=xywh.device))
    dev = device if device is not None else torch.device('cpu')
    return dict(
        batch_idx=torch.cat(idx) if idx else torch.zeros(0, device=dev),
        cls=(torch.cat(cls) if cls else torch.zeros(0, device=dev)).view(-1, 1),
        bboxes=torch.cat(boxes) if boxes else torch.zeros(0, 4, device=dev))
