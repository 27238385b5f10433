"""Stratified, study-grouped K-fold cross-validation of classifier configs -> out-of-fold table.

For every config and fold, trains on the other folds of the train split (validation = the
held-out fold: early stopping and best checkpoint), predicts the held-out fold with the best
checkpoint, and finally merges everything into ``WORK_DIR/oof_predictions.csv``
(``image_id, study_id, split, fold, label, prob_<name>...``), the input of
``tools/search_ensemble.py``. The test split is never touched.

Examples:
    python tools/cross_validate.py configs/classifiers/densenet121_60e_vindr-384.py \\
        configs/classifiers/efficientnetv2-s_60e_vindr-384.py \\
        configs/classifiers/resnet50_60e_vindr-384.py \\
        --names densenet121 efficientnetv2-s resnet50 --work-dir work_dirs/cv
    python tools/cross_validate.py CONFIG --work-dir work_dirs/cv --make-folds-only

Finished folds (their prediction CSV exists) are skipped, so an interrupted run continues.
"""
import argparse
import glob
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction

from spinexr.datasets.folds import fold_dataset_args, merge_oof_predictions, set_fold
from spinexr.datasets.vindr_cls import make_folds_for_dataset
from spinexr.utils.cli import apply_train_args, build_runner


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='K-fold cross-validation of classifiers')
    parser.add_argument('configs', nargs='+', help='classifier config(s)')
    parser.add_argument('--work-dir', required=True, help='output folder')
    parser.add_argument('--names', nargs='+', help='model names (default: config file names)')
    parser.add_argument('--n-splits', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0, help='seed of the fold assignment')
    parser.add_argument('--folds', type=int, nargs='+', help='run only these folds')
    parser.add_argument('--make-folds-only', action='store_true')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config, key=value')
    return parser.parse_args(argv)


def _load(path: str, options) -> Config:
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def best_checkpoint(work_dir: str) -> str:
    """``best_*.pth`` of a run, else its last checkpoint."""
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    if best:
        return best[-1]
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last, encoding='utf-8') as f:
            return f.read().strip()
    raise FileNotFoundError(f'no checkpoint in {work_dir}')


def main(argv=None) -> str:
    args = parse_args(argv)
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(names) != len(args.configs):
        raise ValueError('--names needs one name per config')
    os.makedirs(args.work_dir, exist_ok=True)
    fold_file = osp.join(args.work_dir, 'folds.json')
    if osp.isfile(fold_file):  # reuse: every model of a work dir sees the same folds
        with open(fold_file, encoding='utf-8') as f:
            made = json.load(f)
        if (made.get('n_splits'), made.get('seed', args.seed)) != (args.n_splits, args.seed):
            raise ValueError(f'{fold_file} was made with n_splits={made.get("n_splits")}, '
                             f'seed={made.get("seed")}; use another --work-dir')
    else:
        data = fold_dataset_args(_load(args.configs[0], args.cfg_options))
        make_folds_for_dataset(data['ann_file'], fold_file, n_splits=args.n_splits,
                               seed=args.seed, data_root=data['data_root'])
    print(f'folds: {fold_file}')
    if args.make_folds_only:
        return fold_file

    folds = args.folds if args.folds is not None else list(range(args.n_splits))
    per_model = {}
    for name, config in zip(names, args.configs):
        per_model[name] = {}
        for fold in folds:
            run_dir = osp.join(args.work_dir, name, f'fold_{fold}')
            pred_file = osp.join(run_dir, 'oof_predictions.csv')
            per_model[name][fold] = pred_file
            if osp.isfile(pred_file):
                print(f'{name} fold {fold}: done before, skipped')
                continue
            cfg = _load(config, args.cfg_options)
            set_fold(cfg, fold_file, fold, args.n_splits, pred_file)
            cfg.work_dir = run_dir
            cfg.launcher = 'none'
            build_runner(apply_train_args(cfg, amp=args.amp)).train()
            cfg.load_from = best_checkpoint(run_dir)
            cfg.resume = False
            build_runner(cfg).test()
    if sorted(folds) != list(range(args.n_splits)):
        print('not all folds were run; no out-of-fold table written')
        return ''
    out = merge_oof_predictions(per_model, osp.join(args.work_dir, 'oof_predictions.csv'))
    print(f'out-of-fold predictions: {out}')
    return out


if __name__ == '__main__':
    main()
