"""Parity benchmark: YOLO11 trained by Ultralytics' own trainer vs. the spinexr adapter (Runner).

Both train the same model (``yolo11<size>.yaml`` from scratch, or from the same ``--weights``) on
the same converted-layout data (PNG + COCO json). The adapter runs the SHIPPED recipe
(``configs/yolo11/yolo11l_35e_vindr-640.py``: Ultralytics' HSV gains, accumulation rule and ramp,
weight-decay rule, EMA, close-mosaic) with only the sizes, epochs, batch, accumulation and warm-up
changed; Ultralytics gets the same values as arguments. Both trained models are then evaluated by
the SAME code: the adapter's test loop (``tools/test.py``'s path: resize keeping the ratio, pad
bottom/right to /32, Ultralytics' NMS as its validator runs it, multi-label at conf 0.001, IoU
0.65, 300 detections; Ultralytics' ``last.pt`` EMA weights are loaded through ``load_from``),
scored by pycocotools ``COCOeval`` on the test json. Training throughput is images per second of
training epochs only (validation excluded), measured by an epoch timer on each side; the first
epoch and the steady state (epochs 2 onwards) are reported separately.

CPU-sized run (tiny generated data, yolo11n, 320 px, 2 epochs)::

    python benchmarks/bench_yolo_parity.py --epochs 2 --imgsz 320 --batch 8

Accuracy parity over seeds (each trainer in its own process, then combined)::

    python benchmarks/bench_yolo_parity.py --skip ultralytics --seeds 0 1 2 --work-dir w/a ...
    python benchmarks/bench_yolo_parity.py --skip adapter --seeds 0 1 2 --work-dir w/u ...
    python benchmarks/bench_yolo_parity.py --combine w/a/parity.json w/u/parity.json

GPU run on real or phantom data (converted layout)::

    python benchmarks/bench_yolo_parity.py --data-root data/phantom_png --size l --epochs 35 \
        --imgsz 640 --batch 32 --workers 16 --device 0 --amp

Prints one table with mAP@0.5, mAP@0.5:0.95, training images/s and the adapter/Ultralytics
ratios (with several seeds: mean, sd and the 95 % Welch interval of the difference of the mean
mAP@0.5), and writes it as JSON to ``<work-dir>/parity.json``.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root', help='converted layout (train/ test/ annotations/); default: '
                   'a tiny generated set')
    p.add_argument('--train-images', type=int, default=64, help='generated train images')
    p.add_argument('--test-images', type=int, default=32, help='generated test images')
    p.add_argument('--size', default='n', choices=list('nsmlx'), help='YOLO11 scale')
    p.add_argument('--weights', help='local Ultralytics .pt to start both from (default: scratch)')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--imgsz', type=int, default=320)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--nbs', type=int, default=None,
                   help='nominal batch size (accumulation = round(nbs / batch)); default batch x 4')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--close-mosaic', type=int, default=None, help='default: min(10, epochs // 2)')
    p.add_argument('--warmup-epochs', type=float, default=3.0)
    p.add_argument('--multi-scale', type=float, default=0.25,
                   help='fraction of imgsz (0.25 at 640 = 480-800)')
    p.add_argument('--device', default='cpu', help="'cpu' or a CUDA index such as '0'")
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads for both trainers; default: what Ultralytics sets on '
                   'CPU, min(8, cpu_count - 1)')
    p.add_argument('--amp', action='store_true', help='mixed precision (GPU only)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0], help='training seeds')
    p.add_argument('--img-size', type=int, nargs=2, default=(256, 320), metavar=('H', 'W'),
                   help='size of the generated images')
    p.add_argument('--textured', action='store_true',
                   help='generated classes told apart by pattern, not grey level (the grey level '
                   "means nothing under Ultralytics' multiplicative HSV value gain)")
    p.add_argument('--combine', nargs='+', metavar='JSON',
                   help='only combine parity.json files of earlier runs (e.g. one per trainer)')
    p.add_argument('--work-dir', help='default: a temporary folder (deleted)')
    p.add_argument('--textured-classes', type=int, default=4, choices=[2, 3, 4],
                   help='with --textured: how many patterns occur (3 leaves out the checkerboard)')
    p.add_argument('--skip', choices=['ultralytics', 'adapter'], help='train only one side')
    return p.parse_args(argv)


# --------------------------------------------------------------------------- data
def make_data(args, root: Path) -> Path:
    """Return a converted-layout root: the user's, or a tiny generated one."""
    if args.data_root:
        return Path(args.data_root).resolve()
    from spinexr.testing import make_tiny_coco
    data = root / 'data'
    size = tuple(args.img_size)
    make_tiny_coco(str(data), 'train', num_images=args.train_images, img_size=size, seed=0,
                   textured=args.textured, textured_classes=args.textured_classes)
    make_tiny_coco(str(data), 'test', num_images=args.test_images, img_size=size, seed=1,
                   textured=args.textured, textured_classes=args.textured_classes)
    return data


