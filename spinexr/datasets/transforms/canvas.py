"""Fit an image into the mosaic canvas, in no time when it already is one.

Why this exists: mmdet's ``CachedMosaic`` returns its first samples (until its cache holds five
images) unchanged, at their own size, while every later sample is a ``(2w, 2h)`` canvas. The YOLO11
recipe therefore follows it with ``Resize`` (keep ratio) and ``Pad`` to that canvas, so the random
affine crop always gets a canvas. For the real mosaics both are identities, but they still copy
the canvas twice (``cv2.resize`` to its own size, then ``impad``) and rescale the boxes by 1.

:class:`FitMosaicCanvas` runs mmdet's ``Resize`` + ``Pad`` on an image of another size, and on one
that already has the canvas size only writes the keys those two would write, with the same
values, leaving the image as it is.
"""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.datasets.transforms import Pad, Resize
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type


@TRANSFORMS.register_module()
class FitMosaicCanvas(BaseTransform):
    """mmdet's ``Resize(scale, keep_ratio=True)`` then ``Pad(size=scale)``, skipped when the image
    already has the size ``scale``.

    Required Keys: ``img``; ``gt_bboxes`` (optional); ``homography_matrix`` (optional).

    Modified Keys: ``img``, ``img_shape``, ``gt_bboxes``, ``homography_matrix``.

    Added Keys: ``scale``, ``scale_factor``, ``keep_ratio``, ``pad_shape``, ``pad_fixed_size``,
    ``pad_size_divisor``.

    Args:
        scale (tuple[int, int]): Canvas size ``(w, h)``, e.g. twice the recipe's ``img_scale``.
        pad_val (int | tuple[int, int, int]): Fill value of the padding. Defaults to 114.

    Examples:
        >>> fit = FitMosaicCanvas(scale=(1280, 1280), pad_val=(114, 114, 114))
    """

    def __init__(self, scale: Tuple[int, int], pad_val: object = 114) -> None:
        if (not isinstance(scale, Sequence) or len(scale) != 2
                or not all(isinstance(v, int) and v > 0 for v in scale)):
            raise ValueError(f'FitMosaicCanvas: scale must be two positive ints (w, h), got '
                             f'{scale!r}')
        self.scale = tuple(scale)
        self.pad_val = pad_val
        self.resize = Resize(scale=self.scale, keep_ratio=True)
        self.pad = Pad(size=self.scale, pad_val=dict(img=pad_val))

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Resize and pad ``results['img']`` to the canvas, or record that it already is one.

        Args:
            results (dict): The sample.

        Returns:
            dict: The sample with a ``(h, w)`` image and the keys ``Resize`` + ``Pad`` write.
        """
        img = results['img']
        if (img.shape[:2] != self.scale[::-1] or results.get('gt_masks') is not None
                or results.get('gt_seg_map') is not None):
            return self.pad(self.resize(results))
        # What Resize writes at scale factor 1 (boxes: rescaled by 1, clipped to the image) ...
        results['scale'] = self.scale
        results['img_shape'] = img.shape[:2]
        results['scale_factor'] = (1.0, 1.0)
        results['keep_ratio'] = True
        boxes = results.get('gt_bboxes')
        if boxes is not None:
            boxes.rescale_(results['scale_factor'])
            if self.resize.clip_object_border:
                boxes.clip_(results['img_shape'])
        identity = np.eye(3, dtype=np.float32)
        results['homography_matrix'] = (identity if results.get('homography_matrix') is None
                                        else identity @ results['homography_matrix'])
        # ... and what Pad writes when there is nothing to pad.
        results['pad_shape'] = img.shape
        results['pad_fixed_size'] = self.pad.size
        results['pad_size_divisor'] = self.pad.size_divisor
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale}, pad_val={self.pad_val})'
