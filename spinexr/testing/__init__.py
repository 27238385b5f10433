"""Tiny generated fixtures for tests and CPU smoke runs (never shipped as binaries in git)."""
import json
from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np

from spinexr.datasets.metainfo import CLASSES


def make_tiny_coco(root: str,
                   split: str = 'train',
                   num_images: int = 8,
                   img_size: Tuple[int, int] = (96, 128),
                   seed: int = 0,
                   normal_share: float = 0.25,
                   classes: Sequence[str] = CLASSES,
                   textured: bool = False,
                   textured_classes: int = 4) -> str:
    """Write a tiny dataset in the converter's output layout.

    Layout (the same as ``tools/dataset_converters/vindr_spinexr.py`` writes)::

        root/<split>/<image_id>.png          8-bit grey PNGs
        root/annotations/<split>.json         COCO detection format

    Each abnormal image holds 1-3 bright rectangles whose grey level depends on the class, so a
    detector can learn something in a few iterations. With ``textured=True`` the class is drawn as a
    pattern instead, at one grey level, and only the first four classes occur (solid, horizontal
    stripes, vertical stripes, checkerboard, period 16 px): the classes then stay apart under
    brightness augmentation (Ultralytics' multiplicative HSV value gain, which removes the grey
    level's meaning) and under horizontal flips. Image records carry the converter's extra keys
    (``image_id``, ``study_id``, ``series_id``, ``orig_width``, ``orig_height``, ``abnormal``).

    Args:
        root (str): Output folder.
        split (str): Split name, e.g. ``'train'``.
        num_images (int): Number of images.
        img_size (tuple[int, int]): ``(height, width)`` of every image.
        seed (int): Random seed; the output is deterministic for a seed.
        normal_share (float): Share of images without lesions.
        classes (Sequence[str]): Category names, in order.
        textured (bool): Tell the classes apart by pattern rather than grey level. Defaults to
            False.
        textured_classes (int): With ``textured``, how many of the four patterns occur (the
            first ``textured_classes``: 3 leaves out the checkerboard, the pattern most often
            confused with the stripes). Defaults to 4.

    Returns:
        str: Path of the written annotation file.
    """
    rng = np.random.default_rng(seed)
    root_p = Path(root)
    (root_p / split).mkdir(parents=True, exist_ok=True)
    (root_p / 'annotations').mkdir(parents=True, exist_ok=True)
    h, w = img_size
    images, annotations = [], []
    ann_id = 1
    for i in range(num_images):
        image_id = f'{seed:08x}{i:08x}'.ljust(32, 'a')
        img = rng.normal(70, 12, size=(h, w))
        abnormal = rng.random() >= normal_share or i == 0
        if abnormal:
            for _ in range(int(rng.integers(1, 4))):
                label = int(rng.integers(0, min(textured_classes, 4, len(classes)) if textured
                                         else len(classes)))
                bw, bh = int(rng.integers(w // 6, w // 3)), int(rng.integers(h // 6, h // 3))
                x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                if textured:
                    patch = 150 + 60 * _pattern(label, bh, bw) + rng.normal(0, 5, size=(bh, bw))
                else:
                    patch = 140 + 15 * label + rng.normal(0, 5, size=(bh, bw))
                img[y0:y0 + bh, x0:x0 + bw] = patch
                annotations.append(
                    dict(id=ann_id, image_id=i + 1, category_id=label + 1,
                         bbox=[float(x0), float(y0), float(bw), float(bh)],
                         area=float(bw * bh), iscrowd=0))
                ann_id += 1
        file_name = f'{split}/{image_id}.png'
        cv2.imwrite(str(root_p / file_name), np.clip(img, 0, 255).astype(np.uint8))
        images.append(
            dict(id=i + 1, image_id=image_id, file_name=file_name, width=w, height=h,
                 study_id=f'{i // 2:032x}', series_id=f'{i:032x}', orig_width=w * 4,
                 orig_height=h * 4, abnormal=bool(abnormal)))
    coco = dict(
        images=images, annotations=annotations,
        categories=[dict(id=k + 1, name=name) for k, name in enumerate(classes)])
    ann_file = root_p / 'annotations' / f'{split}.json'
    ann_file.write_text(json.dumps(coco))
    return str(ann_file)


def _pattern(label: int, height: int, width: int) -> np.ndarray:
    """Class ``label``'s pattern in {-0.5, 0.5}: solid, horizontal stripes, vertical stripes or a
    checkerboard (``label`` 0-3), period 16 px (still 5 px at the benchmark's smallest scale, 0.8
    x 0.5 x 0.75 multi-scale: finer patterns blur into the solid class)."""
    ys = (np.arange(height)[:, None] // 8) % 2
    xs = (np.arange(width)[None, :] // 8) % 2
    grid = [np.ones((height, width)), np.broadcast_to(ys, (height, width)),
            np.broadcast_to(xs, (height, width)), (ys + xs) % 2][label]
    return grid - 0.5
