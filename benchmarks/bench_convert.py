"""Conversion throughput: the spinexr converter vs a plain pydicom + VOI LUT + cv2.resize loop.

Generates real-size phantom-like DICOMs (about 2900 x 1250, 12-bit, JPEG 2000 lossless, window
tags; like the release), then measures in the same run:

* ``plain``: one process, ``dcmread`` -> ``pixel_array`` -> ``apply_modality_lut`` ->
  ``apply_voi_lut`` -> scale to 8 bit -> ``cv2.resize(INTER_AREA)`` -> ``cv2.imwrite``;
* ``converter``: ``convert_vindr_spinexr`` (CSV parsing, validation, PNG + COCO, resume records)
  with ``--workers`` 1, 2, ... and the reduced-resolution JPEG 2000 decode, plus ``workers=1``
  with full-resolution decoding (``--no-fast-decode``).

Prints images/s and ratios, and the mean absolute grey-level difference between fast and full
decoding PNGs. Example::

    python benchmarks/bench_convert.py --num-images 16 --workers 1 2
"""
import argparse
import csv
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from spinexr.datasets.converters import convert_vindr_spinexr
from spinexr.datasets.metainfo import CSV_COLUMNS, NO_FINDING


def phantom_like(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A 12-bit radiograph-like image: soft tissue, a bright column of blocks, noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 600 + 900 * np.exp(-((xx - w / 2) / (0.35 * w))**2)
    for k in range(12):
        y0 = int(h * (0.05 + 0.075 * k))
        img[y0:y0 + int(h * 0.06), int(0.38 * w):int(0.62 * w)] += 1200
    img = cv2.GaussianBlur(img, (0, 0), 6)
    img += rng.normal(0, 40, size=(h, w)).astype(np.float32)
    return np.clip(img, 0, 4095).astype(np.uint16)


def write_j2k(path: Path, arr: np.ndarray) -> None:
    """Write a 12-bit JPEG 2000 lossless DICOM with window tags."""
    from spinexr.io.dicom_writer import write_dicom
    write_dicom(str(path), arr, bits_stored=12, window=(2047.5, 4095))


def make_release(root: Path, num_images: int, seed: int = 0, workers: int = 2) -> str:
    """Real-size phantom release (spinexr's phantom generator, else a simpler stand-in)."""
    try:
        from spinexr.datasets.phantom import generate_phantom
    except ImportError:
        generate_phantom = None
    if generate_phantom is not None:
        generate_phantom(str(root), num_train=num_images, num_test=0, seed=seed, size_scale=1.0,
                         workers=workers)
        return 'spinexr phantom'
    rng = np.random.default_rng(seed)
    (root / 'annotations').mkdir(parents=True)
    (root / 'train_images').mkdir()
    rows = []
    for i in range(num_images):
        h, w = int(rng.integers(2800, 3000)), int(rng.integers(1200, 1300))
        image_id = f'{i:032x}'
        write_j2k(root / 'train_images' / f'{image_id}.dicom', phantom_like(h, w, rng))
        rows.append([f'{i:032x}', f'{i:032x}', image_id, 'rad1', NO_FINDING, '', '', '', ''])
    with open(root / 'annotations' / 'train.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    return 'blocks stand-in'


def plain_loop(src: Path, dst: Path, img_size: int) -> None:
    """The baseline a user would write: full decode, VOI LUT, INTER_AREA resize, PNG."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    dst.mkdir(parents=True)
    for path in sorted((src / 'train_images').glob('*.dicom')):
        ds = pydicom.dcmread(path)
        arr = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
        lo, hi = float(arr.min()), float(arr.max())
        img = ((arr - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)
        h, w = img.shape
        s = img_size / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(dst / f'{path.stem}.png'), img)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed_cpu(fn):
    """(wall seconds, CPU seconds of this process) of ``fn()``."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=1024)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--work-dir', default=None, help='kept if given, else a temp dir')
    args = parser.parse_args()
    # the release (and the phantom) store the hex image_id as SOPInstanceUID; pydicom warns
    warnings.filterwarnings('ignore', message='Invalid value for VR UI')
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='bench_convert_'))
    src = work / 'src'
    n = args.num_images
    try:
        if not src.exists():
            t0 = time.perf_counter()
            kind = make_release(src, n)
            print(f'generated {n} DICOMs ({kind}, ~2900x1250, 12-bit J2K lossless) in '
                  f'{time.perf_counter() - t0:.1f} s')
        print(f'load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
        results = {}
        if max(args.workers) > 1:
            # start the worker server once (it imports spinexr: a one-off cost per run), so the
            # figures below are steady-state throughput
            one = work / 'one'
            shutil.rmtree(one, ignore_errors=True)
            shutil.rmtree(work / 'one_out', ignore_errors=True)
            (one / 'annotations').mkdir(parents=True)
            first = next(iter(sorted((src / 'train_images').glob('*.dicom'))))
            (one / 'train_images').mkdir()
            os.symlink(first, one / 'train_images' / first.name)
            rows = (src / 'annotations' / 'train.csv').read_text().splitlines()
            keep = [rows[0]] + [r for r in rows[1:] if first.stem in r]
            (one / 'annotations' / 'train.csv').write_text('\n'.join(keep) + '\n')
            t = timed(lambda: convert_vindr_spinexr(
                str(one), str(work / 'one_out'), img_size=args.img_size, workers=2,
                splits=['train'], progress=False, log=lambda s: None))
            print(f'worker server start-up + 1 image: {t:.1f} s (one-off per run)')
        shutil.rmtree(work / 'plain', ignore_errors=True)
        wall, cpu = timed_cpu(lambda: plain_loop(src, work / 'plain', args.img_size))
        results['plain loop (1 process, full decode)'] = (n / wall, cpu / n)
        for fast in (False, True):
            for workers in (args.workers if fast else [1]):
                out = work / f'conv_w{workers}_{"fast" if fast else "full"}'
                shutil.rmtree(out, ignore_errors=True)
                wall, cpu = timed_cpu(lambda: convert_vindr_spinexr(
                    str(src), str(out), img_size=args.img_size, workers=workers,
                    splits=['train'], fast_decode=fast, progress=False, log=lambda s: None))
                results[f'converter workers={workers} {"fast" if fast else "full"} decode'] = (
                    n / wall, cpu / n if workers <= 1 else float('nan'))
        base_ips, base_cpu = results['plain loop (1 process, full decode)']
        print(f'\nimg_size {args.img_size}, {n} images')
        print(f'{"method":<44}{"images/s":>10}{"x plain":>10}{"CPU s/img":>11}{"x plain":>9}')
        for name, (ips, cpu) in results.items():
            print(f'{name:<44}{ips:>10.2f}{ips / base_ips:>10.2f}{cpu:>11.3f}'
                  f'{base_cpu / cpu:>9.2f}')
        print('(CPU s/img: this process only, so not given for worker processes; it does not '
              'depend on other load on the machine, images/s does)')
        full_dir = work / 'conv_w1_full' / 'train'
        fast_dir = work / f'conv_w{args.workers[0]}_fast' / 'train'
        diffs = []
        for p in sorted(full_dir.glob('*.png')):
            a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(np.int16)
            b = cv2.imread(str(fast_dir / p.name), cv2.IMREAD_UNCHANGED).astype(np.int16)
            diffs.append(np.abs(a - b).mean())
        print(f'load average after: {os.getloadavg()[0]:.1f}')
        print(f'fast vs full decode PNGs: mean |diff| {np.mean(diffs):.2f} grey levels '
              f'(max over images {np.max(diffs):.2f})')
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
