"""Pre-processing for :mod:`spinexr.apis.inference`: the test pipeline's resize/pad as a spec,
applied to decoded images in a batch, and the mapping of boxes between original and network pixels."""
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

#: Extensions read as DICOM.
DICOM_EXTS = ('.dcm', '.dicom')

@dataclass
class PreprocessSpec:
    """The geometric part of a test pipeline, applied on the device.

    Attributes:
        scale (tuple[int, int], optional): ``Resize.scale`` as ``(w, h)``.
        scale_factor (float | tuple, optional): ``Resize.scale_factor`` (when no ``scale``).
        keep_ratio (bool): ``Resize.keep_ratio`` (mmcv's ``rescale_size`` semantics).
        interpolation (str): ``Resize.interpolation`` (``'bilinear'`` default).
        grey (bool): ``LoadImageFromFile(color_type='grayscale')``: one channel.
        pad_size (tuple[int, int], optional): ``Pad.size`` ``(w, h)`` (bottom/right padding).
        pad_size_divisor (int, optional): ``Pad.size_divisor``.
        pad_to_square (bool): ``Pad.pad_to_square``.
        pad_val (float): Image padding value of ``Pad``.
    """
    scale: Optional[Tuple[int, int]] = None
    scale_factor: Any = None
    keep_ratio: bool = False
    interpolation: str = 'bilinear'
    grey: bool = False
    pad_size: Optional[Tuple[int, int]] = None
    pad_size_divisor: Optional[int] = None
    pad_to_square: bool = False
    pad_val: float = 0.0

    @classmethod
    def from_pipeline(cls, pipeline: Sequence[dict]) -> 'PreprocessSpec':
        """Read a test pipeline; transforms that change geometry other than ``Resize`` / ``Pad``
        raise ``ValueError`` (the inference path could not reproduce them)."""
        spec = cls()
        for t in pipeline:
            name = str(t.get('type', '')).split('.')[-1]
            if name in ('LoadImageFromFile', 'LoadImageFromNDArray'):
                spec.grey = t.get('color_type', 'color') in ('grayscale', 'unchanged_grey')
            elif name == 'Resize':
                scale = t.get('scale')
                spec.scale = (int(scale), int(scale)) if isinstance(scale, (int, float)) else (
                    tuple(int(s) for s in scale) if scale is not None else None)
                spec.scale_factor = t.get('scale_factor')
                spec.keep_ratio = bool(t.get('keep_ratio', False))
                spec.interpolation = t.get('interpolation', 'bilinear')
                if spec.interpolation not in ('nearest', 'bilinear', 'bicubic', 'area'):
                    raise ValueError(f'Resize interpolation {spec.interpolation!r} is not '
                                     'supported (nearest, bilinear, bicubic, area)')
            elif name == 'Pad':
                size = t.get('size')
                spec.pad_size = tuple(int(s) for s in size) if size is not None else None
                spec.pad_size_divisor = t.get('size_divisor')
                spec.pad_to_square = bool(t.get('pad_to_square', False))
                val = t.get('pad_val', 0)
                val = val.get('img', 0) if isinstance(val, dict) else val
                spec.pad_val = float(val[0] if isinstance(val, (list, tuple)) else val)
            elif name in ('LoadAnnotations', 'PackDetInputs', 'PackInputs'):
                pass  # no geometry at test time
            else:
                raise ValueError(f'test pipeline transform {name!r} is not supported by the '
                                 'batched inference path (supported: LoadImageFromFile, Resize, '
                                 'Pad, LoadAnnotations, PackDetInputs/PackInputs)')
        return spec

    def target_size(self, orig_hw: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` after ``Resize``, computed from the ORIGINAL size as mmdet/mmcv do."""
        from mmcv.image.geometric import _scale_size, rescale_size
        h, w = orig_hw
        if self.scale is not None:
            scale = self.scale
        elif self.scale_factor is not None:
            scale = _scale_size((w, h), self.scale_factor)
        else:
            return h, w
        if self.keep_ratio:
            new_w, new_h = rescale_size((w, h), tuple(scale))
        else:
            new_w, new_h = scale
        return int(new_h), int(new_w)

    def padded_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` after ``Pad`` (bottom/right), or ``hw`` without one."""
        h, w = hw
        if self.pad_to_square:
            h = w = max(h, w)
        if self.pad_size is not None:
            w, h = max(w, self.pad_size[0]), max(h, self.pad_size[1])
        if self.pad_size_divisor:
            d = int(self.pad_size_divisor)
            h, w = -(-h // d) * d, -(-w // d) * d
        return h, w


def interpolation_for(path: str, src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                      spec: PreprocessSpec, resize_mode: str = 'auto') -> str:
    """Interpolation for one image (see ``resize_mode`` of
    :func:`spinexr.apis.inference_batch.preprocess_batch`)."""
    if resize_mode == 'auto':
        shrink = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
        if shrink and osp.splitext(path)[1].lower() in DICOM_EXTS:
            return 'area'
        return spec.interpolation
    return spec.interpolation if resize_mode == 'pipeline' else resize_mode


def boxes_to_network(bboxes: np.ndarray, meta: Dict[str, Any]) -> np.ndarray:
    """Forward map of :meth:`UltralyticsDetector.to_original` / mmdet's rescale: original -> network
    pixels (used to test the round trip)."""
    out = np.asarray(bboxes, dtype=np.float64).copy()
    out[:, 0::2] *= meta['scale_factor'][0]
    out[:, 1::2] *= meta['scale_factor'][1]
    return out



#: ``forward`` methods whose tensor path :class:`PixelMap` reproduces, by class name.
_MAPPED_FORWARDS = ('ImgDataPreprocessor', 'DetDataPreprocessor', 'YOLODetDataPreprocessor')


@dataclass
class PixelMap:
    """What a model's image data preprocessor does to the pixels of a stacked batch, applied by
    :func:`~spinexr.apis.inference_batch.preprocess_batch` while it writes the batch, so the
    network input is made in one pass (no channel-reordered, padded, scaled and re-laid-out
    copies of the float batch one after another).

    It reproduces, operation for operation (bit for bit, tested), the tensor path of mmengine's
    ``ImgDataPreprocessor``, mmdet's ``DetDataPreprocessor`` (at test time: no batch
    augments; it only adds ``batch_input_shape`` / ``pad_shape`` to the samples) and
    ``YOLODetDataPreprocessor`` (the former, then ``/ 255``): BGR -> RGB, float,
    ``(x - mean) / std``, padding with ``pad_value`` to a multiple of ``pad_size_divisor``,
    then the final division. :meth:`of` returns None for any other preprocessor (including a
    subclass that overrides ``forward``), which then runs itself on the batch.

    Attributes:
        flip (bool): Reverse the channel order of a 3-channel batch (``bgr_to_rgb``).
        mean (Tensor, optional): The preprocessor's ``mean`` buffer (normalisation on).
        std (Tensor, optional): Its ``std`` buffer.
        divide (float, optional): Final division (255 for ``YOLODetDataPreprocessor``).
        fill (float): Value of the padding in network units (float32 exact).
        divisor (int): ``pad_size_divisor``.
    """
    flip: bool = False
    mean: Any = None
    std: Any = None
    divide: Optional[float] = None
    fill: float = 0.0
    divisor: int = 1

    @classmethod
    def of(cls, preprocessor: Any) -> Optional['PixelMap']:
        """The map of ``preprocessor``, or None when its ``forward`` is not one reproduced."""
        forward = getattr(type(preprocessor), 'forward', None)
        owner = getattr(forward, '__qualname__', '').split('.')[0]
        if owner not in _MAPPED_FORWARDS or not _is_known_forward(forward, owner):
            return None
        divide = 255.0 if owner == 'YOLODetDataPreprocessor' else None
        pad = np.float32(getattr(preprocessor, 'pad_value', 0) or 0)
        fill = float(pad / np.float32(divide)) if divide else float(pad)  # as F.pad, then / 255
        normalize = bool(getattr(preprocessor, '_enable_normalize', False))
        return cls(flip=bool(getattr(preprocessor, '_channel_conversion', False)),
                   mean=preprocessor.mean if normalize else None,
                   std=preprocessor.std if normalize else None, divide=divide, fill=fill,
                   divisor=int(getattr(preprocessor, 'pad_size_divisor', 1) or 1))

    def apply(self, x: Any) -> Any:
        """Float ``(n, C, h, w)`` pixels (0..255, the decoded channel order) -> network units,
        by the preprocessor's own operations in its order."""
        if self.flip and x.shape[1] == 3:
            x = x.flip(1)  # == x[:, [2, 1, 0]]
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.divide is not None:
            x = x / self.divide
        return x


def _is_known_forward(forward: Any, owner: str) -> bool:
    """``forward`` is the very function of mmengine / mmdet / spinexr named ``owner``."""
    if owner == 'ImgDataPreprocessor':
        from mmengine.model import ImgDataPreprocessor as known
    elif owner == 'DetDataPreprocessor':
        from mmdet.models.data_preprocessors import DetDataPreprocessor as known
    else:
        from spinexr.models.data_preprocessors.yolo import YOLODetDataPreprocessor as known
    return forward is known.forward
