"""Target statistics of the phantom, from the real VinDr-SpineXR annotations.

Numbers come from the release's train split (see the project notes): boxes and images per class,
the normal share of each split, median box sizes and the image size range. The samplers here turn
them into per-image findings (which classes, how many boxes) so that class frequencies, boxes per
image and the ~50% normal share follow the real data and rare classes stay rare.
"""
from typing import Dict, Tuple

import numpy as np

from spinexr.datasets.metainfo import CLASSES

#: Boxes per class in the real train split.
TRAIN_BOXES: Dict[str, int] = {
    'Osteophytes': 12556, 'Surgical implant': 429, 'Spondylolysthesis': 280,
    'Foraminal stenosis': 387, 'Disc space narrowing': 924, 'Vertebral collapse': 268,
    'Other lesions': 446}

#: Train images that hold at least one box of the class.
TRAIN_IMAGES_WITH: Dict[str, int] = {
    'Osteophytes': 3575, 'Surgical implant': 257, 'Spondylolysthesis': 257,
    'Foraminal stenosis': 271, 'Disc space narrowing': 602, 'Vertebral collapse': 157,
    'Other lesions': 333}

#: Median box (width, height) in original pixels.
MEDIAN_BOX_WH: Dict[str, Tuple[float, float]] = {
    'Osteophytes': (74, 82), 'Surgical implant': (250, 470), 'Spondylolysthesis': (366, 224),
    'Foraminal stenosis': (74, 96), 'Disc space narrowing': (211, 93),
    'Vertebral collapse': (352, 197), 'Other lesions': (181, 189)}

#: Image counts: (images, normal images) per split.
SPLIT_COUNTS: Dict[str, Tuple[int, int]] = {'train': (8389, 4260), 'test': (2077, 1070)}

#: Image size (height, width) in pixels: median, minimum, maximum.
MEDIAN_SIZE = (2874, 1243)
MIN_SIZE = (815, 675)
MAX_SIZE = (4243, 4061)

#: Share of images stored as MONOCHROME1 (inverted).
MONOCHROME1_SHARE = 0.1

#: Share of studies that hold two views (lateral + AP) instead of one.
TWO_VIEW_SHARE = 0.55


def normal_share(split: str) -> float:
    """Share of 'No finding' images of a split (train 0.508, test 0.515)."""
    images, normal = SPLIT_COUNTS['test' if split == 'test' else 'train']
    return normal / images


def presence_probs() -> Dict[str, float]:
    """Per-class probabilities q_c of an abnormal image holding class c.

    Classes are drawn independently with q_c and redrawn while none is present; q_c is solved so
    that after this conditioning the share of abnormal images holding c matches the real one.
    """
    abnormal = SPLIT_COUNTS['train'][0] - SPLIT_COUNTS['train'][1]
    target = np.array([TRAIN_IMAGES_WITH[c] / abnormal for c in CLASSES])
    q = target.copy()
    for _ in range(100):
        q = target * (1.0 - np.prod(1.0 - q))
    return dict(zip(CLASSES, q.tolist()))


def boxes_per_image(cls: str) -> float:
    """Mean number of boxes of ``cls`` in an image that holds the class."""
    return TRAIN_BOXES[cls] / TRAIN_IMAGES_WITH[cls]


_PROBS = presence_probs()


def sample_findings(rng: np.random.Generator, abnormal: bool) -> Dict[str, int]:
    """Which classes and how many boxes of each an image gets ({} for a normal image)."""
    if not abnormal:
        return {}
    while True:
        present = [c for c in CLASSES if rng.random() < _PROBS[c]]
        if present:
            break
    return {c: 1 + int(rng.poisson(boxes_per_image(c) - 1.0)) for c in present}


def sample_image_size(rng: np.random.Generator, size_scale: float = 1.0) -> Tuple[int, int]:
    """(height, width) around the real median 2874 x 1243, within the real min/max, scaled."""
    if rng.random() < 0.7:  # typical portrait lumbar/thoracic film
        h = rng.normal(MEDIAN_SIZE[0], 230)
        w = h * rng.normal(0.435, 0.05)
    else:  # smaller and squarer films
        h = rng.uniform(MIN_SIZE[0], MEDIAN_SIZE[0])
        w = h * rng.uniform(0.6, 1.05)
    h = float(np.clip(h, MIN_SIZE[0], MAX_SIZE[0]))
    w = float(np.clip(w, MIN_SIZE[1], MAX_SIZE[1]))
    return max(int(round(h * size_scale)), 48), max(int(round(w * size_scale)), 32)


def sample_view(rng: np.random.Generator) -> str:
    """'lateral' or 'ap' for a single-view study."""
    return 'lateral' if rng.random() < 0.6 else 'ap'
