"""Evaluate several trained detectors on one test split and write one comparison table.

Each model is given by a config and a checkpoint (or a work dir holding both, as written by
``tools/train.py``). Every model is run on the same test split (``data_root`` + ``ann_file``), its
predictions are scored with :func:`spinexr.evaluation.det_summary.summarize_detections` (the same
code as :class:`~spinexr.evaluation.metrics.VinDrDetMetric`), and the table gets:

mAP@0.5 with a bootstrap 95% CI over studies, mAP@0.5:0.95, VOC-101 mAP, per-class AP@0.5, the
FROC mean sensitivity with its study-bootstrap CI and the sensitivity at 1 false positive per image
(:mod:`spinexr.evaluation.froc`; curves in ``froc.png``), mean precision/recall at the operating
score, parameters, GFLOPs at 640x640, measured inference images/s
(batch 1, on the machine that runs the comparison) and the training time from the work dir.

Classifier rows (AUROC, sensitivity, specificity, F1) join through ``extra_rows`` of
:func:`write_comparison`: any dict with a ``model`` key and some of :data:`CLASSIFIER_COLUMNS`.
"""
import csv
import glob
import json
import os
import os.path as osp
import platform
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..utils.data_root import resolve_data_root
from .coco_ap import ImageGT, ImagePred, load_coco_gt
from .det_summary import class_key, froc_matching, summarize_detections
from .froc import FROC_FP_RATES, compact_curve, froc_curve, plot_froc

#: Detection columns of the table, in order (per-class AP@0.5 columns follow ``voc101_mAP``).
DET_COLUMNS = ('mAP_50', 'mAP_50_ci', 'mAP', 'voc101_mAP')
#: FROC columns, after the per-class APs (mean sensitivity, its CI, sensitivity at 1 FP/image).
FROC_COLUMNS = ('FROC_mean', 'FROC_mean_ci', 'FROC_fp_1')
#: Cost columns, after the FROC columns.
COST_COLUMNS = ('precision', 'recall', 'params_M', 'GFLOPs_640', 'images_per_s', 'train_time_min')
#: Columns that classifier rows fill (the classification issue adds these rows).
CLASSIFIER_COLUMNS = ('AUROC', 'sensitivity', 'specificity', 'F1')


@dataclass
class ModelSpec:
    """One model to compare.

    Attributes:
        name (str): Row label.
        config (str): Config file.
        checkpoint (str): Checkpoint file.
        work_dir (str, optional): Training work dir (for the training time).
        notes (str): Free text for the table notes (e.g. "CPU demo: 300 iterations").
    """
    name: str
    config: str
    checkpoint: str
    work_dir: Optional[str] = None
    notes: str = ''


