"""Inference throughput: spinexr's batched CLI pipeline vs. ``ultralytics.YOLO(...).predict``,
beside the decode-only rate of the same files.

The same YOLO11 weights run over the same image files, in one process, through

1. **spinexr** -- :func:`spinexr.apis.inference.run_inference`, what ``tools/infer.py`` runs:
   decode and stack in DataLoader workers, one host-to-device copy per batch, resize/pad/normalise
   batched on the device, batched predict + NMS, one device-to-host copy, findings JSON/CSV
   written by a writer thread (overlays off, as ``predict(save=False)`` draws nothing);
2. **ultralytics** -- the checkpoint exported with ``save_ultralytics_pt`` (what
   ``tools/model_converters/spinexr_to_ultralytics.py`` writes), loaded by ``ultralytics.YOLO`` and
   run by ``predict(source=LIST.txt, batch=B, stream=True, save=False, verbose=False)`` (a
   ``.txt`` source, as a folder would be, is streamed in batches of ``B``; a Python list of
   paths would be read whole into a single batch);
3. **bare forward** -- the fused network on a ready ``(B, 3, H, W)`` tensor already on the device,
   ``H x W`` the network input of the first file (upper bound: no decoding, no pre/post-processing,
   no NMS);
4. **decode_png** -- decoding (and stacking) the same PNG files with ``--decode-workers`` worker
   processes (default: all cores), no model: the rate no file pipeline can pass;
5. **spinexr_dicom** / **decode_dicom** -- the same images as JPEG 2000 DICOMs (``--dicoms``;
   12-bit, lossless), through spinexr's pipeline and decoded alone (reduced-resolution decode to
   the network input, all decode workers). Ultralytics cannot read DICOM.

Both PNG pipelines use the same score threshold (``--conf``), IoU 0.65, 300 detections,
single-label NMS. Each runs once to warm up, then ``--repeats`` interleaved timed rounds; the
best time of each counts. Generated inputs: ``--unique`` distinct images, hard-linked under
other names up to ``--images`` (the same bytes decoded again; no generation time spent).
Weights: a spinexr checkpoint given with ``--checkpoint`` (trained), else random initialisation
(said in the output): throughput then includes almost no NMS work.

CPU-sized run (defaults: 128 generated PNGs + as many DICOMs, YOLO11-n at 320 px, batch 8, no
decoding worker; the figures of docs/inference.md)::

    nice -n 10 python benchmarks/bench_infer.py --images 256 --src-size 1024 --batch 8

GPU run (the issue's setting: YOLO11-l, 640 px, batch 32, fp16; >= 2,000 images)::

    python benchmarks/bench_infer.py --size l --images 2048 --imgsz 640 --src-size 1024 \
        --batch 32 --workers 16 --device cuda --fp16 [--checkpoint work_dirs/.../epoch_35.pth]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--inputs', nargs='+',
                   help='image files/folders/lists (default: generated PNGs)')
    p.add_argument('--images', type=int, default=128,
                   help='generated PNGs (default 128, CPU-sized; use >= 2048 on a GPU)')
    p.add_argument('--unique', type=int, default=32,
                   help='distinct generated images; the rest are hard links to them')
    p.add_argument('--dicoms', type=int, default=None,
                   help='JPEG 2000 DICOMs of the same images (default: as many as PNG files; '
                   '0: no DICOM rows)')
    p.add_argument('--src-size', type=int, default=None,
                   help='longer side of the generated PNGs (default: --imgsz)')
    p.add_argument('--imgsz', type=int, default=320, help='inference size (longer side)')
    p.add_argument('--size', default='n', choices=list('nsmlx'), help='YOLO11 scale')
    p.add_argument('--config', help='default: configs/yolo11/yolo11<size>_35e_vindr-640.py')
    p.add_argument('--checkpoint', help='trained spinexr checkpoint (default: random init)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--workers', type=int, default=0,
                   help='decoding workers of the spinexr side (default 0: on a 2-core CPU a worker '
                   'process competes with the network for a core; 16 on the GPU machine)')
    p.add_argument('--decode-workers', type=int, default=None,
                   help='workers of the decode-only rows (default: all cores)')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--fp16', action='store_true', help='half precision (CUDA)')
    p.add_argument('--conf', type=float, default=0.05, help='score threshold of both pipelines')
    p.add_argument('--repeats', type=int, default=2, help='timed runs per pipeline (best counts)')
    p.add_argument('--forward-iters', type=int, default=5, help='timed bare-forward batches')
    p.add_argument('--threads', type=int, default=max(1, min(8, (os.cpu_count() or 2) - 1)),
                   help="torch CPU threads for all (default: Ultralytics' own choice, "
                   'which its predictor sets anyway)')
    p.add_argument('--work-dir', help='default: a temporary folder')
    return p.parse_args(argv)


def _radiograph(rng, h: int, w: int):
    """A grey radiograph-like image (portrait) with bright vertebra-like blocks."""
    import cv2
    img = rng.normal(60, 15, size=(h, w)).clip(0, 255).astype('uint8')
    for k in range(6):
        y = int(h * (0.1 + 0.13 * k))
        cv2.rectangle(img, (int(w * 0.35), y), (int(w * 0.65), y + int(h * 0.09)),
                      int(rng.integers(150, 230)), -1)
    return img


def _link(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():  # a rerun in the same --work-dir
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy
        shutil.copyfile(src, dst)


def make_pngs(folder: Path, n: int, long_side: int, seed: int = 0, unique: int = 32) -> list:
    """``n`` grey PNGs (4:3 portrait): ``unique`` distinct ones, the rest hard links to them."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = long_side, int(round(long_side * 0.75))
    files = []
    for i in range(n):
        path = folder / f'img{i:05d}.png'
        if i < max(1, unique):
            cv2.imwrite(str(path), _radiograph(rng, h, w))
        else:
            _link(Path(files[i % max(1, unique)]), path)
        files.append(str(path))
    return files


