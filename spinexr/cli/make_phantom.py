"""Write a synthetic VinDr-SpineXR stand-in (DICOM + CSV, release layout).

Examples::

    # demo size: small images, generates in well under a minute on 2 cores
    python tools/misc/make_phantom.py --out data/phantom --num-train 200 --num-test 60 \
        --seed 0 --size-scale 0.25 --workers 2
    # real-size images (around 2874 x 1243, 12-bit JPEG 2000 lossless)
    python tools/misc/make_phantom.py --out data/phantom_full --num-train 2000 --num-test 500 \
        --workers 8

See docs/phantom.md.
"""
import argparse
import functools
import sys
import time

from spinexr.datasets.metainfo import CLASSES
from spinexr.datasets.phantom import generate_phantom


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output root (release layout)')
    parser.add_argument('--num-train', type=int, default=200, help='train images')
    parser.add_argument('--num-test', type=int, default=60, help='test images')
    parser.add_argument('--seed', type=int, default=0, help='random seed (output is deterministic)')
    parser.add_argument('--size-scale', type=float, default=1.0,
                        help='image size factor; 1.0 = real size (~2874x1243), 0.25 for demos')
    parser.add_argument('--workers', type=int, default=1, help='processes (does not change output)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing phantom')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_test < 0 or args.seed < 0:
        parser.error('--num-train, --num-test and --seed must be >= 0')
    if not 0.05 <= args.size_scale <= 2.0:
        parser.error('--size-scale must lie in [0.05, 2]')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm
        progress = functools.partial(tqdm, unit='img', dynamic_ncols=True)
    start = time.perf_counter()
    try:
        summary = generate_phantom(args.out, args.num_train, args.num_test, args.seed,
                                   size_scale=args.size_scale, workers=args.workers,
                                   overwrite=args.overwrite, progress=progress)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    total = sum(s['images'] for s in summary.values())
    print(f'\nphantom written to {args.out} in {elapsed:.1f} s '
          f'({total / max(elapsed, 1e-9):.2f} images/s, {args.workers} worker(s))')
    print(f'{"split":<6} {"images":>7} {"normal":>7}  ' + '  '.join(
        f'{c[:12]:>12}' for c in CLASSES))
    for split, s in summary.items():
        print(f'{split:<6} {s["images"]:>7} {s["normal"]:>7}  ' + '  '.join(
            f'{s[c]:>12}' for c in CLASSES))
    return 0


if __name__ == '__main__':
    sys.exit(main())