def coco_to_yolo(data: Path, out: Path) -> Path:
    """Write Ultralytics' layout (images/ links + labels/*.txt, data.yaml) from the COCO jsons."""
    names = None
    for split, ul_split in (('train', 'train'), ('test', 'val')):
        coco = json.loads((data / 'annotations' / f'{split}.json').read_text())
        names = [c['name'] for c in sorted(coco['categories'], key=lambda c: c['id'])]
        cat_index = {c['id']: i for i, c in enumerate(sorted(coco['categories'],
                                                             key=lambda c: c['id']))}
        (out / 'images' / ul_split).mkdir(parents=True, exist_ok=True)
        (out / 'labels' / ul_split).mkdir(parents=True, exist_ok=True)
        rows: Dict[int, List[str]] = {}
        images = {im['id']: im for im in coco['images']}
        for ann in coco['annotations']:
            im = images[ann['image_id']]
            x, y, w, h = ann['bbox']
            if w <= 0 or h <= 0:
                continue
            rows.setdefault(im['id'], []).append(
                f"{cat_index[ann['category_id']]} {(x + w / 2) / im['width']:.6f} "
                f"{(y + h / 2) / im['height']:.6f} {w / im['width']:.6f} {h / im['height']:.6f}")
        for im in coco['images']:
            stem = Path(im['file_name']).stem
            link = out / 'images' / ul_split / Path(im['file_name']).name
            if not link.exists():
                os.symlink(data / im['file_name'], link)
            (out / 'labels' / ul_split / f'{stem}.txt').write_text('\n'.join(rows.get(im['id'],
                                                                                       [])))
    yaml = out / 'data.yaml'
    yaml.write_text(f'path: {out}\ntrain: images/train\nval: images/val\nnames:\n' +
                    ''.join(f'  {i}: {n}\n' for i, n in enumerate(names)))
    return yaml


