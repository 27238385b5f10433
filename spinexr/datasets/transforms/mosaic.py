"""mmdet's ``CachedMosaic`` with a cache of tile-sized images and no deep copies.

Why this exists: mmdet's ``CachedMosaic`` caches a deep copy of each sample as loaded (a
full-size radiograph: the converter writes 1024 px PNGs, the recipe tiles at 640), and every time
it draws cached samples into a mosaic it deep-copies their whole results dicts twice and resizes
their images again. Ultralytics resizes each image once, when it is loaded, so its mosaic buffer
holds small images, and it copies nothing but the tiles.

:class:`YOLOCachedMosaic` computes exactly what ``CachedMosaic`` computes: the same random draws
in the same order (cache pop, ``prob``, the three cache indexes, the centre), the same tile sizes
(``(int(w * r), int(h * r))`` with ``r = min(tile_h / h, tile_w / w)``, ``mmcv.imresize``), the same
float32 box arithmetic (``rescale_`` by ``r``, ``translate_``, ``cat``, ``clip_``, ``is_inside``).
What differs is only what is stored and copied:

* the cache holds, per sample, the image, boxes, labels and ignore flags (and ``sample_idx``),
  not the whole results dict;
* a cached image is stored already resized to its tile when the mosaic's own resize of that copy
  is the identity (its ``r`` is exactly 1, and ``cv2.resize`` to an image's own size copies it);
  its boxes are stored rescaled by ``r``, and ``x * r * 1.0 + pad`` is ``x * r + pad`` in float32.
  Images smaller than the tile and the rare size whose small copy would be resized again (about
  1 in 500) are stored as they are;
* tiles are read from the cache without copying; their boxes are cloned.

Samples that pass through while the cache fills (the first four) are the originals, as before.
Samples with masks are left to ``CachedMosaic`` itself. Because a full-size entry and its
tile-sized copy give the same mosaics, a cache rebuilt from dataset indices on resume
(``spinexr.datasets.transforms.state``: full results dicts) continues the run bit for bit.
"""
from typing import Tuple

import mmcv
import numpy as np
from numpy import random

from mmdet.datasets.transforms import CachedMosaic
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type

_LOCATIONS = ('top_left', 'top_right', 'bottom_left', 'bottom_right')


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

    def _cache_entry(self, results: dict) -> dict:
        """What the cache keeps of a sample: its own copies of the arrays, the image and boxes
        already resized to the tile when the mosaic's resize of that copy is the identity."""
        img, boxes = results['img'], results['gt_bboxes'].clone()
        h, w = img.shape[:2]
        ratio = self._tile_ratio(h, w)
        small = None
        if ratio < 1.0:
            small = mmcv.imresize(img, (int(w * ratio), int(h * ratio)))
            if self._tile_ratio(*small.shape[:2]) == 1.0:
                boxes.rescale_([ratio, ratio])
            else:
                small = None  # the mosaic would resize this copy again: keep the original
        entry = dict(img=img.copy() if small is None else small, gt_bboxes=boxes,
                     gt_bboxes_labels=results['gt_bboxes_labels'].copy(),
                     gt_ignore_flags=results['gt_ignore_flags'].copy())
        if 'sample_idx' in results:
            entry['sample_idx'] = results['sample_idx']
        return entry

    def _tile(self, entry: dict) -> tuple:
        """The tile-sized image of a sample (not a copy when it already is) and its boxes,
        rescaled (a new boxes object)."""
        img = entry['img']
        h, w = img.shape[:2]
        ratio = self._tile_ratio(h, w)
        size = (int(w * ratio), int(h * ratio))
        boxes = entry['gt_bboxes'].clone()
        if size != (w, h):
            img = mmcv.imresize(img, size)
        if ratio != 1.0:  # x * 1.0 == x: skipping it changes no bit
            boxes.rescale_([ratio, ratio])
        return img, boxes

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Cache the sample, then (once the cache holds five) tile it with three cached ones.

        Args:
            results (dict): The sample.

        Returns:
            dict: The ``(2h, 2w)`` mosaic with its boxes, or the sample itself while the cache
            fills or when ``prob`` says no mosaic (exactly as ``CachedMosaic``).
        """
        if results.get('gt_masks') is not None:
            return super().transform(results)
        cache = self.results_cache
        cache.append(self._cache_entry(results))
        if len(cache) > self.max_cached_images:
            cache.pop(random.randint(0, len(cache) - 1) if self.random_pop else 0)
        if len(cache) <= 4 or random.uniform(0, 1) > self.prob:
            return results
        indexes = self.get_indexes(cache)

        tile_w, tile_h = self.img_scale
        img = results['img']
        canvas = np.full((int(tile_h * 2), int(tile_w * 2)) + img.shape[2:], self.pad_val,
                         dtype=img.dtype)
        center = (int(random.uniform(*self.center_ratio_range) * tile_w),
                  int(random.uniform(*self.center_ratio_range) * tile_h))
        all_boxes, labels, ignore = [], [], []
        sources = [results] + [cache[i] for i in indexes]
        for loc, source in zip(_LOCATIONS, sources):
            tile, boxes = self._tile(source)
            (x1p, y1p, x2p, y2p), (x1c, y1c, x2c, y2c) = self._mosaic_combine(
                loc, center, tile.shape[:2][::-1])
            canvas[y1p:y2p, x1p:x2p] = tile[y1c:y2c, x1c:x2c]
            boxes.translate_([x1p - x1c, y1p - y1c])
            all_boxes.append(boxes)
            labels.append(source['gt_bboxes_labels'])
            ignore.append(source['gt_ignore_flags'])

        boxes = all_boxes[0].cat(all_boxes, 0)
        if self.bbox_clip_border:
            boxes.clip_([2 * tile_h, 2 * tile_w])
        inside = boxes.is_inside([2 * tile_h, 2 * tile_w]).numpy()
        results['img'] = canvas
        results['img_shape'] = canvas.shape[:2]
        results['gt_bboxes'] = boxes[inside]
        results['gt_bboxes_labels'] = np.concatenate(labels, 0)[inside]
        results['gt_ignore_flags'] = np.concatenate(ignore, 0)[inside]
        return results
