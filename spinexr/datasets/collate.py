"""Batch collation for the YOLO11 adapter: one padded uint8 tensor per batch, made in the worker.

mmengine's default ``pseudo_collate`` hands the data preprocessor a list of images, which it then
copies to the device one by one (a host-to-device copy per image, each blocking when the memory is
not pinned) and pads there. Ultralytics' loader stacks the batch in the worker and the trainer
copies it once. :func:`yolo_collate` does the same for mmdet samples: the images (C x H x W uint8
from ``PackDetInputs``) are padded at the bottom/right with the letterbox grey to the batch's
largest size rounded up to the size divisor and stacked, so the preprocessor receives one
``N x C x H x W`` uint8 tensor (pinned by the DataLoader with ``pin_memory=True``) and copies it with
a single, non-blocking transfer. The values equal those of the list path
(:class:`~spinexr.models.data_preprocessors.YOLODetDataPreprocessor` pads with the same value to the
same size), so training and evaluation do not change.
"""
from typing import Any, Dict, Sequence

import torch
from mmengine.registry import FUNCTIONS

#: Ultralytics' letterbox grey: the padding of yolo_collate and of YOLODetDataPreprocessor.
YOLO_PAD_VALUE = 114


@FUNCTIONS.register_module()
def yolo_collate(data_batch: Sequence[Dict[str, Any]],
                 pad_size_divisor: int = 32,
                 pad_value: int = YOLO_PAD_VALUE) -> Dict[str, Any]:
    """Stack a batch of packed mmdet samples into one padded uint8 tensor.

    Use it as ``train_dataloader = dict(collate_fn=dict(type='yolo_collate'), pin_memory=True)``.

    Args:
        data_batch (Sequence[dict]): Samples of ``PackDetInputs``: ``inputs`` (C x H x W tensor)
            and ``data_samples`` (``DetDataSample``).
        pad_size_divisor (int): The stacked size is a multiple of it. Defaults to 32.
        pad_value (int): Padding value (pixel units). Defaults to 114, Ultralytics' grey.

    Returns:
        dict: ``inputs`` (N x C x H x W tensor of the samples' dtype) and ``data_samples`` (list).

    Raises:
        ValueError: The batch is empty, a sample has no ``inputs`` tensor, or the samples differ
            in channels or dtype (the message names the sample's position and image path).
    """
    if not data_batch:
        raise ValueError('yolo_collate got an empty batch')
    images = []
    for i, sample in enumerate(data_batch):
        img = sample.get('inputs') if isinstance(sample, dict) else None
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            raise ValueError(f'yolo_collate: sample {i} ({_path(sample)}) has no C x H x W '
                             f'"inputs" tensor (got {type(img).__name__}); use PackDetInputs')
        if images and (img.shape[0] != images[0].shape[0] or img.dtype != images[0].dtype):
            raise ValueError(
                f'yolo_collate: sample {i} ({_path(sample)}) has {img.shape[0]} channels of '
                f'{img.dtype}, sample 0 has {images[0].shape[0]} of {images[0].dtype}')
        images.append(img)
    height = max(img.shape[1] for img in images)
    width = max(img.shape[2] for img in images)
    height = -(-height // pad_size_divisor) * pad_size_divisor
    width = -(-width // pad_size_divisor) * pad_size_divisor
    batch = images[0].new_full((len(images), images[0].shape[0], height, width), pad_value)
    for i, img in enumerate(images):
        batch[i, :, :img.shape[1], :img.shape[2]] = img
    return dict(inputs=batch, data_samples=[sample.get('data_samples') for sample in data_batch])


def _path(sample: Any) -> str:
    data_sample = sample.get('data_samples') if isinstance(sample, dict) else None
    return str(getattr(data_sample, 'img_path', None) or 'no img_path')
