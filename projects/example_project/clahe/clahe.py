"""An example of a user's own component living outside the spinexr package.

Contrast-limited adaptive histogram equalisation (CLAHE) is a common pre-processing step for
radiographs. Registering it into MMDetection's ``TRANSFORMS`` registry makes ``dict(type='CLAHE')``
usable in any pipeline once the module is listed in ``custom_imports``.
"""
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CLAHE(BaseTransform):
    """Apply CLAHE to a grey or colour image (each channel equalised the same way).

    Required Keys:
        - img (np.ndarray): uint8 image, HxW or HxWxC.

    Modified Keys:
        - img

    Args:
        clip_limit (float): Contrast limit of each tile.
        tile_grid_size (tuple[int, int]): Number of tiles along (x, y).
    """

    def __init__(self, clip_limit: float = 2.0,
                 tile_grid_size: Tuple[int, int] = (8, 8)) -> None:
        if clip_limit <= 0:
            raise ValueError(f'clip_limit must be > 0, got {clip_limit}')
        self.clip_limit = clip_limit
        self.tile_grid_size = tuple(tile_grid_size)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(f'CLAHE expects a uint8 image, got {img.dtype}')
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=self.tile_grid_size)
        if img.ndim == 2:
            results['img'] = clahe.apply(img)
        else:
            results['img'] = np.stack([clahe.apply(img[..., c]) for c in range(img.shape[2])],
                                      axis=-1)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_limit={self.clip_limit}, '
                f'tile_grid_size={self.tile_grid_size})')