def coco_eval(gt_file: Path, dets: List[dict]) -> Dict[str, float]:
    """pycocotools bbox evaluation; returns mAP@0.5 and mAP@0.5:0.95 (in %)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not dets:
        return dict(map50=0.0, map=0.0)
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(map50=100 * float(ev.stats[1]), map=100 * float(ev.stats[0]))


# --------------------------------------------------------------------------- ultralytics
def run_ultralytics(args, data: Path, work: Path, accumulate: int, close_mosaic: int,
                    seed: int) -> dict:
    """Train with Ultralytics' trainer; return epoch times and the path of its ``last.pt``."""
    os.environ.setdefault('YOLO_CONFIG_DIR', str(work / 'ultralytics_settings'))
    os.environ.setdefault('YOLO_OFFLINE', '1')
    from ultralytics import YOLO
    from ultralytics.engine import trainer as ul_trainer
    ul_trainer.check_amp = lambda model: True  # its AMP check downloads weights: skip it

    yaml = coco_to_yolo(data, work / 'yolo_data')
    model = YOLO(f'yolo11{args.size}.yaml')
    if args.weights:
        model = model.load(args.weights)
    times: Dict[int, float] = {}
    starts: Dict[int, float] = {}
    model.add_callback('on_train_epoch_start',
                       lambda tr: starts.__setitem__(tr.epoch, time.perf_counter()))
    model.add_callback('on_train_epoch_end',
                       lambda tr: times.__setitem__(tr.epoch, time.perf_counter() -
                                                    starts[tr.epoch]))
    name = f'ultralytics_s{seed}'
    # nbs = batch x accumulate: Ultralytics' accumulate = round(nbs / batch) and its weight decay
    # 5e-4 x batch x accumulate / nbs = 5e-4, as in the recipe (nbs 48 for 12 x 4).
    model.train(
        data=str(yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
        nbs=args.batch * accumulate, workers=args.workers, device=args.device,
        amp=bool(args.amp), plots=False, val=False, project=str(work), name=name,
        exist_ok=True, seed=seed, deterministic=False, optimizer='SGD', lr0=0.01, lrf=0.01,
        momentum=0.9, weight_decay=5e-4, cos_lr=True, warmup_epochs=args.warmup_epochs,
        warmup_momentum=0.8, warmup_bias_lr=0.1, close_mosaic=close_mosaic, mosaic=1.0,
        mixup=0.1, fliplr=0.5, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, translate=0.1, scale=0.5,
        degrees=0.0, shear=0.0, multi_scale=args.multi_scale, box=7.5, cls=0.5, dfl=1.5,
        pretrained=bool(args.weights), verbose=False)
    return dict(epoch_s=[times[k] for k in sorted(times)],
                weights=str(work / name / 'weights' / 'last.pt'))


# --------------------------------------------------------------------------- adapter
def adapter_config(args, data: Path, work: Path, accumulate: int, close_mosaic: int,
                   seed: int = 0):
    """Build the adapter's config: the shipped YOLO11 recipe with the benchmark's sizes.

    Args:
        args (argparse.Namespace): parsed benchmark arguments (size, weights, imgsz, batch,
            workers, multi_scale, epochs, warmup_epochs, amp).
        data (Path): converted-layout data root (train/ test/ annotations/).
        work (Path): work folder; the runner writes under ``work / f'adapter_s{seed}'``.
        accumulate (int): nominal gradient accumulation count (ramped from 1 in the warm-up).
        close_mosaic (int): epochs trained without mosaic at the end.
        seed (int): training seed.

    Returns:
        mmengine.config.Config: the config ``SpinexrRunner.from_cfg`` builds.
    """
    from mmengine.config import Config

    import spinexr.engine  # noqa: F401
    import spinexr.models  # noqa: F401
    from spinexr.experiments.profiles import scale_pipeline_sizes
    from spinexr.utils.cli import apply_train_args

    cfg = Config.fromfile(str(REPO / 'configs/yolo11/yolo11l_35e_vindr-640.py'))
    size = args.imgsz
    cfg.model.model_yaml = f'yolo11{args.size}.yaml'
    cfg.model.pretrained = args.weights
    lo = max(32, int(size * (1 - args.multi_scale)))
    hi = int(size * (1 + args.multi_scale))
    if args.multi_scale > 0:
        cfg.model.data_preprocessor.batch_augments[0]['random_size_range'] = (lo, hi)
    else:
        cfg.model.data_preprocessor.batch_augments = None

    root = str(data) + '/'
    cfg.data_root = root
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, size / 640)
    cfg.train_dataloader.batch_size = args.batch
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        ev.ann_file = root + 'annotations/test.json'
    for hook in cfg.custom_hooks:
        if hook['type'] == 'CloseMosaicHook':  # switches at epoch args.epochs - close_mosaic
            hook['close_epochs'] = close_mosaic
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], size / 640)
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = args.warmup_epochs
    cfg.optim_wrapper.accumulative_counts = accumulate
    # the recipe's rule, 5e-4 x batch x accumulate / nbs with nbs = batch x accumulate
    cfg.optim_wrapper.optimizer.weight_decay = 5e-4
    apply_train_args(cfg, amp=bool(args.amp))  # YOLOOptimWrapper -> YOLOAmpOptimWrapper
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs + 1  # no validation during training (as Ultralytics)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=args.epochs)
    cfg.default_hooks.logger.interval = 10
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = str(work / f'adapter_s{seed}')
    cfg.experiment_name = f'adapter_s{seed}'
    return cfg


def run_adapter(args, data: Path, work: Path, accumulate: int, close_mosaic: int,
                seed: int) -> dict:
    """Train with the adapter; return epoch times and the path of its last checkpoint."""
    from mmengine.hooks import Hook

    from spinexr.engine import SpinexrRunner

    cfg = adapter_config(args, data, work, accumulate, close_mosaic, seed)

    class EpochTimer(Hook):
        priority = 'VERY_LOW'

        def __init__(self):
            self.times: List[float] = []

        def before_train_epoch(self, runner):
            self._t0 = time.perf_counter()

        def after_train_epoch(self, runner):
            self.times.append(time.perf_counter() - self._t0)

    runner = SpinexrRunner.from_cfg(cfg)
    timer = EpochTimer()
    runner.register_hook(timer)
    runner.train()
    return dict(epoch_s=timer.times, weights=str(Path(cfg.work_dir) / f'epoch_{args.epochs}.pth'))


