"""Pre-processing for :mod:`spinexr.apis.inference`: the test pipeline's resize/pad as a spec,
applied to decoded images in a batch, and the mapping of boxes between original and network pixels."""
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

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


def resize_on_device(img: torch.Tensor, size: Tuple[int, int], mode: str = 'bilinear'
                     ) -> torch.Tensor:
    """Resize a ``(C, h, w)`` image to ``size = (H, W)``; returns rounded float values in 0..255.

    ``'bilinear'`` (and ``'bicubic'``) use half-pixel centres without antialiasing, as OpenCV's
    ``INTER_LINEAR`` (mmcv's default) does; ``'area'`` averages (OpenCV's ``INTER_AREA`` for
    integer factors; the converter shrinks DICOMs with it). ``'nearest'`` is supported too.
    """
    x = img.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = x[None]
        if mode in ('bilinear', 'bicubic'):
            x = F.interpolate(x, size=size, mode=mode, align_corners=False)
        elif mode in ('area', 'nearest'):
            x = F.interpolate(x, size=size, mode=mode)
        else:
            raise ValueError(f'unsupported interpolation {mode!r}')
        x = x[0].round_().clamp_(0, 255)
    return x


#: OpenCV flags of mmcv's interpolation names.
_CV2_INTERP = dict(nearest=0, bilinear=1, bicubic=2, area=3)


def interpolation_for(path: str, src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                      spec: PreprocessSpec, resize_mode: str = 'auto') -> str:
    """Interpolation for one image (see ``resize_mode`` of :func:`prepare_images`)."""
    if resize_mode == 'auto':
        shrink = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
        if shrink and osp.splitext(path)[1].lower() in DICOM_EXTS:
            return 'area'
        return spec.interpolation
    return spec.interpolation if resize_mode == 'pipeline' else resize_mode


def to_chw(img: torch.Tensor, grey: bool) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, 3)`` -> ``(1 or 3, H, W)`` without copying where possible."""
    if img.ndim == 2:
        return img[None]
    x = img.permute(2, 0, 1)
    if grey:  # luminance as OpenCV's BGR2GRAY
        w = torch.tensor([0.114, 0.587, 0.299], device=x.device).view(3, 1, 1)
        x = (x.float() * w).sum(0, keepdim=True).round()
    return x


def prepare_images(items: Sequence[Dict[str, Any]], spec: PreprocessSpec, device: torch.device,
                   resize_mode: str = 'auto') -> Tuple[List[torch.Tensor], List[Dict[str, Any]]]:
    """Resize (and pad) decoded images on ``device`` as the test pipeline would.

    Args:
        items (Sequence[dict]): Records of :class:`ImageFileDataset` without errors.
        spec (PreprocessSpec): The test pipeline's geometry.
        device (torch.device): Where the tensors go.
        resize_mode (str): ``'auto'``: the pipeline's interpolation for files already at or below
            the target size and for PNG/JPEG inputs, ``'area'`` when a DICOM is shrunk (as the
            dataset converter does); or force ``'bilinear'`` / ``'area'``.

    Returns:
        tuple: ``(inputs, metainfos)``: ``(C, H, W)`` float tensors (0..255, channels as
        ``LoadImageFromFile`` gives them: BGR or 3 x grey, or one grey channel) and per-image
        ``ori_shape``, ``img_shape``, ``scale_factor`` (w, h; original -> network pixels).
    """
    inputs, metas = [], []
    for it in items:
        img = it['image'].to(device, non_blocking=True)
        x = to_chw(img, spec.grey)
        orig_h, orig_w = it['orig_shape']
        new_h, new_w = spec.target_size((orig_h, orig_w))
        mode = interpolation_for(it['path'], tuple(x.shape[-2:]), (new_h, new_w), spec,
                                 resize_mode)
        x = resize_on_device(x, (new_h, new_w), mode)  # no-op if the worker resized
        pad_h, pad_w = spec.padded_size((new_h, new_w))
        if (pad_h, pad_w) != (new_h, new_w):
            x = F.pad(x, (0, pad_w - new_w, 0, pad_h - new_h), value=spec.pad_val)
        if x.shape[0] == 1 and not spec.grey:
            x = x.expand(3, -1, -1)
        inputs.append(x)
        metas.append(dict(img_id=it['index'], img_path=it['path'], ori_shape=(orig_h, orig_w),
                          img_shape=(new_h, new_w),
                          scale_factor=(new_w / orig_w, new_h / orig_h)))
    return inputs, metas


def boxes_to_network(bboxes: np.ndarray, meta: Dict[str, Any]) -> np.ndarray:
    """Forward map of :meth:`YOLO11Detector.to_original` / mmdet's rescale: original -> network
    pixels (used to test the round trip)."""
    out = np.asarray(bboxes, dtype=np.float64).copy()
    out[:, 0::2] *= meta['scale_factor'][0]
    out[:, 1::2] *= meta['scale_factor'][1]
    return out


# ----------------------------------------------------------------------------- models
