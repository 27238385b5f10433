"""The class-imbalance ablation: train/test a ladder of configs over seeds and tabulate AP@0.5.

Each (config, seed) run goes through the project's own ``tools/train.py`` and ``tools/test.py`` in a
subprocess, on a copy of the config prepared by :func:`prepare_config` (data root, seed, profile).
The last checkpoint is evaluated (no checkpoint is chosen on the evaluated split), and the dumped
predictions are scored with pycocotools: overall mAP@0.5 (COCO, 101 recall points, maxDets 100)
and AP@0.5 per class. :func:`summarize` reports mean +- standard deviation over seeds.
"""
import contextlib
import io
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from spinexr.datasets.metainfo import CLASSES
from spinexr.utils.safe_pickle import load_predictions
from spinexr.utils.data_root import resolve_data_root

#: The ladder of configs/ablation/, in order (each step adds one component to the previous).
DEFAULT_CONFIGS = (
    'configs/ablation/yolo11n_a0_baseline_vindr-640.py',
    'configs/ablation/yolo11n_a1_std-aug_vindr-640.py',
    'configs/ablation/yolo11n_a2_mixup_vindr-640.py',
    'configs/ablation/yolo11n_a3_copy-paste_vindr-640.py',
    'configs/ablation/yolo11n_a4_focal_vindr-640.py',
    'configs/ablation/yolo11n_a5_class-balanced_vindr-640.py',
)

#: Run profiles. ``full`` keeps the configs' recipe. ``cpu``: 128 px, 8 epochs, batch 8, no
#: workers (YOLO11-n: about 1-2 s per iteration on 2 free CPU cores). ``smoke``: 64 px, 3 epochs on
#: the first 64 training images, only to check that the ladder runs end to end (its numbers carry
#: no information about the components).
PROFILES: Dict[str, dict] = {
    'full': dict(),
    'cpu': dict(img_size=128, max_epochs=8, batch_size=8, num_workers=0, test_batch_size=8,
                log_interval=5),
    'smoke': dict(img_size=64, max_epochs=3, batch_size=8, num_workers=0, test_batch_size=16,
                  log_interval=2, train_indices=64),
}