# --------------------------------------------------------------------------- evaluation
def evaluate(args, data: Path, work: Path, weights: str, name: str) -> Dict[str, float]:
    """Evaluate trained weights (spinexr checkpoint or Ultralytics ``.pt``) with the adapter's
    test loop (the same resize, NMS and scorer for both trainers)."""
    from spinexr.engine import SpinexrRunner

    cfg = adapter_config(args, data, work, 1, 0)
    cfg.load_from = weights
    cfg.trust_checkpoint = True  # the .pt was written by this run's own Ultralytics training
    cfg.test_evaluator.outfile_prefix = str(work / f'{name}_dets')
    cfg.work_dir = str(work / f'eval_{name}')
    cfg.experiment_name = f'eval_{name}'
    SpinexrRunner.from_cfg(cfg).test()
    dets = json.loads(Path(str(work / f'{name}_dets') + '.bbox.json').read_text())
    return coco_eval(data / 'annotations' / 'test.json', dets)


def throughput(epoch_s: List[float], n_train: int) -> Dict[str, float]:
    """Images/s over all epochs and over epochs 2 onwards, and the first epoch's seconds."""
    steady = epoch_s[1:]
    return dict(train_s=sum(epoch_s), epoch_s=list(epoch_s), first_epoch_s=epoch_s[0],
                images_per_s=n_train * len(epoch_s) / max(sum(epoch_s), 1e-9),
                steady_images_per_s=(n_train * len(steady) / max(sum(steady), 1e-9)
                                     if steady else None))


# --------------------------------------------------------------------------- statistics
def summarize(runs: Dict[str, List[dict]]) -> dict:
    """Mean, sd and range per trainer; the difference of the mean mAP@0.5 with its 95 % Welch
    interval (seeds of the two trainers are independent draws, not pairs)."""
    import numpy as np
    from scipy import stats

    out: Dict[str, dict] = {}
    for name, rs in runs.items():
        for key in ('map50', 'map', 'images_per_s', 'steady_images_per_s'):
            v = np.array([r[key] for r in rs if r.get(key) is not None], dtype=float)
            if len(v):
                out.setdefault(name, {})[key] = dict(
                    mean=float(v.mean()), sd=float(v.std(ddof=1)) if len(v) > 1 else None,
                    min=float(v.min()), max=float(v.max()), n=int(len(v)))
    if len(runs) == 2 and all(len(rs) for rs in runs.values()):
        a = np.array([r['map50'] for r in runs['adapter']], dtype=float)
        u = np.array([r['map50'] for r in runs['ultralytics']], dtype=float)
        diff = dict(mean=float(a.mean() - u.mean()), ci95=None)
        if len(a) > 1 and len(u) > 1:
            va, vu = a.var(ddof=1) / len(a), u.var(ddof=1) / len(u)
            se = float(np.sqrt(va + vu))
            dof = (va + vu)**2 / (va**2 / (len(a) - 1) + vu**2 / (len(u) - 1)) if se > 0 else 1.0
            half = float(stats.t.ppf(0.975, dof)) * se
            diff.update(ci95=[diff['mean'] - half, diff['mean'] + half], welch_dof=float(dof))
        out['map50_diff_points'] = diff
        ia = out['adapter']['images_per_s']['mean']
        iu = out['ultralytics']['images_per_s']['mean']
        out['throughput_ratio'] = ia / max(iu, 1e-9)
    return out


