"""Stratified, study-grouped K-fold cross-validation of classifier configs -> out-of-fold table.

Runs :func:`spinexr.experiments.cross_validation.cross_validate`: writes
``WORK_DIR/oof_predictions.csv``, the input of ``python -m spinexr.cli.search_ensemble``. The test
split is never touched; finished folds are skipped, so an interrupted run continues.

Examples:
    python -m spinexr.cli.cross_validate configs/classifiers/densenet121_60e_vindr-384.py \\
        configs/classifiers/efficientnetv2-s_60e_vindr-384.py \\
        configs/classifiers/resnet50_60e_vindr-384.py \\
        --names densenet121 efficientnetv2-s resnet50 --work-dir work_dirs/cv
    python tools/cross_validate.py CONFIG --work-dir work_dirs/cv --make-folds-only
"""
import argparse

from mmengine.config import DictAction

from spinexr.experiments.cross_validation import cross_validate


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


def main(argv=None) -> str:
    args = parse_args(argv)
    return cross_validate(args.configs, args.work_dir, names=args.names, n_splits=args.n_splits,
                          seed=args.seed, folds=args.folds, make_folds_only=args.make_folds_only,
                          amp=args.amp, cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
