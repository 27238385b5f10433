"""mmdet's ``CachedMixUp`` without deep copies of whole samples.

Why this exists: mmdet's ``CachedMixUp`` deep-copies every sample it sees into its cache (the whole
results dict: image, boxes, paths, shapes, homography matrix, ...) and deep-copies the cached
sample it mixes in once more. It reads and writes only the image, the boxes, their labels and
ignore flags (and the masks, and writes ``img_shape``).

:class:`YOLOCachedMixUp` runs ``CachedMixUp.transform`` itself on a dict holding only those four
entries and writes what it returns back into the sample: the same random draws, the same
arithmetic, the same result, with the cache (and the copies) holding only what the mixup uses.
Samples with masks go to ``CachedMixUp`` as they are.
"""
from typing import Tuple

from mmdet.datasets.transforms import CachedMixUp
from mmdet.registry import TRANSFORMS

#: What ``CachedMixUp.transform`` reads of a sample without masks.
MIXUP_KEYS = ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags')


@TRANSFORMS.register_module()
class YOLOCachedMixUp(CachedMixUp):
    """mmdet's ``CachedMixUp`` (same arguments, same output) caching only what it mixes.

    Required Keys: ``img``, ``gt_bboxes`` (``BaseBoxes``), ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Modified Keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Args:
        img_scale (tuple[int, int]): Size ``(w, h)`` the mixed-in image is fitted to.
            Defaults to (640, 640).
        ratio_range (tuple[float, float]): Scale jitter of the mixed-in image.
            Defaults to (0.5, 1.5).
        flip_ratio (float): Horizontal flip probability of the mixed-in image. Defaults to 0.5.
        pad_val (float): Fill value. Defaults to 114.0.
        max_iters (int): Tries to draw a cached sample with boxes. Defaults to 15.
        bbox_clip_border (bool): Clip boxes to the image. Defaults to True.
        max_cached_images (int): Cache length (at least 2). Defaults to 20.
        random_pop (bool): Drop a random cache entry when full, else the oldest.
            Defaults to True.
        prob (float): Probability of mixing. Defaults to 1.0.

    Examples:
        >>> t = YOLOCachedMixUp(img_scale=(640, 640), ratio_range=(1.0, 1.0), flip_ratio=0.0,
        ...                     max_cached_images=20, random_pop=False, prob=0.1)
    """

    def __init__(self,
                 img_scale: Tuple[int, int] = (640, 640),
                 ratio_range: Tuple[float, float] = (0.5, 1.5),
                 flip_ratio: float = 0.5,
                 pad_val: float = 114.0,
                 max_iters: int = 15,
                 bbox_clip_border: bool = True,
                 max_cached_images: int = 20,
                 random_pop: bool = True,
                 prob: float = 1.0) -> None:
        super().__init__(
            img_scale=tuple(img_scale),
            ratio_range=ratio_range,
            flip_ratio=flip_ratio,
            pad_val=pad_val,
            max_iters=max_iters,
            bbox_clip_border=bbox_clip_border,
            max_cached_images=max_cached_images,
            random_pop=random_pop,
            prob=prob)

    def transform(self, results: dict) -> dict:
        """``CachedMixUp.transform`` on the four entries it reads, written back into the sample.

        Args:
            results (dict): The sample.

        Returns:
            dict: The sample, mixed with a cached one or (while the cache fills, or when ``prob``
            says no) unchanged, exactly as ``CachedMixUp`` returns it.
        """
        if results.get('gt_masks') is not None:
            return super().transform(results)
        core = super().transform({k: results[k] for k in MIXUP_KEYS})
        results.update(core)
        return results