def report(result: dict) -> None:
    """Print the per-run table and the summary."""
    print(f"{'trainer':<12} {'seed':>4} {'mAP@0.5':>8} {'mAP@.5:.95':>10} {'img/s':>7} "
          f"{'steady img/s':>12} {'1st epoch s':>11}")
    for name, rs in result['runs'].items():
        for r in rs:
            steady = r.get('steady_images_per_s')
            print(f"{name:<12} {r['seed']:>4} {r['map50']:8.2f} {r['map']:10.2f} "
                  f"{r['images_per_s']:7.2f} {steady if steady is None else round(steady, 2)!s:>12} "
                  f"{r['first_epoch_s']:11.1f}")
    summary = result['summary']
    for name in result['runs']:
        m = summary.get(name, {}).get('map50')
        if m:
            sd = '-' if m['sd'] is None else f"{m['sd']:.2f}"
            print(f"{name}: mAP@0.5 mean {m['mean']:.2f}, sd {sd}, range {m['min']:.2f}-"
                  f"{m['max']:.2f} over {m['n']} seed(s)")
    if 'map50_diff_points' in summary:
        d = summary['map50_diff_points']
        ci = '' if d['ci95'] is None else (f" (95 % Welch interval {d['ci95'][0]:+.2f} to "
                                          f"{d['ci95'][1]:+.2f})")
        print(f"adapter - ultralytics mean mAP@0.5: {d['mean']:+.2f} points{ci}; throughput "
              f"ratio adapter/ultralytics: {summary['throughput_ratio']:.2f}x")


def combine(paths: List[str]) -> dict:
    """Merge the runs of several ``parity.json`` files (e.g. one per trainer)."""
    runs: Dict[str, List[dict]] = {}
    args = None
    for path in paths:
        part = json.loads(Path(path).read_text())
        args = args or part.get('args')
        for name, rs in part['runs'].items():
            runs.setdefault(name, []).extend(rs)
    return _result(args, runs)


def _result(args: dict, runs: Dict[str, List[dict]]) -> dict:
    result = dict(args=args, runs=runs, summary=summarize(runs))
    for name, rs in runs.items():  # the first seed's run, in the single-run layout
        if rs:
            result[name] = rs[0]
    if 'throughput_ratio' in result['summary']:
        result['ratios'] = dict(map50_diff_points=result['summary']['map50_diff_points']['mean'],
                                throughput_ratio=result['summary']['throughput_ratio'])
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.combine:
        result = combine(args.combine)
        report(result)
        if args.work_dir:
            Path(args.work_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.work_dir) / 'parity.json').write_text(json.dumps(result, indent=1))
        return
    tmp = None
    if args.work_dir:
        work = Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix='yolo_parity_')
        work = Path(tmp)
    import torch
    if args.device == 'cpu':
        # Ultralytics' select_device sets torch.set_num_threads(min(8, cpu_count - 1)) for CPU
        # training; give the adapter the same (on a busy 2-core machine 1 thread is ~4x faster
        # than 2).
        torch.set_num_threads(args.threads or min(8, max(1, (os.cpu_count() or 2) - 1)))
    else:
        os.environ.setdefault('CUDA_VISIBLE_DEVICES', args.device)
    try:
        data = make_data(args, work)
        n_train = len(json.loads((data / 'annotations' / 'train.json').read_text())['images'])
        nbs = args.nbs or args.batch * 4
        accumulate = max(round(nbs / args.batch), 1)
        close_mosaic = args.close_mosaic if args.close_mosaic is not None else min(
            10, args.epochs // 2)
        trainers = [(name, fn) for name, fn in (('adapter', run_adapter),
                                                ('ultralytics', run_ultralytics))
                    if args.skip != name]
        runs: Dict[str, List[dict]] = {name: [] for name, _ in trainers}
        for seed in args.seeds:
            for name, train in trainers:
                trained = train(args, data, work, accumulate, close_mosaic, seed)
                scores = evaluate(args, data, work, trained['weights'], f'{name}_s{seed}')
                runs[name].append(dict(seed=seed, **throughput(trained['epoch_s'], n_train),
                                       **scores))
        result = _result(vars(args), runs)
        print(f'\nYOLO11{args.size}, {args.epochs} epochs, {args.imgsz} px, batch {args.batch} x '
              f'{accumulate} accumulation (ramped from 1 in the warm-up), device {args.device}, '
              f'torch threads {torch.get_num_threads()}, adapter workers {args.workers} '
              f'(Ultralytics forces 0 on CPU), data {data} ({n_train} train images); both '
              'evaluated by the adapter\'s test loop (multi-label NMS, conf 0.001, IoU 0.65)')
        report(result)
        (work / 'parity.json').write_text(json.dumps(result, indent=1))
        if not tmp:
            print(f'written {work / "parity.json"}')
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
