"""The study bootstrap of mAP@0.5 and AUROC: its speed, and how much it widens the intervals.

**Speed** (default): a synthetic test split the size of VinDr-SpineXR's (2,077 images in studies of
one or two views, 7 classes with the test split's class shares, detections from
:func:`fake_predictions`) is matched once, then measured in the same run:

* ``weighted``: :func:`spinexr.evaluation.bootstrap.bootstrap_map_ci` (each image weighted by its
  study's draw count, all resamples of a chunk in one NumPy pass);
* ``naive``: the textbook reference: for each resample, build the resampled image list (every
  image of a drawn study, as often as it was drawn), match again and compute AP
  (:func:`match_coco` + :func:`ap_per_class` at IoU 0.5), timed on ``--naive-resamples``
  resamples and scaled to ``--resamples``; its mAPs are checked against the weighted ones;
* ``auroc``: :func:`spinexr.evaluation.roc.bootstrap_ci` on the same number of replicates.

**Widths** (``--ann-file``): on a converted split (e.g. the phantom's ``test.json``), fixed fake
predictions are scored and the 95% intervals of mAP@0.5 and AUROC are computed twice, resampling
images and resampling studies, for several ``--study-effects`` (the share of the prediction
noise that the views of a study share). Examples::

    python benchmarks/bench_bootstrap.py --images 2077 --resamples 1000 --naive-resamples 10
    python benchmarks/bench_bootstrap.py --ann-file data/phantom_coco/annotations/test.json
"""
import argparse
import time
from typing import List, Sequence, Tuple

import numpy as np

from spinexr.evaluation.bootstrap import (bootstrap_map_ci, resample_weights, study_groups,
                                          weighted_map)
from spinexr.evaluation.coco_ap import (ImageGT, ImagePred, ap_per_class, load_coco_gt,
                                        match_coco, nanmean)
from spinexr.evaluation.roc import auroc, bootstrap_ci

