"""The comparison table on disk: Markdown, CSV and JSON, the per-class AP chart and FROC curves
(:func:`plot_froc`).

Rows are plain dicts (one per model) as :func:`spinexr.analysis.model_table.evaluate_model` builds
them; metric values are fractions and print as percentages. Classifier rows (AUROC, sensitivity,
specificity, F1) join through ``extra_rows`` of :func:`write_comparison`: any dict with a
``model`` key and some of :data:`CLASSIFIER_COLUMNS`.
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..evaluation.det_summary import class_key
from ..evaluation.froc import FROC_FP_RATES

#: Detection columns of the table, in order (per-class AP@0.5 columns follow ``voc101_mAP``).
DET_COLUMNS = ('mAP_50', 'mAP_50_ci', 'mAP', 'voc101_mAP')
#: FROC columns, after the per-class APs (mean sensitivity, its CI, sensitivity at 1 FP/image).
FROC_COLUMNS = ('FROC_mean', 'FROC_mean_ci', 'FROC_fp_1')
#: Cost columns, after the FROC columns.
COST_COLUMNS = ('precision', 'recall', 'params_M', 'GFLOPs_640', 'images_per_s', 'train_time_min')
#: Columns that classifier rows fill (added by the classifier chain of the main job).
CLASSIFIER_COLUMNS = ('AUROC', 'sensitivity', 'specificity', 'F1')


def _fmt(value: object, pct: bool = False) -> str:
    """One table cell: ``n/a`` for a missing or non-finite number, percent with one decimal
    (``pct``), else 3 significant digits (whole numbers from 100 on)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return 'n/a'
    if isinstance(value, (float, np.floating)):
        return f'{100 * value:.1f}' if pct else f'{value:.3g}' if abs(value) < 100 else \
            f'{value:.0f}'
    return str(value)


def table_columns(class_names: Sequence[str], with_classifier: bool = False) -> List[str]:
    """Column keys of the table in order."""
    cols = ['model', *DET_COLUMNS, *[f'AP50_{class_key(n)}' for n in class_names],
            *FROC_COLUMNS, *COST_COLUMNS]
    if with_classifier:
        cols += list(CLASSIFIER_COLUMNS)
    return cols + ['notes']


_PCT_PREFIXES = ('mAP', 'AP50_', 'voc101', 'FROC_', 'precision', 'recall', *CLASSIFIER_COLUMNS)
#: Columns printed as text (the CI columns are ``low-high`` strings).
_TEXT_COLUMNS = ('model', 'notes', 'mAP_50_ci', 'FROC_mean_ci')


