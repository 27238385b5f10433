"""Evaluate a checkpoint on the test split of a config (MMDetection's tools/test.py style).

Examples:
    python tools/test.py CONFIG work_dirs/run1/epoch_12.pth
    python tools/test.py CONFIG CKPT --out preds.pkl --show-dir vis --work-dir work_dirs/eval
    bash tools/dist_test.sh CONFIG CKPT 8
    python tools/test.py CONFIG CKPT --data-root /data/vindr_spinexr/
    python tools/test.py CONFIG CKPT --tta     # flips x scales merged by WBF (config's `tta`)
"""
import argparse

from spinexr.utils.cli import (add_common_args, add_dump_metric, apply_test_args, build_runner,
                               closing_process_group, load_config)
from spinexr.models.test_time_aug import enable_tta


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this .pkl file')
    parser.add_argument('--show-dir', help='save drawn predictions under the run dir/SHOW_DIR')
    parser.add_argument(
        '--tta', action='store_true',
        help="test-time augmentation as the config's `tta` dict sets it (default: scales 1, 0.83, "
        '0.67, each also flipped, merged by weighted boxes fusion); the same as '
        '--cfg-options tta.enable=True')
    return parser.parse_args(argv)


def _test(cfg, out=None) -> None:
    runner = build_runner(cfg)  # local: freed on return, before the process group is closed
    if out:
        add_dump_metric(runner, cfg, out)
    runner.test()


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    if args.tta or (cfg.get('tta') or {}).get('enable', False):
        enable_tta(cfg)
    cfg = apply_test_args(cfg, args.checkpoint, out=args.out, show_dir=args.show_dir)
    with closing_process_group():
        _test(cfg, args.out)


if __name__ == '__main__':
    main()
