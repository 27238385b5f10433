"""Load a DICOM file straight into an MMDetection / MMPretrain pipeline."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from spinexr.io.dicom import load_dicom


@TRANSFORMS.register_module()
class LoadDicomFromFile(BaseTransform):
    """Load a DICOM radiograph as the display image a viewer shows (see :mod:`spinexr.io.dicom`).

    A drop-in replacement for mmcv's ``LoadImageFromFile`` for users who skip the PNG conversion:
    modality LUT, VOI LUT / window (never a fixed CT window), ``MONOCHROME1`` inversion, 8-16 bit
    depths, every transfer syntax pydicom can decode. Row 0 is the top of the stored image; no flip.
    With ``min_long_side=None`` (default) the image has the full DICOM size, so boxes in original
    DICOM pixels (the CSV's coordinates) match it.

    Registered in MMDetection's ``TRANSFORMS`` and in MMPretrain's (both are required by spinexr).

    Required Keys:

    - img_path

    Modified Keys:

    - img
    - img_shape
    - ori_shape

    Added Keys:

    - dicom_orig_shape: ``(Rows, Columns)`` of the stored image.
    - dicom_voi_source: which VOI transform was applied (``'window'``, ``'lut'``, ...).

    Args:
        to_float32 (bool): Return ``float32`` with values in ``[0, 255]`` (like mmcv's
            ``to_float32``) instead of ``uint8``.
        color_type (str): ``'color'`` -> ``(H, W, 3)`` (grey replicated; what ImageNet-style
            backbones expect), ``'grayscale'`` -> ``(H, W)``, ``'unchanged'`` -> ``(H, W)``.
        min_long_side (int, optional): Allow a reduced-resolution JPEG 2000 decode whose longer
            side stays ``>= min_long_side`` (faster; only with a resize right after and boxes
            already scaled to the image, e.g. classification). None: full resolution.
        fallback (str): Window used when the file has neither a VOI LUT nor a window:
            ``'minmax'`` or ``'percentile'``.
        ignore_empty (bool): Return None instead of raising when the file is missing.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 min_long_side: Optional[int] = None,
                 fallback: str = 'minmax',
                 ignore_empty: bool = False) -> None:
        if color_type not in ('color', 'grayscale', 'unchanged'):
            raise ValueError(f"color_type must be 'color', 'grayscale' or 'unchanged', "
                             f'got {color_type!r}')
        self.to_float32 = to_float32
        self.color_type = color_type
        self.min_long_side = min_long_side
        self.fallback = fallback
        self.ignore_empty = ignore_empty

    def transform(self, results: dict) -> Optional[dict]:
        """Load the DICOM at ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict | None: The results with the image, or None for a missing file when
            ``ignore_empty``.
        """
        filename = results['img_path']
        try:
            dimg = load_dicom(filename, out_dtype='uint8', min_long_side=self.min_long_side,
                              fallback=self.fallback)
        except Exception:
            if self.ignore_empty:
                return None
            raise
        img = dimg.image
        if self.color_type == 'color':
            img = np.repeat(img[..., None], 3, axis=2)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['dicom_orig_shape'] = dimg.orig_shape
        results['dicom_voi_source'] = dimg.voi_source
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', min_long_side={self.min_long_side}, "
                f"fallback='{self.fallback}', ignore_empty={self.ignore_empty})")


def _register_mmpretrain() -> None:
    """Also register into MMPretrain's TRANSFORMS so mmpretrain pipelines resolve the name."""
    from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
    if 'LoadDicomFromFile' not in PRETRAIN_TRANSFORMS.module_dict:
        PRETRAIN_TRANSFORMS.register_module(module=LoadDicomFromFile)


_register_mmpretrain()