#: Box shares of the 7 classes in the VinDr-SpineXR test split (docs: vindr-spinexr facts).
CLASS_SHARES = np.array([2996, 107, 69, 95, 231, 69, 111], dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fake_predictions(gts: Sequence[ImageGT], study_ids: Sequence[str], num_classes: int,
                     seed: int = 0, study_effect: float = 0.0
                     ) -> Tuple[List[ImagePred], np.ndarray, np.ndarray]:
    """Detections and abnormal probabilities of a fictitious model, fixed by ``seed``.

    Each image has a quality ``z = sqrt(r) * u_study + sqrt(1 - r) * u_image`` (standard normal,
    ``r = study_effect``): a box is found with probability ``sigmoid(1 + z)``, jittered by 10% of
    its size and scored ``sigmoid(0.5 + z + noise)``; about 1.5 false positives per image (random
    class and place) score ``sigmoid(-0.5 + noise)``. The abnormal probability is
    ``sigmoid(1.5 * label - 0.75 + z + noise)``, label = the image has a box.

    Returns:
        tuple: predictions per image, 0/1 labels and abnormal probabilities (in ``gts`` order).
    """
    rng = np.random.default_rng(seed)
    uniq = {s: i for i, s in enumerate(dict.fromkeys(study_ids))}
    u_study = rng.normal(size=len(uniq))
    preds, labels, probs = [], [], []
    for g, s in zip(gts, study_ids):
        z = np.sqrt(study_effect) * u_study[uniq[s]] + np.sqrt(1 - study_effect) * rng.normal()
        found = rng.random(len(g.labels)) < _sigmoid(1.0 + z)
        boxes = g.bboxes[found]
        size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
        boxes = boxes + rng.normal(0, 0.1, boxes.shape) * np.hstack([size, size])
        tp_scores = _sigmoid(0.5 + z + rng.normal(size=len(boxes)))
        n_fp = rng.poisson(1.5)
        w = max(float(g.bboxes[:, 2].max()) if len(g.bboxes) else 0.0, 400.0)
        xy = rng.uniform(0, w, (n_fp, 2))
        fp_boxes = np.hstack([xy, xy + rng.uniform(20, 120, (n_fp, 2))])
        preds.append(ImagePred(
            g.img_id, np.vstack([boxes, fp_boxes]),
            np.concatenate([tp_scores, _sigmoid(-0.5 + rng.normal(size=n_fp))]),
            np.concatenate([g.labels[found], rng.integers(0, num_classes, n_fp)])))
        label = int(len(g.labels) > 0)
        labels.append(label)
        probs.append(_sigmoid(1.5 * label - 0.75 + z + rng.normal()))
    return preds, np.array(labels), np.array(probs)


def synthetic_split(num_images: int, seed: int = 0) -> Tuple[List[ImageGT], List[str]]:
    """Ground truth of a VinDr-sized split: studies of 1-2 views, half the images normal."""
    rng = np.random.default_rng(seed)
    gts, studies, study = [], [], 0
    while len(gts) < num_images:
        study += 1
        for _ in range(2 if rng.random() < 0.55 else 1):
            if len(gts) == num_images:
                break
            k = 0 if rng.random() < 0.5 else 1 + rng.poisson(2.5)
            xy = rng.uniform(0, 600, (k, 2))
            boxes = np.hstack([xy, xy + rng.uniform(40, 200, (k, 2))])
            labels = rng.choice(7, size=k, p=CLASS_SHARES / CLASS_SHARES.sum())
            gts.append(ImageGT(len(gts) + 1, boxes, labels, np.ones(k), np.zeros(k, bool),
                               study_id=f'study{study}'))
            studies.append(f'study{study}')
    return gts, studies


def explicit_resample(gts: List[ImageGT], preds: List[ImagePred],
                      counts: np.ndarray) -> Tuple[List[ImageGT], List[ImagePred]]:
    """The resampled split: image ``i`` repeated ``counts[i]`` times under new ids."""
    new_gts, new_preds, nid = [], [], 0
    for i, count in enumerate(counts):
        for _ in range(int(count)):
            nid += 1
            g, p = gts[i], preds[i]
            new_gts.append(ImageGT(nid, g.bboxes, g.labels, g.areas, g.iscrowd))
            new_preds.append(ImagePred(nid, p.bboxes, p.scores, p.labels))
    return new_gts, new_preds


def bench_speed(num_images: int, n_resamples: int, n_naive: int, seed: int) -> None:
    """Print the weighted bootstrap's time against the naive reference (see the module note)."""
    gts, studies = synthetic_split(num_images, seed=seed)
    nc = len(CLASS_SHARES)
    preds, labels, scores = fake_predictions(gts, studies, nc, seed=seed)
    print(f'{len(gts)} images in {len(set(studies))} studies, '
          f'{sum(len(g.labels) for g in gts)} boxes, {sum(len(p.scores) for p in preds)} '
          f'detections, {nc} classes; {n_resamples} resamples')
    t0 = time.perf_counter()
    match = match_coco(gts, preds, nc, iou_thrs=[0.5])
    t_match = time.perf_counter() - t0  # gts are in img_id order: the match's image order

    t0 = time.perf_counter()
    res = bootstrap_map_ci(match, n_resamples=n_resamples, seed=seed, study_ids=studies)
    t_fast = time.perf_counter() - t0

    weights = resample_weights(len(gts), n_naive, seed, study_groups(studies, len(gts)))
    t0 = time.perf_counter()
    naive = []
    for b in range(n_naive):
        rg, rp = explicit_resample(gts, preds, weights[b])
        naive.append(nanmean(ap_per_class(match_coco(rg, rp, nc, iou_thrs=[0.5]))[0]))
    t_naive_each = (time.perf_counter() - t0) / max(n_naive, 1)
    same = weighted_map(match, weights, absent_class='drop_class')
    max_diff = float(np.max(np.abs(np.asarray(naive) - same))) if naive else 0.0

    t0 = time.perf_counter()
    bootstrap_ci(labels, scores, 0.5, n_bootstrap=n_resamples, seed=seed, study_ids=studies)
    t_auroc = time.perf_counter() - t0

    t_naive = t_naive_each * n_resamples
    print(f'matching once: {t_match:.2f} s')
    print(f'weighted: {t_fast:8.2f} s for {n_resamples} resamples '
          f'({n_resamples / t_fast:8.1f} resamples/s); '
          f'mAP@0.5 {100 * nanmean(ap_per_class(match)[0]):.1f}, '
          f'95% CI {100 * res["low"]:.1f}-{100 * res["high"]:.1f} over {res["n_units"]} studies')
    print(f'naive:    {t_naive:8.2f} s for {n_resamples} resamples '
          f'({1 / t_naive_each:8.1f} resamples/s, timed on {n_naive})')
    print(f'speed-up: {t_naive / t_fast:.0f}x; max |naive - weighted| mAP on the timed '
          f'resamples: {max_diff:.1e}')
    print(f'AUROC study bootstrap, {n_resamples} replicates of {len(labels)} images: '
          f'{t_auroc:.2f} s')


def bench_widths(ann_file: str, n_resamples: int, seed: int,
                 study_effects: Sequence[float]) -> None:
    """Print image- vs study-bootstrap 95% widths of mAP@0.5 and AUROC on a converted split."""
    gts, names = load_coco_gt(ann_file)
    gts = sorted(gts, key=lambda g: g.img_id)  # the match's image order
    studies = [g.study_id or f'image{g.img_id}' for g in gts]
    sizes = np.unique(studies, return_counts=True)[1]
    # if the views of a study were copies: variance x (mean study size seen by an image)
    bound = float(np.sqrt((sizes**2).sum() / sizes.sum()))
    print(f'{ann_file}: {len(gts)} images, {len(sizes)} studies ({int((sizes > 1).sum())} with '
          f'two or more views), {sum(len(g.labels) for g in gts)} boxes; {n_resamples} '
          f'resamples, seed {seed}; width ratio if views were copies: {bound:.2f}')
    print('| study effect | mAP@0.5 | image-bootstrap CI (width) | study-bootstrap CI (width) '
          '| ratio | AUROC | image CI (width) | study CI (width) | ratio |')
    print('|---|---|---|---|---|---|---|---|---|')
    for effect in study_effects:
        preds, labels, probs = fake_predictions(gts, studies, len(names), seed, effect)
        match = match_coco(gts, preds, len(names), iou_thrs=[0.5])
        m = nanmean(ap_per_class(match)[0])
        row = [f'{effect:.2f}', f'{100 * m:.1f}']
        widths = []
        for ids in (None, studies):
            r = bootstrap_map_ci(match, n_resamples=n_resamples, seed=seed, study_ids=ids)
            widths.append(r['high'] - r['low'])
            row.append(f'{100 * r["low"]:.1f}-{100 * r["high"]:.1f} ({100 * widths[-1]:.1f})')
        row.append(f'{widths[1] / widths[0]:.2f}')
        row.append(f'{100 * auroc(labels, probs):.1f}')
        widths = []
        for ids in (None, studies):
            lo, hi = bootstrap_ci(labels, probs, 0.5, n_bootstrap=n_resamples, seed=seed,
                                  study_ids=ids)['auroc']
            widths.append(hi - lo)
            row.append(f'{100 * lo:.1f}-{100 * hi:.1f} ({100 * widths[-1]:.1f})')
        row.append(f'{widths[1] / widths[0]:.2f}')
        print('| ' + ' | '.join(row) + ' |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=2077, help='speed: test images')
    parser.add_argument('--resamples', type=int, default=1000)
    parser.add_argument('--naive-resamples', type=int, default=10,
                        help='speed: resamples timed for the naive reference (scaled up)')
    parser.add_argument('--ann-file', help='widths: a converted COCO split with study ids')
    parser.add_argument('--study-effects', type=float, nargs='+', default=[0.0, 0.5],
                        help='widths: shares of the prediction noise shared by a study')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if args.ann_file:
        bench_widths(args.ann_file, args.resamples, args.seed, args.study_effects)
    else:
        bench_speed(args.images, args.resamples, args.naive_resamples, args.seed)


if __name__ == '__main__':
    main()
