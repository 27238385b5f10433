"""Ultralytics' random affine augmentation (``RandomPerspective`` without perspective) for mmdet.

mmdet's ``RandomAffine`` (used by its YOLOX recipe) is not what Ultralytics' trainer does, in two
ways that change what the network is trained on:

* **where the output window lies.** mmdet scales and rotates about the input's top-left corner and
  then crops the output size from there; on the ``(2w, 2h)`` mosaic canvas (``border=(-w/2,
  -h/2)``) it shows the canvas's top-left quarter (around ``(w/2, h/2)`` at scale 1), where often
  only one of the four tiles lies and the rest is padding. Ultralytics moves the input's centre to
  the origin first and the output's centre (``0.5 +- translate`` of the output size) back, so the
  window is centred on the canvas, where the four tiles meet; a scale below 1 shrinks the image
  about its centre instead of towards the top-left corner.
* **which boxes survive.** mmdet keeps every box with some area left inside the output;
  Ultralytics keeps a box only if it is wider and taller than 2 px, has kept more than 10 % of its
  (scaled) area and an aspect ratio below 100 (``box_candidates``), so a lesion cut down to a
  sliver at the border is not trained on as a positive.

:class:`YOLORandomAffine` does what Ultralytics 8.4's ``RandomPerspective`` does with
``perspective=0``: it draws its random numbers from Python's ``random`` in the same order (the two
perspective draws included, which are 0), builds the same matrix ``T @ S @ R @ C``, warps with
``cv2.warpAffine`` and transforms and filters the boxes the same way, so under one seed it returns
Ultralytics' image and boxes (tested).
"""
import math
import random
from typing import Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes, autocast_box_type


