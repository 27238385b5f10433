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
    """Forward map of :meth:`YOLO11Detector.to_original` / mmdet's rescale: original -> network
    pixels (used to test the round trip)."""
    out = np.asarray(bboxes, dtype=np.float64).copy()
    out[:, 0::2] *= meta['scale_factor'][0]
    out[:, 1::2] *= meta['scale_factor'][1]
    return out