def make_dicoms(folder: Path, pngs: list, n: int, unique: int = 32) -> list:
    """``n`` JPEG 2000 (lossless, 12-bit) DICOMs of the first ``unique`` images of ``pngs``."""
    import cv2
    import numpy as np

    from spinexr.io import write_dicom
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f'img{i:05d}.dicom'
        k = i % max(1, min(unique, len(pngs)))
        if i == k:
            img = cv2.imread(pngs[k], cv2.IMREAD_GRAYSCALE)
            write_dicom(path, img.astype(np.uint16) * 16, window=(2048, 4096))
        else:
            _link(Path(files[k]), path)
        files.append(str(path))
    return files


def decode_rate_fn(files: list, batch: int, workers: int, min_long_side):
    """Decode (and stack, as the pipeline's workers do) every file; no model."""
    import torch

    from spinexr.apis.inference import ImageFileDataset, collate_decoded

    def run():
        loader = torch.utils.data.DataLoader(
            ImageFileDataset(files, min_long_side), batch_size=batch, num_workers=workers,
            collate_fn=collate_decoded, prefetch_factor=4 if workers > 0 else None)
        n = sum(len(b.items) for b in loader)
        assert n == len(files), f'{len(files) - n} files could not be decoded'
    return run


def best_times(fns: dict, repeats: int) -> tuple:
    """One warm-up call of each, then ``repeats`` interleaved timed rounds, every other round in
    reverse order; returns the best time of each and every round's times (interleaving spreads
    the load of a shared machine over all of them alike; the per-round ratios of neighbouring
    runs are the steadier comparison)."""
    for fn in fns.values():
        fn()  # warm-up (workers, cudnn, lazy init, Ultralytics' predictor setup)
    rounds = []
    for i in range(repeats):
        times = {}
        order = list(fns.items())
        for k, fn in (order if i % 2 == 0 else order[::-1]):  # ABBA: no pipeline always first
            t0 = time.perf_counter()
            fn()
            times[k] = time.perf_counter() - t0
        rounds.append(times)
    return {k: min(r[k] for r in rounds) for k in fns}, rounds


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from spinexr.apis.inference import build_detector, collect_inputs, run_inference
    from spinexr.datasets.metainfo import CLASSES
    from spinexr.models.detectors.ultralytics_export import save_ultralytics_pt

    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='bench_infer_'))
    work.mkdir(parents=True, exist_ok=True)
    files = (collect_inputs(args.inputs)[0] if args.inputs else
             make_pngs(work / 'images', args.images, args.src_size or args.imgsz,
                       unique=args.unique))
    n_dicoms = len(files) if args.dicoms is None else args.dicoms
    dicoms = make_dicoms(work / 'dicoms', files, n_dicoms, args.unique) if n_dicoms else []
    config = args.config or str(REPO / f'configs/yolo11/yolo11{args.size}_35e_vindr-640.py')
    s = args.imgsz
    cfg_options = {'test_dataloader.dataset.pipeline.1.scale': (s, s),
                   'model.test_cfg.multi_label': False}  # as Ultralytics' predict

    # One set of weights for all: the given checkpoint or a random initialisation.
    model, _, _ = build_detector(config, args.checkpoint, fuse=False, cfg_options=cfg_options)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = str(work / 'random_init.pth')
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    pt = save_ultralytics_pt(model, str(work / 'exported.pt'), class_names=CLASSES, imgsz=s)
    del model
    detector = build_detector(config, ckpt, device=args.device, fp16=args.fp16,
                              cfg_options=cfg_options)
    iou, max_det = detector[0].test_cfg['iou_thr'], detector[0].test_cfg['max_det']

    def spinexr_on(paths, name):
        def run():
            out = run_inference(paths, config, ckpt, out_dir=str(work / name),
                                batch_size=args.batch, workers=args.workers, device=args.device,
                                score_thr=args.conf, fp16=args.fp16, overlays=False,
                                progress=False, detector=detector)
            assert out['num_images'] == len(paths), out['failures'][:3]
        return run

    # A .txt source: Ultralytics reads a Python list of paths all at once into ONE batch
    # (LoadPilAndNumpy, `batch` ignored); a .txt/folder source streams batches of `batch`.
    source = work / 'sources.txt'
    source.write_text(''.join(str(Path(f).resolve()) + '\n' for f in files))
    from ultralytics import YOLO
    yolo = YOLO(pt, task='detect')
    device = '0' if args.device.startswith('cuda') else 'cpu'

    def ultralytics_run():
        fp16 = dict(quantize=16) if args.fp16 else {}  # quantize=16 is its half=True
        n = sum(1 for _ in yolo.predict(source=str(source), imgsz=s, batch=args.batch, **fp16,
                                        device=device, conf=args.conf, iou=iou, max_det=max_det,
                                        save=False, verbose=False, stream=True))
        assert n == len(files)

    # The bare forward sees the batch shape the file pipelines build from the first file
    # (resized as the test pipeline says, padded to a multiple of 32).
    from spinexr.apis.inference import read_image
    h, w = detector[1].target_size(read_image(files[0])[1])
    h, w = -(-h // 32) * 32, -(-w // 32) * 32
    model = detector[0]
    weight = next(model.parameters())
    x = torch.rand(args.batch, 3, h, w, device=weight.device, dtype=weight.dtype)
    if getattr(model, 'channels_last', False):
        x = x.contiguous(memory_format=torch.channels_last)

    def forward_run():
        with torch.inference_mode():
            for _ in range(args.forward_iters):
                model.yolo(x)
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()

    def threads(fn):  # Ultralytics' predictor resets the thread count when it starts
        def wrapped():
            torch.set_num_threads(args.threads)
            fn()
        return wrapped

    decode_workers = ((os.cpu_count() or 1) if args.decode_workers is None
                      else args.decode_workers)
    fns = dict(spinexr=spinexr_on(files, 'spinexr_out'), ultralytics=ultralytics_run,
               bare_forward=forward_run,
               decode_png=decode_rate_fn(files, args.batch, decode_workers, None))
    if dicoms:  # the reduced JPEG 2000 decode the pipeline uses (overlays off: network input)
        fns.update(spinexr_dicom=spinexr_on(dicoms, 'spinexr_dicom_out'),
                   decode_dicom=decode_rate_fn(dicoms, args.batch, decode_workers, s))
    t, rounds = best_times({k: threads(fn) for k, fn in fns.items()}, args.repeats)
    n = len(files)
    rates = {k: (args.batch * args.forward_iters if k == 'bare_forward' else
                 len(dicoms) if 'dicom' in k else n) / v for k, v in t.items()}
    result = dict(
        device=(torch.cuda.get_device_name(0) if args.device.startswith('cuda') else
                f'cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})'),
        weights='trained: ' + args.checkpoint if args.checkpoint else 'random init',
        model=f'yolo11{args.size}', imgsz=s, forward_shape=[args.batch, 3, h, w], images=n,
        dicoms=len(dicoms), src_shape=list(read_image(files[0])[1]), batch=args.batch,
        workers=args.workers, decode_workers=decode_workers, threads=args.threads,
        fp16=args.fp16, images_per_s={k: round(v, 2) for k, v in rates.items()},
        spinexr_vs_ultralytics=round(rates['spinexr'] / rates['ultralytics'], 2),
        spinexr_vs_bare_forward=round(rates['spinexr'] / rates['bare_forward'], 3),
        spinexr_vs_decode_png=round(rates['spinexr'] / rates['decode_png'], 3),
        # per round: ultralytics time / spinexr time of neighbouring runs (same machine load)
        spinexr_vs_ultralytics_rounds=[round(r['ultralytics'] / r['spinexr'], 2)
                                       for r in rounds])
    if dicoms:
        result['spinexr_dicom_vs_decode_dicom'] = round(
            rates['spinexr_dicom'] / rates['decode_dicom'], 3)
    print(f"device: {result['device']}; weights: {result['weights']}; {result['model']} "
          f"@{s} (network input {h}x{w}); {n} PNG files {result['src_shape']} and "
          f"{len(dicoms)} DICOMs; batch {args.batch}; workers {args.workers} "
          f"(decode-only: {decode_workers}); fp16 {args.fp16}")
    print(f"{'pipeline':<14}{'images/s':>10}")
    for k, v in rates.items():
        print(f'{k:<14}{v:>10.2f}')
    print(f"spinexr / ultralytics predict: {result['spinexr_vs_ultralytics']:.2f}x; "
          f"spinexr / bare forward: {result['spinexr_vs_bare_forward']:.3f}; "
          f"spinexr / PNG decode-only: {result['spinexr_vs_decode_png']:.3f}; per round "
          f"spinexr / predict: {result['spinexr_vs_ultralytics_rounds']}"
          + (f"; spinexr DICOM / DICOM decode-only: "
             f"{result['spinexr_dicom_vs_decode_dicom']:.3f}" if dicoms else ''))
    (work / 'bench_infer.json').write_text(json.dumps(result, indent=1))
    print(f"written {work / 'bench_infer.json'}")
    return result


if __name__ == '__main__':
    main()
