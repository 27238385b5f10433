"""mmdet's ``RandomAffine`` warped with ``cv2.warpAffine`` when the matrix is affine.

Why this exists: mmdet's ``RandomAffine`` always warps with ``cv2.warpPerspective``, which
divides by the homogeneous coordinate at every pixel. The matrices it draws (translation, shear,
rotation, scaling) have ``[0, 0, 1]`` as their last row, so the warp is affine, and
``cv2.warpAffine`` (what Ultralytics' ``RandomPerspective`` uses when there is no perspective)
does the same resampling in about 0.6x the time (0.30 vs 0.53 ms for a 320 px output, 1 thread).

:class:`YOLORandomAffine` draws the same matrix from the same random numbers (it is the parent's
``_get_random_homography_matrix``) and moves the boxes exactly as the parent does, so boxes and
labels are identical under the same ``np.random`` seed. The images are not bit for bit the same:
both OpenCV warps interpolate bilinearly with source positions rounded to 1/32 px, but
``warpPerspective`` rounds each pixel's position from doubles whereas ``warpAffine`` accumulates it
in fixed point, so some pixels are interpolated one or two 1/32 px steps apart. The difference is
at most the local intensity step x 2/32: one grey level on smooth images (a blurred 640 px test
image: ~1 % of the pixels differ, by 1), up to ~16 levels at isolated pixels of sharp pixel noise
(mean under one level). This is the resampling Ultralytics' ``RandomPerspective`` does.
A matrix with a perspective part falls back to ``cv2.warpPerspective``.
"""
from typing import Tuple

import cv2
import numpy as np

from mmdet.datasets.transforms import RandomAffine
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type

_AFFINE_LAST_ROW = np.array([0.0, 0.0, 1.0])


@TRANSFORMS.register_module()
class YOLORandomAffine(RandomAffine):
    """Random affine augmentation (mmdet's ``RandomAffine``) with an affine-only fast warp.

    Required Keys: ``img``, ``gt_bboxes`` (``BaseBoxes``), ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Modified Keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Args:
        max_rotate_degree (float): Maximum rotation in degrees. Defaults to 10.0.
        max_translate_ratio (float): Maximum translation as a fraction of the output size.
            Defaults to 0.1.
        scaling_ratio_range (tuple[float, float]): Range of the scaling factor.
            Defaults to (0.5, 1.5).
        max_shear_degree (float): Maximum shear in degrees. Defaults to 2.0.
        border (tuple[int, int]): ``(x, y)`` added on each side of the input to get the output
            size: ``(-w / 2, -h / 2)`` crops a mosaic's ``(2w, 2h)`` canvas to ``(w, h)``.
            Defaults to (0, 0).
        border_val (tuple[int, int, int]): Fill value outside the warped image.
            Defaults to (114, 114, 114).
        bbox_clip_border (bool): Clip boxes to the output image. Defaults to True.

    Examples:
        >>> t = YOLORandomAffine(max_rotate_degree=0.0, max_shear_degree=0.0,
        ...                      border=(-320, -320))
    """

    def __init__(self,
                 max_rotate_degree: float = 10.0,
                 max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 max_shear_degree: float = 2.0,
                 border: Tuple[int, int] = (0, 0),
                 border_val: Tuple[int, int, int] = (114, 114, 114),
                 bbox_clip_border: bool = True) -> None:
        super().__init__(
            max_rotate_degree=max_rotate_degree,
            max_translate_ratio=max_translate_ratio,
            scaling_ratio_range=scaling_ratio_range,
            max_shear_degree=max_shear_degree,
            border=border,
            border_val=border_val,
            bbox_clip_border=bbox_clip_border)

    def _warp(self, img: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
        """Warp ``img`` by the 3x3 ``matrix`` into a ``(height, width)`` image."""
        if np.array_equal(matrix[2], _AFFINE_LAST_ROW):
            return cv2.warpAffine(img, matrix[:2], dsize=(width, height),
                                  borderValue=self.border_val)
        return cv2.warpPerspective(img, matrix, dsize=(width, height),
                                   borderValue=self.border_val)

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Warp the image and its boxes by one random matrix.

        Args:
            results (dict): The sample.

        Returns:
            dict: The sample, warped; boxes left (after clipping) without area are dropped with
            their labels and ignore flags.
        """
        img = results['img']
        height = img.shape[0] + self.border[1] * 2
        width = img.shape[1] + self.border[0] * 2
        matrix = self._get_random_homography_matrix(height, width)
        img = self._warp(img, matrix, width, height)
        results['img'] = img
        results['img_shape'] = img.shape[:2]

        boxes = results['gt_bboxes']
        if len(boxes):
            if 'gt_masks' in results:
                raise NotImplementedError(f'{type(self).__name__} moves boxes only, not masks')
            boxes.project_(matrix)
            if self.bbox_clip_border:
                boxes.clip_([height, width])
            keep = boxes.is_inside([height, width]).numpy()
            results['gt_bboxes'] = boxes[keep]
            results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
            results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        return results
