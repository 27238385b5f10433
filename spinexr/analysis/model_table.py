"""Evaluate several trained detectors on one test split and write one comparison table.

Each model is given by a config and a checkpoint (or a work dir holding both, as written by
``tools/train.py``). Every model is run on the same test split (``data_root`` + ``ann_file``), its
predictions are scored with :func:`spinexr.evaluation.det_summary.summarize_detections` (the same
code as :class:`~spinexr.evaluation.metrics.VinDrDetMetric`), and the table gets:

mAP@0.5 with a bootstrap 95% CI over studies, mAP@0.5:0.95, VOC-101 mAP, per-class AP@0.5, the
FROC mean sensitivity with its study-bootstrap CI and the sensitivity at 1 false positive per image
(:mod:`spinexr.evaluation.froc`; curves in ``froc.png``), mean precision/recall at the operating
score, and the cost columns of :mod:`spinexr.analysis.cost`: parameters, GFLOPs at 640x640,
measured inference images/s (batch 1, on the machine that runs the comparison) and the training
time from the work dir. :mod:`spinexr.analysis.report` writes the files.

The detector is built by :func:`spinexr.apis.inference.build_detector` (the one loading route of
the package), as trained (``prepare=False``: no Conv+BN fusing), so parameters count as trained.

Classifier rows (AUROC, sensitivity, specificity, F1) join through ``extra_rows`` of
:func:`~spinexr.analysis.report.write_comparison`: any dict with a ``model`` key and some of
:data:`~spinexr.analysis.report.CLASSIFIER_COLUMNS`.
"""
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..apis.inference import build_detector
from ..evaluation.coco_ap import load_coco_gt
from ..evaluation.det_summary import froc_curve_fields, summarize_detections
from ..utils.data_root import resolve_data_root
from ..utils.paths import config_path
from .cost import device_description, model_complexity, predict_split, training_time_s
from .report import write_comparison


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


def _load_cfg(config: str, data_root: Optional[str], ann_file: str):
    """Load a config, resolve its data root and point its test dataloader at ``ann_file``.

    ``config`` is a file or a shipped config name (:func:`spinexr.utils.paths.config_path`).
    ``data_root`` (if given) becomes the config's ``data_root`` and every ``{data_root}`` path is
    resolved (:func:`spinexr.utils.data_root.resolve_data_root`, as the runner does); the test
    dataset is then set to ``data_root`` even where a config wrote its root literally (e.g. a
    config dumped by a run), so every model of the table sees the same images.
    """
    from mmengine.config import Config
    cfg = resolve_data_root(Config.fromfile(config_path(config)), data_root)
    ds = cfg.test_dataloader.dataset
    if data_root is not None:
        ds.data_root = data_root
    ds.ann_file = ann_file
    cfg.test_dataloader.batch_size = 1
    cfg.test_dataloader.num_workers = min(2, int(cfg.test_dataloader.get('num_workers', 0)))
    cfg.test_dataloader.persistent_workers = False
    return cfg


def _gt_file(cfg, ann_file: str) -> str:
    """The test annotation file of a config from :func:`_load_cfg` (``ann_file`` if absolute)."""
    root = cfg.test_dataloader.dataset.get('data_root', '') or ''
    return ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)


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
    from mmengine.registry import init_default_scope
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cfg = _load_cfg(spec.config, data_root, ann_file)
    gts, names = load_coco_gt(_gt_file(cfg, ann_file))
    model, _, _ = build_detector(cfg, spec.checkpoint, device, prepare=False)
    init_default_scope(cfg.get('default_scope', 'mmdet'))  # the test dataloader's registries
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
        gt_file = _gt_file(_load_cfg(specs[0].config, data_root, ann_file), ann_file)
        fused = fused_row_from_members(preds, gt_file, n_bootstrap=n_bootstrap, **ensemble)
        rows.append(dict(fused, device=rows[0].get('device')))
    paths = write_comparison(rows, out_dir, extra_rows=extra_rows, footnotes=footnotes)
    return rows, paths


__all__ = [
    'ModelSpec', 'find_checkpoint', 'find_config', 'spec_from_work_dir', 'evaluate_model',
    'run_comparison_table'
]