def find_checkpoint(work_dir: str) -> str:
    """The checkpoint a work dir points to (``last_checkpoint``), else its newest ``.pth``.

    Raises:
        FileNotFoundError: If the work dir holds no checkpoint.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        path = open(last).read().strip()
        if osp.isfile(path):
            return path
        local = osp.join(work_dir, osp.basename(path))
        if osp.isfile(local):
            return local
    ckpts = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime)
    if not ckpts:
        raise FileNotFoundError(f'no checkpoint (*.pth or last_checkpoint) in {work_dir}')
    return ckpts[-1]


def find_config(work_dir: str) -> str:
    """The config the Runner dumped into a work dir (the only top-level ``*.py``).

    Raises:
        FileNotFoundError: If there is none or more than one.
    """
    cfgs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(cfgs) != 1:
        raise FileNotFoundError(f'expected exactly one config *.py in {work_dir}, found {cfgs}; '
                                'pass config and checkpoint explicitly')
    return cfgs[0]


def spec_from_work_dir(work_dir: str, name: Optional[str] = None, notes: str = '') -> ModelSpec:
    """Build a :class:`ModelSpec` from a ``tools/train.py`` work dir."""
    return ModelSpec(name=name or osp.basename(osp.normpath(work_dir)),
                     config=find_config(work_dir), checkpoint=find_checkpoint(work_dir),
                     work_dir=work_dir, notes=notes)


_LOG_TIME = re.compile(r'^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})')


def training_time_s(work_dir: Optional[str]) -> Optional[float]:
    """Training wall time of a work dir, in seconds.

    ``train_time.json`` (``{"seconds": ...}``, written by ``tools/run_comparison.py``) wins;
    otherwise the span between the first and last time stamp of the newest mmengine log
    (``<timestamp>/<timestamp>.log``), which includes validation and checkpoint saving.

    Returns:
        float | None: Seconds, or ``None`` if unknown.
    """
    if not work_dir or not osp.isdir(work_dir):
        return None
    jf = osp.join(work_dir, 'train_time.json')
    if osp.isfile(jf):
        return float(json.loads(open(jf).read())['seconds'])
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)
    for log in reversed(logs):
        stamps = []
        with open(log, errors='replace') as f:
            for line in f:
                m = _LOG_TIME.match(line)
                if m:
                    stamps.append(m.group(1))
        train_markers = ('Epoch(train)', 'Iter(train)', 'Checkpoints will be saved to')
        if len(stamps) >= 2 and any(m in ln for ln in open(log, errors='replace')
                                    for m in train_markers):
            fmt = '%Y/%m/%d %H:%M:%S'
            return (datetime.strptime(stamps[-1], fmt) -
                    datetime.strptime(stamps[0], fmt)).total_seconds()
    return None


def device_description(device: str) -> str:
    """Human-readable name of the device the timings were taken on."""
    if device.startswith('cuda'):
        return f'GPU {torch.cuda.get_device_name(torch.device(device))}'
    return (f'CPU {platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads')


def _load_cfg(config: str, data_root: Optional[str], ann_file: str):
    """Load a config, resolve its data root and point its test dataloader at ``ann_file``.

    ``data_root`` (if given) becomes the config's ``data_root`` and every ``{data_root}`` path is
    resolved (:func:`spinexr.utils.data_root.resolve_data_root`, as the runner does); the test
    dataset is then set to ``data_root`` even where a config wrote its root literally (e.g. a
    config dumped by a run), so every model of the table sees the same images.
    """
    from mmengine.config import Config
    cfg = resolve_data_root(Config.fromfile(config), data_root)
    ds = cfg.test_dataloader.dataset
    if data_root is not None:
        ds.data_root = data_root
    ds.ann_file = ann_file
    cfg.test_dataloader.batch_size = 1
    cfg.test_dataloader.num_workers = min(2, int(cfg.test_dataloader.get('num_workers', 0)))
    cfg.test_dataloader.persistent_workers = False
    return cfg


def build_detector(cfg, checkpoint: Optional[str], device: str = 'cpu') -> torch.nn.Module:
    """Build the detector of a config (registering spinexr/mmdet) and load a checkpoint."""
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    from mmdet.registry import MODELS
    from spinexr.engine.checkpoint import load_checkpoint
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    return model.to(device).eval()


def predict_split(model: torch.nn.Module, cfg, device: str = 'cpu',
                  warmup: int = 2) -> Tuple[List[ImagePred], float]:
    """Run the model over the test dataloader of ``cfg`` (batch 1).

    Args:
        model (torch.nn.Module): Detector in eval mode.
        cfg (Config): Config with the test dataloader.
        device (str): Device of the model.
        warmup (int): Images excluded from the timing.

    Returns:
        tuple[list[ImagePred], float]: Predictions (original pixels) and images/s of
        ``model.test_step`` (pre-processing, forward, post-processing; no data loading).
    """
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    preds: List[ImagePred] = []
    seconds, timed = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            outs = model.test_step(batch)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= warmup:
                seconds += time.perf_counter() - t0
                timed += len(outs)
            for ds in outs:
                pi = ds.pred_instances
                preds.append(
                    ImagePred(img_id=int(ds.img_id),
                              bboxes=pi.bboxes.cpu().numpy().astype(np.float64),
                              scores=pi.scores.cpu().numpy().astype(np.float64),
                              labels=pi.labels.cpu().numpy().astype(np.int64)))
    return preds, (timed / seconds if seconds > 0 else float('nan'))


def model_complexity(model: torch.nn.Module, img_size: int = 640,
                     device: str = 'cpu') -> Tuple[float, Optional[float], str]:
    """Parameters and GFLOPs of one ``img_size`` x ``img_size`` image.

    Counting follows mmdet's ``tools/analysis_tools/get_flops.py`` (mmengine's jit-trace counter on
    the ``tensor``-mode forward, one multiply-add = one FLOP). Custom ops without a counter (e.g.
    multi-scale deformable attention) count as zero; the note says so. The input carries one
    ground-truth box because some ``tensor``-mode forwards need it (mmdet's ``SparseRoIHead`` runs
    its training-time matching there, so mmdet's own script fails on Sparse R-CNN); the note says
    when that matching is part of the count.

    Returns:
        tuple[float, float | None, str]: Millions of parameters, GFLOPs or ``None``, note.
    """
    from functools import partial

    from mmengine.analysis import get_model_complexity_info
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    shape = (img_size, img_size)
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                         batch_input_shape=shape, scale_factor=(1.0, 1.0)))
    quarter, half = img_size / 4, img_size / 2
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[quarter, quarter, quarter + half, quarter + half]], device=device),
        labels=torch.zeros(1, dtype=torch.long, device=device))
    data = dict(inputs=[torch.zeros(3, *shape, dtype=torch.uint8, device=device)],
                data_samples=[sample])
    forward = model.forward
    try:
        with torch.no_grad():
            data = model.data_preprocessor(data, False)
            model.forward = partial(forward, data_samples=data['data_samples'])
            out = get_model_complexity_info(model, None, inputs=data['inputs'],
                                            show_table=False, show_arch=False)
        gflops = float(out['flops']) / 1e9
        note = ''
        if type(model).__name__ in ('DINO', 'DeformableDETR'):
            note = 'deformable attention not counted'
        elif type(getattr(model, 'roi_head', None)).__name__ == 'SparseRoIHead':
            note = "GFLOPs include mmdet's tensor-mode box matching (1 box)"
        return params_m, gflops, note
    except Exception as exc:  # noqa: BLE001 - report why the count failed
        return params_m, None, f'GFLOPs n/a: {type(exc).__name__}: {str(exc)[:80]}'
    finally:
        model.forward = forward


def evaluate_model(spec: ModelSpec,
                   data_root: Optional[str],
                   ann_file: str = 'annotations/test.json',
                   device: Optional[str] = None,
                   n_bootstrap: int = 1000,
                   score_thr: float = 0.5,
                   flops_size: int = 640,
                   count_flops: bool = True,
                   preds_out: Optional[Dict[str, list]] = None) -> Dict[str, object]:
    """Evaluate one model on the test split.

    Args:
        spec (ModelSpec): The model.
        data_root (str, optional): Dataset root (``None``: the config's).
        ann_file (str): Test annotation file, relative to ``data_root``.
        device (str, optional): ``'cuda'``/``'cpu'``; default: CUDA when available.
        n_bootstrap (int): Bootstrap resamples for the mAP@0.5 interval.
        score_thr (float): Operating score of precision/recall.
        flops_size (int): Square input size of the complexity count.
        count_flops (bool): Count GFLOPs (takes a few seconds per model on CPU).
        preds_out (dict, optional): If given, ``preds_out[spec.name]`` receives the detections
            (``list[ImagePred]``), e.g. for a fused ensemble row.

    Returns:
        dict: One table row (metrics are fractions; ``params_M``, ``GFLOPs_640``,
        ``images_per_s``, ``train_time_min``, ``device``, ``notes``; the pooled FROC curve's
        corners as ``froc_curve_fps`` / ``froc_curve_sens`` lists).
    """
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cfg = _load_cfg(spec.config, data_root, ann_file)
    root = cfg.test_dataloader.dataset.get('data_root', '') or ''
    gt_file = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
    gts, names = load_coco_gt(gt_file)
    model = build_detector(cfg, spec.checkpoint, device)
    preds, ips = predict_split(model, cfg, device)
    if preds_out is not None:
        preds_out[spec.name] = preds
    seen = {p.img_id for p in preds}
    gts = [g for g in gts if g.img_id in seen]
    row: Dict[str, object] = dict(model=spec.name)
    row.update(summarize_detections(gts, preds, names, score_thr=score_thr,
                                    n_bootstrap=n_bootstrap))
    row.update(froc_curve_fields(gts, preds, len(names)))
    notes = [spec.notes] if spec.notes else []
    if count_flops:
        params_m, gflops, note = model_complexity(model, flops_size, device)
        if note:
            notes.append(note)
    else:
        params_m, gflops = sum(p.numel() for p in model.parameters()) / 1e6, None
        notes.append('GFLOPs not counted')
    tt = training_time_s(spec.work_dir)
    row.update(params_M=params_m, GFLOPs_640=gflops, images_per_s=ips,
               train_time_min=None if tt is None else tt / 60.0,
               device=device_description(device), num_test_images=len(gts),
               class_names=list(names), notes='; '.join(n for n in notes if n))
    return row


def froc_curve_fields(gts: Sequence[ImageGT], preds: Sequence[ImagePred],
                      num_classes: int) -> Dict[str, List[float]]:
    """The pooled FROC curve's corners as row fields, for the ``froc.png`` of
    :func:`write_comparison` (any row built from predictions, e.g. a fused ensemble, can add them).

    Args:
        gts (Sequence[ImageGT]): Ground truth of every evaluated image.
        preds (Sequence[ImagePred]): Detections (all of them are matched, no ``max_dets`` cap).
        num_classes (int): Number of classes.

    Returns:
        dict: ``froc_curve_fps`` and ``froc_curve_sens`` lists (:func:`froc.compact_curve`).
    """
    fps, sens = compact_curve(*froc_curve(froc_matching(gts, preds, num_classes)))
    return dict(froc_curve_fps=fps.tolist(), froc_curve_sens=sens.tolist())


def _fmt(value: object, pct: bool = False) -> str:
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
        rows (Sequence[dict]): Detector rows from :func:`evaluate_model`.
        out_dir (str): Output folder.
        extra_rows (Sequence[dict]): More rows, e.g. classifiers with ``model`` and some of
            :data:`CLASSIFIER_COLUMNS` (fractions); missing cells print as ``-``.
        title (str): Markdown title.
        footnotes (Sequence[str]): Lines appended under the table.

    Returns:
        dict[str, str]: Paths of ``markdown``, ``csv``, ``png``, ``json`` and, when a row has
        ``froc_curve_fps``/``froc_curve_sens`` (as :func:`evaluate_model` writes), ``froc_png``.
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


def run_comparison_table(specs: Sequence[ModelSpec],
                         out_dir: str,
                         data_root: Optional[str] = None,
                         ann_file: str = 'annotations/test.json',
                         device: Optional[str] = None,
                         n_bootstrap: int = 1000,
                         score_thr: float = 0.5,
                         count_flops: bool = True,
                         extra_rows: Sequence[Dict[str, object]] = (),
                         footnotes: Sequence[str] = (),
                         ensemble: Optional[Dict[str, object]] = None
                         ) -> Tuple[List[dict], Dict[str, str]]:
    """Evaluate every model on the same split and write the table.

    With ``ensemble`` (keyword arguments of
    :func:`spinexr.apis.detector_ensemble.fused_row_from_members`, e.g. ``dict(method='wbf')``)
    and at least two models, a row of their fused detections (equal weights, fixed thresholds)
    follows the detector rows.

    Returns:
        tuple[list[dict], dict[str, str]]: The detector rows and the written file paths.
    """
    preds: Dict[str, list] = {}
    rows = [
        evaluate_model(s, data_root, ann_file, device=device, n_bootstrap=n_bootstrap,
                       score_thr=score_thr, count_flops=count_flops, preds_out=preds)
        for s in specs
    ]
    if ensemble is not None and len(preds) >= 2:
        from spinexr.apis.detector_ensemble import fused_row_from_members
        cfg = _load_cfg(specs[0].config, data_root, ann_file)
        root = cfg.test_dataloader.dataset.get('data_root', '') or ''
        gt_file = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
        fused = fused_row_from_members(preds, gt_file, n_bootstrap=n_bootstrap, **ensemble)
        rows.append(dict(fused, device=rows[0].get('device')))
    paths = write_comparison(rows, out_dir, extra_rows=extra_rows, footnotes=footnotes)
    return rows, paths


__all__ = [
    'ModelSpec', 'find_checkpoint', 'find_config', 'spec_from_work_dir', 'training_time_s',
    'evaluate_model', 'froc_curve_fields', 'model_complexity', 'write_comparison',
    'plot_per_class_ap', 'run_comparison_table', 'DET_COLUMNS', 'FROC_COLUMNS', 'COST_COLUMNS',
    'CLASSIFIER_COLUMNS', 'ImageGT'
]
