"""Data preprocessor with Ultralytics' input conventions for the YOLO11 adapter."""
from typing import Any, List, Optional

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

from spinexr.datasets.collate import YOLO_PAD_VALUE  # Ultralytics' letterbox grey


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
    from the final batch by :func:`~spinexr.models.detectors.yolo11_loss.pack_yolo_targets`, which
    the detector's loss calls, so they always match the tensor the network sees, also after
    batch-level resizing.

    Device transfers: the images go to the device in one non-blocking copy when the loader stacks
    them (:func:`~spinexr.datasets.collate.yolo_collate` with ``pin_memory=True``; a list of
    images, mmengine's default collation, still works and gives the same values). The data samples
    stay on the host: their ground truth is packed there for the loss in one vectorised pass and
    copied once, instead of moving every sample's boxes and labels separately (each a blocking
    copy from pageable memory).

    Args:
        pad_size_divisor (int): Size divisor of the padded batch. Defaults to 32.
        pad_value (float): Padding value in 0-255 pixel units. Defaults to 114.
        bgr_to_rgb (bool): Convert mmcv's BGR to RGB. Defaults to True.
        batch_augments (list[dict], optional): Batch-level augmentations (training only).
        non_blocking (bool): Copy the images to the device without blocking the host (effective
            with pinned memory). Defaults to True.
        **kwargs: Other arguments of :class:`mmdet.models.DetDataPreprocessor`; ``mean`` and
            ``std`` are not accepted (the scaling is fixed to /255).
    """

    def __init__(self,
                 pad_size_divisor: int = 32,
                 pad_value: float = YOLO_PAD_VALUE,
                 bgr_to_rgb: bool = True,
                 batch_augments: Optional[List[dict]] = None,
                 non_blocking: bool = True,
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
            non_blocking=non_blocking,
            **kwargs)

    def cast_data(self, data: Any) -> Any:
        """Move the batch's tensors to the device, leaving ``data_samples`` on the host."""
        if isinstance(data, dict) and 'data_samples' in data:
            out = {}
            for key, value in data.items():
                out[key] = value if key == 'data_samples' else super().cast_data(value)
            return out
        return super().cast_data(data)

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

