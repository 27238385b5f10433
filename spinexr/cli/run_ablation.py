"""Run the class-imbalance ablation (configs/ablation/) over seeds and print its table.

Runs :func:`spinexr.experiments.ablation.run_ablation`: each config x seed is trained and tested
(last checkpoint) in child processes (``python -m spinexr.cli.train`` / ``spinexr.cli.test``);
the table (overall mAP@0.5 and AP@0.5 of the rare classes, mean ± std over seeds) is written to
WORK_DIR/table.md, the raw numbers to WORK_DIR/results.json. Finished runs are reused.

Examples:
    python -m spinexr.cli.run_ablation --seeds 0 1 2        # full recipe on data/vindr_spinexr
    python tools/run_ablation.py --profile cpu --data-root data/phantom --seeds 0 1 \
        --work-dir work_dirs/ablation_cpu                            # CPU-sized smoke ablation
"""
import argparse

from mmengine.config import DictAction

from spinexr.experiments.ablation import DEFAULT_CONFIGS, PROFILES, run_ablation


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run the class-imbalance ablation')
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                        help='config files in ladder order')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/ablation')
    parser.add_argument('--data-root', help='dataset root in the converted layout')
    parser.add_argument('--profile', choices=sorted(PROFILES), default='full')
    parser.add_argument('--rare-thr', type=float, default=0.05,
                        help='box share below which a class is reported as rare')
    parser.add_argument('--amp', action='store_true', help='train with --amp')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides applied to every run (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    print(run_ablation(configs=args.configs, seeds=args.seeds, work_dir=args.work_dir,
                       data_root=args.data_root, profile=args.profile, rare_thr=args.rare_thr,
                       extra_args=['--amp'] if args.amp else [], cfg_options=args.cfg_options))


if __name__ == '__main__':
    main()
