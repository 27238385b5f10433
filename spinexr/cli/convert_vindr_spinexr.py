"""Convert the VinDr-SpineXR release (CSV + DICOM) into 8-bit PNGs and COCO detection files.

Example::

    python tools/dataset_converters/vindr_spinexr.py --data-root /data/vindr-spinexr \
        --out-dir data/vindr_spinexr --img-size 1024 --workers 2

See docs/data.md for the layout it reads and writes and how bad input is handled.
"""
import argparse
import sys

from spinexr.datasets.converters import convert_vindr_spinexr, file_name_problem


def split_name(value: str) -> str:
    """argparse type of ``--splits``: a split name is used in paths, so it must be a plain name."""
    why = file_name_problem(value)
    if why is not None:
        raise argparse.ArgumentTypeError(f'{value!r} is not a plain file name: {why}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True, help='release root (annotations/, '
                        '{train,test}_images/)')
    parser.add_argument('--out-dir', required=True, help='output root')
    parser.add_argument('--img-size', type=int, default=1024, help='longer side of the PNGs')
    parser.add_argument('--workers', type=int, default=1, help='worker processes')
    parser.add_argument('--skip-bad', action='store_true',
                        help='leave bad images out of the COCO files instead of failing')
    parser.add_argument('--splits', nargs='+', type=split_name, default=['train', 'test'])
    parser.add_argument('--no-fast-decode', action='store_true',
                        help='always decode JPEG 2000 at full resolution')
    parser.add_argument('--val-fraction', type=float, default=0.0,
                        help='also write annotations/{train_split,val_split}.json holding out '
                        'this share of train studies (grouped by study_id)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the train/val split')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return convert_vindr_spinexr(
        data_root=args.data_root, out_dir=args.out_dir, img_size=args.img_size,
        workers=args.workers, skip_bad=args.skip_bad, splits=args.splits,
        fast_decode=not args.no_fast_decode, val_fraction=args.val_fraction, seed=args.seed,
        progress=not args.no_progress)


if __name__ == '__main__':
    sys.exit(main())
