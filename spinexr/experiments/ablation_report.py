"""The ablation's numbers: AP@0.5 of dumped predictions, and the mean +- std table over seeds.

:func:`evaluate_predictions` scores a run's dumped predictions with the project's one COCO scorer,
:mod:`spinexr.evaluation.coco_ap` (COCOeval's rules in NumPy: IoU 0.5, 101 recall points,
``maxDets`` 100, area ``all``; ``tests/evaluation`` checks it against pycocotools): overall
mAP@0.5 is the mean AP@0.5 over the classes with ground truth, as ``COCOeval.stats[1]``.
:func:`summarize` and :func:`format_table` turn the runs of every config into the markdown table.
"""
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from spinexr.datasets.metainfo import CLASSES
from spinexr.evaluation.coco_ap import (ImagePred, ap_per_class, load_coco_gt, match_coco,
                                        nanmean)
from spinexr.utils.safe_pickle import load_predictions


def evaluate_predictions(pred_file: str, ann_file: str,
                         classes: Sequence[str] = CLASSES) -> Dict[str, float]:
    """Score mmdet's dumped predictions (``python -m spinexr.cli.test --out``) at IoU 0.5.

    Args:
        pred_file (str): Pickle of ``DumpDetResults`` (boxes in the annotation's pixels), read
            with :func:`spinexr.utils.safe_pickle.load_predictions` (tensors, numpy arrays and
            containers only; any other pickled object is refused, nothing in it is run).
        ann_file (str): COCO ground truth of the evaluated split.
        classes (Sequence[str]): Class names in label order (the predictions' labels index them).

    Returns:
        dict: ``mAP_50`` (0 when no class has ground truth) and ``AP50/<class>`` (NaN for a class
        without ground truth), in [0, 1].

    Raises:
        ValueError: When a class is missing from the annotation file's categories.
    """
    preds = load_predictions(pred_file)  # allow-listed: a crafted .pkl cannot run code
    gts, cat_names = load_coco_gt(ann_file)
    missing = [n for n in classes if n not in cat_names]
    if missing:
        raise ValueError(f'{ann_file}: categories {missing} are missing')
    to_gt_label = np.array([cat_names.index(n) for n in classes], dtype=np.int64)
    dets = []
    for p in preds:
        inst = p['pred_instances']
        labels = np.asarray(inst['labels'], dtype=np.int64).reshape(-1)
        dets.append(ImagePred(img_id=int(p['img_id']),
                              bboxes=np.asarray(inst['bboxes'], dtype=np.float64).reshape(-1, 4),
                              scores=np.asarray(inst['scores'], dtype=np.float64).reshape(-1),
                              labels=to_gt_label[labels]))
    ap50 = ap_per_class(match_coco(gts, dets, len(cat_names), iou_thrs=(0.5, )))[0]
    out = {'mAP_50': 0.0}
    out.update({f'AP50/{n}': float(ap50[cat_names.index(n)]) for n in classes})
    mean = nanmean(ap50)
    out['mAP_50'] = 0.0 if np.isnan(mean) else mean
    return out


def rare_classes_of(ann_file: str, thr: float = 0.05,
                    classes: Sequence[str] = CLASSES) -> List[str]:
    """Classes whose share of the boxes in ``ann_file`` is below ``thr`` (as BoxCopyPaste does)."""
    from spinexr.datasets.transforms.copy_paste import coco_box_shares
    with open(ann_file) as f:
        shares = coco_box_shares(json.load(f), classes)
    return [n for n, s in zip(classes, shares) if s < thr]


def summarize(results: Dict[str, List[Dict[str, float]]],
              rare: Sequence[str]) -> List[Dict[str, object]]:
    """Mean and standard deviation (ddof=1) over seeds for every config.

    Args:
        results (dict): config name -> list of per-seed metric dicts.
        rare (Sequence[str]): Rare class names to report.

    Returns:
        list[dict]: One row per config: ``name``, ``n``, and ``(mean, std)`` pairs for ``mAP_50``,
        ``rare_mAP_50`` (mean AP over the rare classes with ground truth) and ``AP50/<rare>``.
    """
    rows = []
    for name, runs in results.items():
        row: Dict[str, object] = dict(name=name, n=len(runs))
        keys = ['mAP_50'] + [f'AP50/{c}' for c in rare]
        per_run = {k: [r[k] for r in runs] for k in keys}
        per_run['rare_mAP_50'] = [
            float(np.nanmean([r[f'AP50/{c}'] for c in rare])) if rare and not all(
                np.isnan(r[f'AP50/{c}']) for c in rare) else float('nan') for r in runs]
        for k, vals in per_run.items():
            v = np.asarray(vals, dtype=np.float64)
            std = float(np.nanstd(v, ddof=1)) if np.sum(~np.isnan(v)) > 1 else float('nan')
            row[k] = (float(np.nanmean(v)) if (~np.isnan(v)).any() else float('nan'), std)
        rows.append(row)
    return rows


def format_table(rows: List[Dict[str, object]], rare: Sequence[str]) -> str:
    """Markdown table of :func:`summarize` rows, in percent, ``mean ± std``."""

    def cell(ms: Tuple[float, float]) -> str:
        m, s = ms
        if np.isnan(m):
            return 'n/a'
        return f'{100 * m:.1f}' + ('' if np.isnan(s) else f' ± {100 * s:.1f}')

    head = ['config', 'seeds', 'mAP@0.5', 'rare mAP@0.5', 'Δ rare vs previous'] + [
        f'AP50 {c}' for c in rare]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    prev = None
    for row in rows:
        rm = row['rare_mAP_50'][0]
        delta = 'n/a' if prev is None or np.isnan(rm) or np.isnan(prev) else \
            f'{100 * (rm - prev):+.1f}'
        lines.append('| ' + ' | '.join(
            [str(row['name']), str(row['n']), cell(row['mAP_50']), cell(row['rare_mAP_50']), delta]
            + [cell(row[f'AP50/{c}']) for c in rare]) + ' |')
        prev = rm
    return '\n'.join(lines)
