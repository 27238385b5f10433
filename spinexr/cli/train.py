"""Train a spinexr / mmdet / mmpretrain model from a config (MMDetection's tools/train.py style).

Examples:
    python tools/train.py configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --amp --cfg-options train_cfg.max_epochs=3
    python tools/train.py CONFIG --resume                # latest checkpoint of the work dir
    python tools/train.py CONFIG --auto-scale-lr         # lr x total batch / base_batch_size
    bash tools/dist_train.sh CONFIG 8                   # 8 processes via torchrun
    python tools/train.py CONFIG --data-root /data/vindr_spinexr/   # move every dataset path
"""
import argparse

from spinexr.utils.cli import (add_common_args, apply_train_args, build_runner,
                               closing_process_group, load_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    add_common_args(parser)
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr linearly with the total batch size (batch size x processes) against '
        "the config's auto_scale_lr.base_batch_size")
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the latest checkpoint '
        'in the work dir')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    cfg = apply_train_args(cfg, amp=args.amp, resume=args.resume,
                           auto_scale_lr=args.auto_scale_lr)
    with closing_process_group():
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