def write_comparison(rows: Sequence[Dict[str, object]],
                     out_dir: str,
                     extra_rows: Sequence[Dict[str, object]] = (),
                     title: str = 'Detector comparison',
                     footnotes: Sequence[str] = ()) -> Dict[str, str]:
    """Write the table as Markdown + CSV, the per-class AP bar chart and the FROC curves.

    Args:
        rows (Sequence[dict]): Detector rows from
            :func:`~spinexr.analysis.model_table.evaluate_model`.
        out_dir (str): Output folder.
        extra_rows (Sequence[dict]): More rows, e.g. classifiers with ``model`` and some of
            :data:`CLASSIFIER_COLUMNS` (fractions); missing cells print as ``-``.
        title (str): Markdown title.
        footnotes (Sequence[str]): Lines appended under the table.

    Returns:
        dict[str, str]: Paths of ``markdown``, ``csv``, ``png``, ``json`` and, when a row has
        ``froc_curve_fps``/``froc_curve_sens`` (as
        :func:`~spinexr.analysis.model_table.evaluate_model` writes), ``froc_png``.
    """
    os.makedirs(out_dir, exist_ok=True)
    names = next((r['class_names'] for r in rows if 'class_names' in r), [])
    with_cls = any(any(c in r for c in CLASSIFIER_COLUMNS) for r in [*rows, *extra_rows])
    cols = table_columns(names, with_cls)
    all_rows = [dict(r) for r in rows] + [dict(r) for r in extra_rows]
    for r in all_rows:
        for key in ('mAP_50', 'FROC_mean'):
            if f'{key}_ci_low' in r:
                r[f'{key}_ci'] = (f'{_fmt(r[f"{key}_ci_low"], True)}-'
                                  f'{_fmt(r[f"{key}_ci_high"], True)}')
    # CSV: raw numbers (fractions), every key in the rows
    froc_csv = [f'FROC_fp_{rate:g}' for rate in FROC_FP_RATES if rate != 1] + [
        'FROC_mean_ci_low', 'FROC_mean_ci_high', 'FROC_fp_1_ci_low', 'FROC_fp_1_ci_high']
    csv_keys = [c for c in cols if c not in ('mAP_50_ci', 'FROC_mean_ci')] + [
        'mAP_50_ci_low', 'mAP_50_ci_high', *froc_csv, 'device', 'num_test_images']
    csv_path = osp.join(out_dir, 'comparison.csv')
    with open(csv_path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=csv_keys, extrasaction='ignore')
        w.writeheader()
        for r in all_rows:
            w.writerow({k: ('' if r.get(k) is None else r.get(k)) for k in csv_keys})
    header = {'mAP_50': 'mAP@0.5', 'mAP_50_ci': '95% CI', 'mAP': 'mAP@0.5:0.95',
              'voc101_mAP': 'VOC-101 mAP', 'params_M': 'params (M)', 'GFLOPs_640': 'GFLOPs@640',
              'images_per_s': 'img/s', 'train_time_min': 'train (min)',
              'precision': 'P@thr', 'recall': 'R@thr', 'FROC_mean': 'FROC mean',
              'FROC_mean_ci': 'FROC 95% CI', 'FROC_fp_1': 'sens@1FP'}
    for n in names:
        header[f'AP50_{class_key(n)}'] = n
    md = [f'# {title}', '',
          '| ' + ' | '.join(header.get(c, c) for c in cols) + ' |',
          '|' + '|'.join('---' for _ in cols) + '|']
    for r in all_rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c not in r:
                cells.append('-')
            elif c in _TEXT_COLUMNS:
                cells.append(str(v) if v not in (None, '') else '')
            else:
                cells.append(_fmt(v, pct=c.startswith(_PCT_PREFIXES)))
        md.append('| ' + ' | '.join(cells) + ' |')
    md += ['', 'AP, precision and recall in %. '
           'mAP@0.5, mAP@0.5:0.95 and per-class AP@0.5: COCO protocol (pycocotools rules, '
           '101 recall points, 100 detections per image and class); VOC-101 mAP: the VinDr '
           'paper protocol (VOC matching, 101 recall points). 95% CI: percentile bootstrap over '
           'test studies (all views of a drawn study together). P/R@thr: mean over classes at '
           'box score >= the operating threshold, IoU 0.5. FROC mean: lesion sensitivity (%) '
           'averaged over 0.125, 0.25, 0.5, 1, 2, 4, 8 false positives per image, all classes '
           'pooled, false positives per image over all test images (normal ones included), a '
           'hit = right class, IoU >= 0.5, one hit per lesion, every detection counted; its 95% '
           'CI resamples test studies; sens@1FP: sensitivity at 1 false positive per image '
           '(docs/comparison.md, FROC). GFLOPs for one 640x640 input. '
           'img/s: batch 1, model only (no data loading).']
    devices = sorted({str(r['device']) for r in rows if r.get('device')})
    if devices:
        md.append(f'Timings measured on: {"; ".join(devices)}.')
    n_img = sorted({r['num_test_images'] for r in rows if 'num_test_images' in r})
    if n_img:
        md.append(f'Test images: {", ".join(str(n) for n in n_img)}.')
    md += [str(f) for f in footnotes]
    md_path = osp.join(out_dir, 'comparison.md')
    with open(md_path, 'w') as f:
        f.write('\n'.join(md) + '\n')
    json_path = osp.join(out_dir, 'comparison.json')
    with open(json_path, 'w') as f:
        json.dump(all_rows, f, indent=1, default=float)
    png_path = osp.join(out_dir, 'per_class_ap.png')
    plot_per_class_ap(rows, names, png_path)
    paths = dict(markdown=md_path, csv=csv_path, png=png_path, json=json_path)
    curves = {str(r['model']): (np.asarray(r['froc_curve_fps'], dtype=np.float64),
                                np.asarray(r['froc_curve_sens'], dtype=np.float64))
              for r in all_rows if 'froc_curve_fps' in r and 'froc_curve_sens' in r}
    if curves:
        paths['froc_png'] = plot_froc(curves, osp.join(out_dir, 'froc.png'),
                                      title='FROC (all classes pooled, IoU 0.5)')
    return paths


def plot_per_class_ap(rows: Sequence[Dict[str, object]], class_names: Sequence[str],
                      path: str) -> None:
    """Grouped bar chart of per-class COCO AP@0.5 (one bar per model), saved as PNG."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(class_names) + 2), 4.0))
    n = max(len(rows), 1)
    width = 0.8 / n
    x = np.arange(len(class_names))
    for i, r in enumerate(rows):
        vals = [r.get(f'AP50_{class_key(c)}') for c in class_names]
        vals = [100 * v if isinstance(v, float) and np.isfinite(v) else 0.0 for v in vals]
        ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=str(r['model']))
    ax.set_xticks(x)
    ax.set_xticklabels(class_names, rotation=25, ha='right')
    ax.set_ylabel('AP@0.5 (%)')
    ax.set_title('Per-class AP@0.5 (COCO protocol)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_froc(curves: Dict[str, Tuple[np.ndarray, np.ndarray]], out_file: str,
              rates: Sequence[float] = FROC_FP_RATES, title: str = 'FROC') -> str:
    """Draw FROC curves (log-scaled false positives per image) into a PNG.

    Args:
        curves (dict): ``label -> (fps, sensitivity)`` as returned by
            :func:`~spinexr.evaluation.froc.froc_curve`.
        out_file (str): PNG path.
        rates (Sequence[float]): Rates marked on the x axis.
        title (str): Plot title.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo, hi = min(rates) / 2, max(rates) * 2
    for label, (fps, sens) in curves.items():
        if not np.any(np.isfinite(sens)):
            continue
        x = np.clip(fps, lo, None)
        ax.step(x, 100.0 * sens, where='post', label=label)
    ax.set_xscale('log')
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 100)
    ax.set_xticks(list(rates))
    ax.set_xticklabels([f'{r:g}' for r in rates])
    ax.set_xlabel('false positives per image')
    ax.set_ylabel('sensitivity (%)')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
    return out_file


__all__ = [
    'DET_COLUMNS', 'FROC_COLUMNS', 'COST_COLUMNS', 'CLASSIFIER_COLUMNS', 'table_columns',
    'write_comparison', 'plot_per_class_ap', 'plot_froc'
]
