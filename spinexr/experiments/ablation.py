"""The class-imbalance ablation: train/test a ladder of configs over seeds and tabulate AP@0.5.

Each (config, seed) run trains and tests in child processes (``python -m spinexr.cli.train`` and
``python -m spinexr.cli.test``, through :func:`spinexr.utils.process.run_command`) on a copy of
the config prepared by :func:`prepare_config` (data root, seed, profile). The last checkpoint is
evaluated (no checkpoint is chosen on the evaluated split), and the dumped predictions are scored
by :func:`spinexr.experiments.ablation_report.evaluate_predictions`: overall mAP@0.5 (COCO rules,
101 recall points, maxDets 100) and AP@0.5 per class; the table reports mean +- standard
deviation over seeds.

Profiles (``full``, ``cpu``, ``smoke``) are those of :data:`spinexr.experiments.profiles.PROFILES`
that :func:`~spinexr.experiments.profiles.profiles_for` gives for ``'ablation'``.
"""
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from spinexr.utils.data_root import resolve_data_root
from spinexr.utils.paths import config_path
from spinexr.utils.process import run_command
from .ablation_report import evaluate_predictions, format_table, rare_classes_of, summarize
from .profiles import get_profile, profiles_for, scale_pipeline_sizes

#: The ladder of configs/ablation/, in order (each step adds one component to the previous).
DEFAULT_CONFIGS = (
    'configs/ablation/yolo11n_a0_baseline_vindr-640.py',
    'configs/ablation/yolo11n_a1_std-aug_vindr-640.py',
    'configs/ablation/yolo11n_a2_mixup_vindr-640.py',
    'configs/ablation/yolo11n_a3_copy-paste_vindr-640.py',
    'configs/ablation/yolo11n_a4_focal_vindr-640.py',
    'configs/ablation/yolo11n_a5_class-balanced_vindr-640.py',
)

#: The ablation's profiles: entries of the one table
#: :data:`spinexr.experiments.profiles.PROFILES`.
PROFILES = profiles_for('ablation')


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
    prof = get_profile(profile, 'ablation')
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

    old_size = int(cfg.get('img_scale', (640, 640))[0])
    if prof.get('img_size') and int(prof['img_size']) != old_size:
        cfg = Config(scale_pipeline_sizes(cfg.to_dict(), int(prof['img_size']) / old_size),
                     filename=cfg.filename)
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
            if 'switch_epoch' in h:  # mmdet's PipelineSwitchHook
                h.switch_epoch = max(1, min(epochs - 1, scale(h.switch_epoch)))
            if h.get('close_epochs'):  # CloseMosaicHook; 0 (never switch) stays 0
                # between 1 and epochs - 1 epochs closed (none when epochs is 1)
                h.close_epochs = min(epochs - 1, max(1, scale(h.close_epochs)))
            if 'warmup_epochs' in h:  # YOLOParamSchedulerHook
                h.warmup_epochs = max(1.0, h.warmup_epochs * epochs / old_epochs)
    # mmengine validates at the last epoch whatever val_interval says, unless val_begin is later
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1
    cfg.train_cfg.val_begin = cfg.train_cfg.max_epochs + 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=cfg.train_cfg.max_epochs,
                                        max_keep_ckpts=1, save_last=True)
    if prof.get('batch_size') is not None:
        cfg.train_dataloader.batch_size = prof['batch_size']
        if 'accumulative_counts' in cfg.optim_wrapper:
            cfg.optim_wrapper.accumulative_counts = 1
        if 'loss_gain' in cfg.model:
            cfg.model.loss_gain = 1.0
    if prof.get('test_batch_size') is not None:
        for key in ('val_dataloader', 'test_dataloader'):
            cfg[key].batch_size = prof['test_batch_size']
    if prof.get('workers') is not None:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[key].num_workers = prof['workers']
            cfg[key].persistent_workers = prof['workers'] > 0
    if prof.get('train_indices') is not None:
        cfg.train_dataloader.dataset.indices = prof['train_indices']
    if prof.get('log_interval') is not None:
        cfg.default_hooks.logger.interval = prof['log_interval']
    return cfg


def run_one(config: str, seed: int, work_dir: str, data_root: Optional[str] = None,
            profile: str = 'full', extra_args: Sequence[str] = (),
            cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Train and test one config with one seed; reuse ``metrics.json`` of a finished run.

    Args:
        config (str): Config file.
        seed (int): Seed.
        work_dir (str): Folder of this run (config copy, logs, checkpoint, predictions, metrics).
        data_root (str, optional): Dataset root (see :func:`prepare_config`).
        profile (str): A key of :data:`PROFILES`.
        extra_args (Sequence[str]): Extra arguments of ``python -m spinexr.cli.train`` (e.g.
            ``['--amp']``).
        cfg_options (dict, optional): Config overrides (see :func:`prepare_config`).

    Returns:
        dict: Metrics of :func:`evaluate_predictions` plus ``train_s`` / ``test_s``.
    """
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    cfg = prepare_config(Config.fromfile(config_path(config)), seed=seed, data_root=data_root,
                         profile=profile, cfg_options=cfg_options)
    cfg_file = osp.join(work_dir, osp.basename(config))
    cfg.dump(cfg_file)
    t0 = time.time()
    run_command('train', [cfg_file, '--work-dir', work_dir, *extra_args],
                log_file=osp.join(work_dir, 'train.out'))
    t1 = time.time()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    pred_file = osp.join(work_dir, 'predictions.pkl')
    run_command('test', [cfg_file, ckpt, '--work-dir', osp.join(work_dir, 'test'), '--out',
                         pred_file], log_file=osp.join(work_dir, 'test.out'))
    metrics = evaluate_predictions(pred_file, cfg.test_evaluator.ann_file)
    metrics.update(train_s=t1 - t0, test_s=time.time() - t1)
    with open(metrics_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


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
        extra_args (Sequence[str]): Extra ``python -m spinexr.cli.train`` arguments.
        cfg_options (dict, optional): Config overrides applied to every run.

    Returns:
        str: The markdown table.
    """
    first = prepare_config(Config.fromfile(config_path(configs[0])), seed=0, data_root=data_root,
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
