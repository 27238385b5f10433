"""Runtime of box fusion per image: WBF / NMS / soft-NMS vs plain concatenation + per-class NMS.

Synthetic members (default 3 detectors x 300 boxes x 7 classes on a 2,000 x 2,500 px image, boxes
scattered around a few shared "lesions" so that clusters form, as with real detectors) are fused
image by image with :func:`spinexr.evaluation.box_fusion.fuse_image`, and the reference (pool all
boxes, per-class greedy NMS in NumPy, :func:`concat_nms_reference`) runs on the same images in the
same process. The first call of each method (numba compilation of ensemble_boxes) is a warm-up,
not timed. Example::

    python benchmarks/bench_fusion.py --members 3 --boxes 300 --classes 7 --images 50
"""
import argparse
import time
from typing import List

import numpy as np

from spinexr.evaluation.box_fusion import concat_nms_reference, fuse_image


def fake_members(rng: np.random.Generator, members: int, boxes: int, classes: int, width: int,
                 height: int, lesions: int = 20) -> List[tuple]:
    """Per member ``(bboxes, scores, labels)`` jittered around shared lesion boxes."""
    centres = rng.uniform([0, 0], [width, height], size=(lesions, 2))
    sizes = rng.uniform(40, 400, size=(lesions, 2))
    lesion_cls = rng.integers(0, classes, lesions)
    out = []
    for _ in range(members):
        k = rng.integers(0, lesions, boxes)
        c = centres[k] + rng.normal(0, 15, size=(boxes, 2))
        s = sizes[k] * rng.uniform(0.8, 1.2, size=(boxes, 2))
        b = np.concatenate([c - s / 2, c + s / 2], axis=1)
        b = np.clip(b, 0, [width, height, width, height])
        labels = np.where(rng.random(boxes) < 0.8, lesion_cls[k], rng.integers(0, classes, boxes))
        out.append((b, rng.uniform(0.01, 1.0, boxes), labels))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--members', type=int, default=3)
    parser.add_argument('--boxes', type=int, default=300, help='boxes per member and image')
    parser.add_argument('--classes', type=int, default=7)
    parser.add_argument('--images', type=int, default=50)
    parser.add_argument('--width', type=int, default=2000)
    parser.add_argument('--height', type=int, default=2500)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    images = [fake_members(rng, args.members, args.boxes, args.classes, args.width, args.height)
              for _ in range(args.images)]
    runs = {
        'wbf': lambda m: fuse_image(m, args.width, args.height, method='wbf', iou_thr=0.55),
        'nms (ensemble_boxes)': lambda m: fuse_image(m, args.width, args.height, method='nms',
                                                     iou_thr=0.5),
        'soft_nms (mmcv)': lambda m: fuse_image(m, args.width, args.height, method='soft_nms',
                                                iou_thr=0.5),
        'concat + per-class NMS (NumPy reference)': lambda m: concat_nms_reference(m, 0.5),
    }
    result = {}
    print(f'{args.members} members x {args.boxes} boxes x {args.classes} classes, '
          f'{args.images} images of {args.width} x {args.height} px')
    for name, fn in runs.items():
        kept = len(fn(images[0])[1])  # warm-up (numba compiles ensemble_boxes on first use)
        t0 = time.perf_counter()
        for m in images:
            fn(m)
        ms = 1000 * (time.perf_counter() - t0) / len(images)
        result[name] = ms
        print(f'| {name} | {ms:.2f} ms/image | {kept} boxes kept (image 0) |')
    return result


if __name__ == '__main__':
    main()
