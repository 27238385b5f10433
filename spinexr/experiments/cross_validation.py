"""Stratified, study-grouped K-fold cross-validation of classifier configs -> out-of-fold table.

For every config and fold, :func:`cross_validate` trains on the other folds of the train split
(validation = the held-out fold: early stopping and best checkpoint), predicts the held-out fold
with the best checkpoint, and finally merges everything into ``WORK_DIR/oof_predictions.csv``
(``image_id, study_id, split, fold, label, prob_<name>...``), the input of
:func:`spinexr.models.classifiers.ensemble_search.search_ensemble`. The test split is never
touched. Finished folds (their prediction CSV exists) are skipped, so an interrupted run
continues.

The runs share this process (one Runner after the other); ``python -m spinexr.cli.cross_validate``
(``tools/cross_validate.py``) runs it from the command line.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.config import Config

from spinexr.datasets.folds import fold_dataset_args, merge_oof_predictions, set_fold
from spinexr.datasets.vindr_cls import make_folds_for_dataset
from spinexr.utils.cli import apply_train_args, build_runner
from spinexr.utils.paths import config_path


def _load(path: str, options: Optional[dict]) -> Config:
    cfg = Config.fromfile(config_path(path))
    if options:
        cfg.merge_from_dict(options)
    return cfg


def best_checkpoint(work_dir: str) -> str:
    """The run's ``best_*.pth`` (newest), else its last checkpoint.

    Args:
        work_dir (str): A training run's work dir.

    Returns:
        str: Checkpoint path.

    Raises:
        FileNotFoundError: When the run has no checkpoint.
    """
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    if best:
        return best[-1]
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last, encoding='utf-8') as f:
            return f.read().strip()
    raise FileNotFoundError(f'no checkpoint in {work_dir}')


def _folds_file(configs: Sequence[str], work_dir: str, n_splits: int, seed: int,
                cfg_options: Optional[dict]) -> str:
    """The work dir's ``folds.json``: reused when it exists (every model sees the same folds)."""
    fold_file = osp.join(work_dir, 'folds.json')
    if osp.isfile(fold_file):
        with open(fold_file, encoding='utf-8') as f:
            made = json.load(f)
        if (made.get('n_splits'), made.get('seed', seed)) != (n_splits, seed):
            raise ValueError(f'{fold_file} was made with n_splits={made.get("n_splits")}, '
                             f'seed={made.get("seed")}; use another --work-dir')
    else:
        data = fold_dataset_args(_load(configs[0], cfg_options))
        make_folds_for_dataset(data['ann_file'], fold_file, n_splits=n_splits, seed=seed,
                               data_root=data['data_root'])
    return fold_file


def cross_validate(configs: Sequence[str],
                   work_dir: str,
                   names: Optional[Sequence[str]] = None,
                   n_splits: int = 5,
                   seed: int = 0,
                   folds: Optional[Sequence[int]] = None,
                   make_folds_only: bool = False,
                   amp: bool = False,
                   cfg_options: Optional[dict] = None) -> str:
    """Cross-validate classifier configs on study-grouped folds of their train split.

    Args:
        configs (Sequence[str]): Classifier configs (files or shipped config names).
        work_dir (str): Output folder (``folds.json``, ``<name>/fold_<k>/``,
            ``oof_predictions.csv``).
        names (Sequence[str], optional): Model names, one per config (default: the config file
            names).
        n_splits (int): Number of folds.
        seed (int): Seed of the fold assignment.
        folds (Sequence[int], optional): Run only these folds (no out-of-fold table then unless
            they are all of them).
        make_folds_only (bool): Only write ``folds.json`` and return its path.
        amp (bool): Automatic mixed precision.
        cfg_options (dict, optional): Overrides applied to every config.

    Returns:
        str: ``oof_predictions.csv`` (``folds.json`` with ``make_folds_only``; ``''`` when not all
        folds were run).

    Raises:
        ValueError: When ``names`` does not give one name per config, or the work dir's folds
            were made with other settings.
    """
    names = list(names) if names else [osp.splitext(osp.basename(c))[0] for c in configs]
    if len(names) != len(configs):
        raise ValueError('--names needs one name per config')
    os.makedirs(work_dir, exist_ok=True)
    fold_file = _folds_file(configs, work_dir, n_splits, seed, cfg_options)
    print(f'folds: {fold_file}')
    if make_folds_only:
        return fold_file

    folds = list(folds) if folds is not None else list(range(n_splits))
    per_model: Dict[str, Dict[int, str]] = {}
    for name, config in zip(names, configs):
        per_model[name] = {}
        for fold in folds:
            run_dir = osp.join(work_dir, name, f'fold_{fold}')
            pred_file = osp.join(run_dir, 'oof_predictions.csv')
            per_model[name][fold] = pred_file
            if osp.isfile(pred_file):
                print(f'{name} fold {fold}: done before, skipped')
                continue
            cfg = _load(config, cfg_options)
            set_fold(cfg, fold_file, fold, n_splits, pred_file)
            cfg.work_dir = run_dir
            cfg.launcher = 'none'
            build_runner(apply_train_args(cfg, amp=amp)).train()
            cfg.load_from = best_checkpoint(run_dir)
            cfg.resume = False
            build_runner(cfg).test()
    if sorted(folds) != list(range(n_splits)):
        print('not all folds were run; no out-of-fold table written')
        return ''
    out = merge_oof_predictions(per_model, osp.join(work_dir, 'oof_predictions.csv'))
    print(f'out-of-fold predictions: {out}')
    return out