@TRANSFORMS.register_module()
class YOLORandomAffine(BaseTransform):
    """Random rotation, scaling, shear and translation about the image centre (Ultralytics').

    Required Keys: ``img``, ``gt_bboxes`` (``HorizontalBoxes``), ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Modified Keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Args:
        max_rotate_degree (float): Rotation drawn in ``[-d, d]`` degrees (Ultralytics'
            ``degrees``). Defaults to 0.0.
        max_translate_ratio (float): Translation of the centre drawn in ``[-t, t]`` of the output
            size (``translate``). Defaults to 0.1.
        scaling_ratio_range (tuple[float, float]): Scale drawn in this range (``scale=0.5`` is
            ``(0.5, 1.5)``). Defaults to (0.5, 1.5).
        max_shear_degree (float): Shear drawn in ``[-d, d]`` degrees per axis (``shear``).
            Defaults to 0.0.
        border (tuple[int, int]): ``(x, y)`` added on each side of the input to get the output
            size when ``size`` is not given: ``(-w / 2, -h / 2)`` turns a mosaic's ``(2w, 2h)``
            canvas into ``(w, h)``. Defaults to (0, 0).
        size (tuple[int, int], optional): Fixed output size ``(w, h)`` (Ultralytics' ``size``);
            the input's centre is placed at the output's centre whatever the input's size.
        border_val (tuple[int, int, int]): Fill value outside the warped input.
            Defaults to (114, 114, 114).
        min_bbox_size (float): A kept box is wider and taller than this (px). Defaults to 2.
        min_area_ratio (float): A kept box keeps more than this share of its scaled area.
            Defaults to 0.1.
        max_aspect_ratio (float): A kept box's aspect ratio is below this. Defaults to 100.

    Examples:
        >>> mosaic_stage = YOLORandomAffine(border=(-320, -320))  # 1280 canvas -> 640
        >>> letterbox_stage = YOLORandomAffine(size=(640, 640))
    """

    def __init__(self,
                 max_rotate_degree: float = 0.0,
                 max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 max_shear_degree: float = 0.0,
                 border: Tuple[int, int] = (0, 0),
                 size: Optional[Tuple[int, int]] = None,
                 border_val: Tuple[int, int, int] = (114, 114, 114),
                 min_bbox_size: float = 2.0,
                 min_area_ratio: float = 0.1,
                 max_aspect_ratio: float = 100.0) -> None:
        if not 0 <= max_translate_ratio <= 1:
            raise ValueError(f'max_translate_ratio must be in [0, 1], got {max_translate_ratio}')
        if not 0 < scaling_ratio_range[0] <= scaling_ratio_range[1]:
            raise ValueError(f'scaling_ratio_range must be 0 < low <= high, got '
                             f'{scaling_ratio_range}')
        if size is not None and tuple(border) != (0, 0):
            raise ValueError(f'give either size={size} or border={border}, not both')
        self.max_rotate_degree = float(max_rotate_degree)
        self.max_translate_ratio = float(max_translate_ratio)
        self.scaling_ratio_range = tuple(float(v) for v in scaling_ratio_range)
        self.max_shear_degree = float(max_shear_degree)
        self.border = tuple(int(v) for v in border)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.border_val = tuple(border_val)
        self.min_bbox_size = float(min_bbox_size)
        self.min_area_ratio = float(min_area_ratio)
        self.max_aspect_ratio = float(max_aspect_ratio)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(w, h)`` of the output for an input of ``height`` x ``width``."""
        if self.size is not None:
            return self.size
        return width + 2 * self.border[0], height + 2 * self.border[1]

    def random_matrix(self, height: int, width: int,
                      out_size: Tuple[int, int]) -> Tuple[np.ndarray, float]:
        """Draw the 3 x 3 matrix and the scale, in Ultralytics' order of draws.

        Args:
            height (int): Input height.
            width (int): Input width.
            out_size (tuple[int, int]): Output ``(w, h)``.

        Returns:
            tuple[np.ndarray, float]: The matrix (input pixels -> output pixels) and the scale.
        """
        # float32 and the full product (identity perspective included), as Ultralytics computes
        # it, so that the rounding and hence the warped pixels are the same
        centre = np.eye(3, dtype=np.float32)
        centre[0, 2], centre[1, 2] = -width / 2, -height / 2
        perspective = np.eye(3, dtype=np.float32)
        random.uniform(-0.0, 0.0)  # Ultralytics' two perspective draws (no perspective here)
        random.uniform(-0.0, 0.0)
        angle = random.uniform(-self.max_rotate_degree, self.max_rotate_degree)
        scale = random.uniform(*self.scaling_ratio_range)
        rotation = np.eye(3, dtype=np.float32)
        rotation[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=scale)
        shear = np.eye(3, dtype=np.float32)
        shear[0, 1] = math.tan(random.uniform(-self.max_shear_degree, self.max_shear_degree)
                               * math.pi / 180)
        shear[1, 0] = math.tan(random.uniform(-self.max_shear_degree, self.max_shear_degree)
                               * math.pi / 180)
        translate = np.eye(3, dtype=np.float32)
        t = self.max_translate_ratio
        translate[0, 2] = random.uniform(0.5 - t, 0.5 + t) * out_size[0]
        translate[1, 2] = random.uniform(0.5 - t, 0.5 + t) * out_size[1]
        return translate @ shear @ rotation @ perspective @ centre, scale

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Warp the image and its boxes by one random matrix; drop boxes Ultralytics drops.

        Args:
            results (dict): The sample.

        Returns:
            dict: The warped sample.
        """
        img = results['img']
        height, width = img.shape[:2]
        out_size = self.output_size(height, width)
        if out_size[0] <= 0 or out_size[1] <= 0:
            raise ValueError(f'{type(self).__name__}: output size {out_size} from an input of '
                             f'{width} x {height} and border {self.border} '
                             f"({results.get('img_path', 'no img_path')})")
        matrix, scale = self.random_matrix(height, width, out_size)
        img = cv2.warpAffine(img, matrix[:2], dsize=out_size, borderValue=self.border_val)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        boxes = results.get('gt_bboxes')
        if boxes is not None and len(boxes):
            if 'gt_masks' in results:
                raise NotImplementedError(f'{type(self).__name__} moves boxes only, not masks')
            old = boxes.numpy().astype(np.float32)
            new = self._warp_boxes(old, matrix, out_size)
            keep = self._candidates(old * scale, new)
            results['gt_bboxes'] = HorizontalBoxes(new[keep], dtype=boxes.tensor.dtype)
            results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
            results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        return results

    @staticmethod
    def _warp_boxes(boxes: np.ndarray, matrix: np.ndarray, out_size: Tuple[int, int]) -> np.ndarray:
        """The boxes enclosing the warped corners, clipped to the output."""
        n = len(boxes)
        corners = np.ones((n * 4, 3), dtype=boxes.dtype)
        corners[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)
        xy = (corners @ matrix.T)[:, :2].reshape(n, 8)
        x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
        new = np.stack((x.min(1), y.min(1), x.max(1), y.max(1)), 1).astype(boxes.dtype)
        new[:, [0, 2]] = new[:, [0, 2]].clip(0, out_size[0])
        new[:, [1, 3]] = new[:, [1, 3]].clip(0, out_size[1])
        return new

    def _candidates(self, scaled: np.ndarray, new: np.ndarray, eps: float = 1e-16) -> np.ndarray:
        """Ultralytics' ``box_candidates``: size, kept area share and aspect ratio."""
        w1, h1 = scaled[:, 2] - scaled[:, 0], scaled[:, 3] - scaled[:, 1]
        w2, h2 = new[:, 2] - new[:, 0], new[:, 3] - new[:, 1]
        aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
        return ((w2 > self.min_bbox_size) & (h2 > self.min_bbox_size)
                & (w2 * h2 / (w1 * h1 + eps) > self.min_area_ratio)
                & (aspect < self.max_aspect_ratio))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_rotate_degree={self.max_rotate_degree}, '
                f'max_translate_ratio={self.max_translate_ratio}, '
                f'scaling_ratio_range={self.scaling_ratio_range}, '
                f'max_shear_degree={self.max_shear_degree}, border={self.border}, '
                f'size={self.size}, border_val={self.border_val}, '
                f'min_bbox_size={self.min_bbox_size}, min_area_ratio={self.min_area_ratio}, '
                f'max_aspect_ratio={self.max_aspect_ratio})')
