"""mmdet's ``CachedMosaic`` with a cache of images already resized to the mosaic's tile size.

Why this exists: mmdet's ``CachedMosaic`` caches each sample as loaded (a full-size radiograph:
the converter writes 1024 px PNGs, the recipe tiles at 640) and, every time it draws a cached
sample into a mosaic, deep-copies it twice and resizes it again. Ultralytics resizes each image
once, when it is loaded, so its mosaic buffer holds small images.

:class:`YOLOCachedMosaic` computes exactly what ``CachedMosaic`` computes. After each call it
resizes the sample it has just cached the way the mosaic would (``mmcv.imresize`` to
``(int(w * r), int(h * r))`` with ``r = min(tile_h / h, tile_w / w)``, boxes rescaled by ``r``), and
keeps the small copy only when the mosaic's own resize of it is the identity (``r`` of the small
image is exactly 1, and ``cv2.resize`` to an image's own size copies it). A cached sample is then
tiled with the same pixels and the same float32 boxes (``x * r * 1.0 + pad`` is ``x * r + pad``)
whether it is the small copy or the original. Images smaller than the tile, samples with masks,
and the rare size whose resize is not a fixed point (about 1 in 500) stay as they are. Samples
that pass through (the first ones, until the cache holds five) are the originals, as before.

Because the two cache forms give the same mosaics, a cache rebuilt from dataset indices on resume
(``spinexr.datasets.transforms.state``: full-size entries) continues the run bit for bit.
"""
from typing import Tuple

import mmcv

from mmdet.datasets.transforms import CachedMosaic
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class YOLOCachedMosaic(CachedMosaic):
    """mmdet's ``CachedMosaic`` (same arguments, same output) caching tile-sized images.

    Required Keys: ``img``, ``gt_bboxes`` (``BaseBoxes``), ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Modified Keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Args:
        img_scale (tuple[int, int]): Tile size ``(w, h)``; the mosaic canvas is ``(2w, 2h)``.
            Defaults to (640, 640).
        center_ratio_range (tuple[float, float]): Range of the mosaic centre as a fraction of
            the tile size. Defaults to (0.5, 1.5).
        bbox_clip_border (bool): Clip boxes to the canvas. Defaults to True.
        pad_val (float): Fill value of the canvas. Defaults to 114.0.
        prob (float): Probability of making a mosaic. Defaults to 1.0.
        max_cached_images (int): Cache length (at least 4). Defaults to 40.
        random_pop (bool): Drop a random cache entry when full, else the oldest.
            Defaults to True.

    Examples:
        >>> t = YOLOCachedMosaic(img_scale=(640, 640), pad_val=114.0, max_cached_images=40,
        ...                      random_pop=False)
    """

    def __init__(self,
                 img_scale: Tuple[int, int] = (640, 640),
                 center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 bbox_clip_border: bool = True,
                 pad_val: float = 114.0,
                 prob: float = 1.0,
                 max_cached_images: int = 40,
                 random_pop: bool = True) -> None:
        super().__init__(
            img_scale=img_scale,
            center_ratio_range=center_ratio_range,
            bbox_clip_border=bbox_clip_border,
            pad_val=pad_val,
            prob=prob,
            max_cached_images=max_cached_images,
            random_pop=random_pop)

    def _tile_ratio(self, height: int, width: int) -> float:
        """The scale ``CachedMosaic`` resizes a ``(height, width)`` image by (same expression)."""
        return min(self.img_scale[1] / height, self.img_scale[0] / width)

    def _shrink(self, entry: dict) -> None:
        """Resize a cached sample in place to its tile size, if the mosaic then leaves it as is."""
        img = entry['img']
        h, w = img.shape[:2]
        ratio = self._tile_ratio(h, w)
        if ratio >= 1.0 or entry.get('gt_masks') is not None:
            return
        small = mmcv.imresize(img, (int(w * ratio), int(h * ratio)))
        if self._tile_ratio(*small.shape[:2]) != 1.0:
            return  # the mosaic would resize the small copy again: keep the original
        entry['img'] = small
        entry['img_shape'] = small.shape[:2]
        entry['gt_bboxes'].rescale_([ratio, ratio])

    def transform(self, results: dict) -> dict:
        """``CachedMosaic.transform``, then the sample it just cached is shrunk to its tile size.

        Args:
            results (dict): The sample.

        Returns:
            dict: The mosaic (or the sample itself while the cache fills), as ``CachedMosaic``.
        """
        results = super().transform(results)
        if self.results_cache:
            self._shrink(self.results_cache[-1])
        return results