def _rescale(node, old: int, new: int, key: Optional[str] = None):
    """Recursively rescale image sizes of a YOLO-style config from ``old`` to ``new`` pixels."""
    if isinstance(node, dict):
        return type(node)({k: _rescale(v, old, new, k) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        vals = list(node)
        if len(vals) == 2 and all(isinstance(v, (int, float)) for v in vals):
            if key == 'random_size_range':
                return type(node)(max(32, int(round(v * new / old / 32)) * 32) for v in vals)
            # square sizes that are multiples of half the scale: 640, 1280 (mosaic), -320 (border)
            if (abs(vals[0]) == abs(vals[1]) and vals[0] != 0 and float(vals[0]).is_integer()
                    and int(abs(vals[0])) % (old // 2) == 0):
                return type(node)(int(round(v * new / old)) for v in vals)
        return type(node)(_rescale(v, old, new) for v in vals)
    return node


def prepare_config(cfg: Config,
                   seed: int,
                   data_root: Optional[str] = None,
                   profile: str = 'full',
                   cfg_options: Optional[dict] = None) -> Config:
    """Adapt an ablation config for one run.

    * ``cfg_options`` merged first (as ``--cfg-options`` would be);
    * ``default_scope='mmdet'`` and a ``DistSamplerSeedHook`` when the config lacks them;
    * ``randomness.seed = seed``;
    * ``data_root`` (if given) becomes the config's ``data_root`` and every ``{data_root}`` path
      (datasets, evaluators, ``BoxCopyPaste``) is resolved against it
      (:func:`spinexr.utils.data_root.resolve_data_root`, as the runner does);
    * no validation during training and only the last checkpoint is kept (the ablation evaluates
      the last epoch; choosing a checkpoint on the test split would be leakage);
    * the profile's overrides: image size (mosaic, affine borders, resize, pad, multi-scale range),
      epochs (schedulers, warm-up and the mosaic switch scaled with them), batch size (no gradient
      accumulation), workers, log interval.

    Args:
        cfg (Config): The loaded config (changed in place).
        seed (int): Random seed of the run.
        data_root (str, optional): Dataset root in the converted layout (``None``: the config's).
        profile (str): A key of :data:`PROFILES`.
        cfg_options (dict, optional): Overrides merged into the config first.

    Returns:
        Config: ``cfg``.
    """
    if profile not in PROFILES:
        raise KeyError(f'unknown profile {profile!r}; choose from {sorted(PROFILES)}')
    prof = PROFILES[profile]
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    # Safety nets for configs that do not inherit mmdet's runtime: the registries need the scope,
    # and samplers only change from epoch to epoch when DistSamplerSeedHook calls set_epoch.
    cfg.setdefault('default_scope', 'mmdet')
    hooks = cfg.setdefault('default_hooks', {})
    if 'sampler_seed' not in hooks:
        hooks['sampler_seed'] = dict(type='DistSamplerSeedHook')
    # the prepared file is concrete: every '{data_root}' path resolved against data_root (or the
    # config's own data_root), as the runner would do
    resolve_data_root(cfg, data_root)
    cfg.randomness = dict(seed=int(seed), deterministic=False)

    if 'img_size' in prof:
        old_size = int(cfg.get('img_scale', (640, 640))[0])
        cfg = Config(_rescale(cfg.to_dict(), old_size, prof['img_size']), filename=cfg.filename)
    old_epochs = int(cfg.train_cfg.max_epochs)
    epochs = int(prof.get('max_epochs', old_epochs))
    if epochs != old_epochs:
        def scale(x):
            return int(round(x * epochs / old_epochs))
        cfg.train_cfg.max_epochs = epochs
        for s in cfg.get('param_scheduler', []) or []:
            if not s.get('by_epoch', True):
                continue
            if 'begin' in s:
                s.begin = scale(s.begin) if s.begin < old_epochs else epochs
            if 'end' in s:
                s.end = max(s.get('begin', 0) + 1, scale(s.end) if s.end < old_epochs else epochs)
            if 'T_max' in s:
                s.T_max = s.end - s.get('begin', 0)
        for h in cfg.get('custom_hooks', []) or []:
            if 'switch_epoch' in h:
                h.switch_epoch = max(1, min(epochs - 1, scale(h.switch_epoch)))
            if 'warmup_epochs' in h:  # YOLOParamSchedulerHook
                h.warmup_epochs = max(1.0, h.warmup_epochs * epochs / old_epochs)
    # mmengine validates at the last epoch whatever val_interval says, unless val_begin is later
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1
    cfg.train_cfg.val_begin = cfg.train_cfg.max_epochs + 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=cfg.train_cfg.max_epochs,
                                        max_keep_ckpts=1, save_last=True)
    if 'batch_size' in prof:
        cfg.train_dataloader.batch_size = prof['batch_size']
        if 'accumulative_counts' in cfg.optim_wrapper:
            cfg.optim_wrapper.accumulative_counts = 1
        if 'loss_gain' in cfg.model:
            cfg.model.loss_gain = 1.0
    if 'test_batch_size' in prof:
        for key in ('val_dataloader', 'test_dataloader'):
            cfg[key].batch_size = prof['test_batch_size']
    if 'num_workers' in prof:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[key].num_workers = prof['num_workers']
            cfg[key].persistent_workers = prof['num_workers'] > 0
    if 'train_indices' in prof:
        cfg.train_dataloader.dataset.indices = prof['train_indices']
    if 'log_interval' in prof:
        cfg.default_hooks.logger.interval = prof['log_interval']
    return cfg


def evaluate_predictions(pred_file: str, ann_file: str,
                         classes: Sequence[str] = CLASSES) -> Dict[str, float]:
    """Score mmdet's dumped predictions (``tools/test.py --out``) with pycocotools.

    Args:
        pred_file (str): Pickle of ``DumpDetResults`` (boxes in the annotation's pixels), read
            with :func:`spinexr.utils.safe_pickle.load_predictions` (tensors, numpy arrays and
            containers only; any other pickled object is refused, nothing in it is run).
        ann_file (str): COCO ground truth of the evaluated split.
        classes (Sequence[str]): Class names in label order.

    Returns:
        dict: ``mAP_50`` and ``AP50/<class>`` (NaN for a class without ground truth), in [0, 1].
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    preds = load_predictions(pred_file)  # allow-listed: a crafted .pkl cannot run code
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
    name2cat = {c['name']: c['id'] for c in gt.loadCats(gt.getCatIds())}
    missing = [n for n in classes if n not in name2cat]
    if missing:
        raise ValueError(f'{ann_file}: categories {missing} are missing')
    dets = []
    for p in preds:
        inst = p['pred_instances']
        boxes = np.asarray(inst['bboxes'], dtype=np.float64).reshape(-1, 4)
        for (x1, y1, x2, y2), s, lab in zip(boxes, np.asarray(inst['scores']),
                                            np.asarray(inst['labels'])):
            dets.append(dict(image_id=int(p['img_id']), category_id=name2cat[classes[int(lab)]],
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=float(s)))
    out = {'mAP_50': 0.0}
    out.update({f'AP50/{n}': float('nan') for n in classes})
    if not dets:
        for n in classes:
            if gt.getAnnIds(catIds=[name2cat[n]]):
                out[f'AP50/{n}'] = 0.0
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cat_ids = list(ev.params.catIds)
    for n in classes:
        prec = ev.eval['precision'][0, :, cat_ids.index(name2cat[n]), 0, -1]
        out[f'AP50/{n}'] = float(prec[prec > -1].mean()) if (prec > -1).any() else float('nan')
    out['mAP_50'] = float(max(ev.stats[1], 0.0))
    return out


def rare_classes_of(ann_file: str, thr: float = 0.05,
                    classes: Sequence[str] = CLASSES) -> List[str]:
    """Classes whose share of the boxes in ``ann_file`` is below ``thr`` (as BoxCopyPaste does)."""
    from spinexr.datasets.transforms.copy_paste import coco_box_shares
    with open(ann_file) as f:
        shares = coco_box_shares(json.load(f), classes)
    return [n for n, s in zip(classes, shares) if s < thr]


def run_one(config: str, seed: int, work_dir: str, data_root: Optional[str] = None,
            profile: str = 'full', tools_dir: Optional[str] = None,
            extra_args: Sequence[str] = (),
            cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Train and test one config with one seed; reuse ``metrics.json`` of a finished run.

    Args:
        config (str): Config file.
        seed (int): Seed.
        work_dir (str): Folder of this run (config copy, logs, checkpoint, predictions, metrics).
        data_root (str, optional): Dataset root (see :func:`prepare_config`).
        profile (str): A key of :data:`PROFILES`.
        tools_dir (str, optional): Folder holding ``train.py``/``test.py``; defaults to the
            checkout's ``tools/``.
        extra_args (Sequence[str]): Extra arguments for ``tools/train.py`` (e.g. ``['--amp']``).
        cfg_options (dict, optional): Config overrides (see :func:`prepare_config`).

    Returns:
        dict: Metrics of :func:`evaluate_predictions` plus ``train_s`` / ``test_s``.
    """
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            return json.load(f)
    tools_dir = tools_dir or osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools')
    os.makedirs(work_dir, exist_ok=True)
    cfg = prepare_config(Config.fromfile(config), seed=seed, data_root=data_root, profile=profile,
                         cfg_options=cfg_options)
    cfg_file = osp.join(work_dir, osp.basename(config))
    cfg.dump(cfg_file)
    t0 = time.time()
    _call([sys.executable, osp.join(tools_dir, 'train.py'), cfg_file, '--work-dir', work_dir,
           *extra_args], osp.join(work_dir, 'train.out'))
    t1 = time.time()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    pred_file = osp.join(work_dir, 'predictions.pkl')
    _call([sys.executable, osp.join(tools_dir, 'test.py'), cfg_file, ckpt, '--work-dir',
           osp.join(work_dir, 'test'), '--out', pred_file], osp.join(work_dir, 'test.out'))
    metrics = evaluate_predictions(pred_file, cfg.test_evaluator.ann_file)
    metrics.update(train_s=t1 - t0, test_s=time.time() - t1)
    with open(metrics_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


def _call(cmd: List[str], log_file: str) -> None:
    with open(log_file, 'w') as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log_file) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}); see {log_file}:\n{tail}')


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


def run_ablation(configs: Sequence[str] = DEFAULT_CONFIGS,
                 seeds: Sequence[int] = (0, 1, 2),
                 work_dir: str = 'work_dirs/ablation',
                 data_root: Optional[str] = None,
                 profile: str = 'full',
                 rare_thr: float = 0.05,
                 extra_args: Sequence[str] = (),
                 cfg_options: Optional[dict] = None) -> str:
    """Run every config with every seed and write ``results.json`` and ``table.md``.

    Args:
        configs (Sequence[str]): Config files, in ladder order.
        seeds (Sequence[int]): Seeds.
        work_dir (str): Output folder (``<work_dir>/<config name>/seed<k>/`` per run).
        data_root (str, optional): Dataset root (converted layout).
        profile (str): A key of :data:`PROFILES`.
        rare_thr (float): Box-share threshold defining the rare classes of the table (training
            split of the first config).
        extra_args (Sequence[str]): Extra ``tools/train.py`` arguments.
        cfg_options (dict, optional): Config overrides applied to every run.

    Returns:
        str: The markdown table.
    """
    first = prepare_config(Config.fromfile(configs[0]), seed=0, data_root=data_root,
                           profile=profile, cfg_options=cfg_options)
    ds = first.train_dataloader.dataset
    train_ann = osp.join(ds.get('data_root', ''), ds.ann_file)
    rare = rare_classes_of(train_ann, rare_thr)
    names = [osp.splitext(osp.basename(c))[0] for c in configs]
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in names}
    for seed in seeds:  # seed-outer: a complete ladder exists after the first seed
        for config, name in zip(configs, names):
            m = run_one(config, seed, osp.join(work_dir, name, f'seed{seed}'), data_root=data_root,
                        profile=profile, extra_args=extra_args, cfg_options=cfg_options)
            results[name].append(m)
            print(f'[ablation] {name} seed {seed}: mAP@0.5 {100 * m["mAP_50"]:.1f} '
                  f'({m.get("train_s", 0):.0f} s train)', flush=True)
    table = format_table(summarize(results, rare), rare)
    header = (f'Ablation ({profile} profile, data_root={data_root}, seeds={list(seeds)}); AP@0.5 '
              f'in %, mean ± std over seeds; rare = box share < {rare_thr:g} in {train_ann}; '
              'last-epoch checkpoints evaluated on the config\'s test split.\n\n')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rare=rare, results=results), f, indent=1)
    with open(osp.join(work_dir, 'table.md'), 'w') as f:
        f.write(header + table + '\n')
    return header + table
