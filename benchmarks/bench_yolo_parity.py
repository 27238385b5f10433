"""Parity benchmark: YOLO11 trained by Ultralytics' own trainer vs. the spinexr adapter (Runner).

Both train the same model (``yolo11<size>.yaml`` from scratch, or from the same ``--weights``) on
the same converted-layout data (PNG + COCO json), for the same epochs, image size, batch,
accumulation, warm-up, mosaic/mixup/flip/HSV and multi-scale settings. Both are then evaluated by
the same evaluator: pycocotools ``COCOeval`` on the test json, with the same NMS settings
(conf 0.001, IoU 0.65, 300 detections, single label per box). Training throughput is images per
second of training epochs only (validation excluded), measured by an epoch timer on each side.

CPU-sized run (tiny generated data, yolo11n, 320 px, 2 epochs)::

    python benchmarks/bench_yolo_parity.py --epochs 2 --imgsz 320 --batch 8

GPU run on real or phantom data (converted layout)::

    python benchmarks/bench_yolo_parity.py --data-root data/phantom_png --size l --epochs 35 \
        --imgsz 640 --batch 32 --workers 16 --device 0 --amp

Prints one table with mAP@0.5, mAP@0.5:0.95, training images/s and the adapter/Ultralytics
ratios, and writes it as JSON to ``<work-dir>/parity.json``.
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
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work-dir', help='default: a temporary folder (deleted)')
    p.add_argument('--skip', choices=['ultralytics', 'adapter'], help='train only one side')
    return p.parse_args(argv)


# --------------------------------------------------------------------------- data
def make_data(args, root: Path) -> Path:
    """Return a converted-layout root: the user's, or a tiny generated one."""
    if args.data_root:
        return Path(args.data_root).resolve()
    from spinexr.testing import make_tiny_coco
    data = root / 'data'
    make_tiny_coco(str(data), 'train', num_images=args.train_images, img_size=(256, 320), seed=0)
    make_tiny_coco(str(data), 'test', num_images=args.test_images, img_size=(256, 320), seed=1)
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
def run_ultralytics(args, data: Path, work: Path, accumulate: int, close_mosaic: int) -> dict:
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
    model.train(
        data=str(yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
        nbs=args.batch * accumulate, workers=args.workers, device=args.device,
        amp=bool(args.amp), plots=False, val=False, project=str(work), name='ultralytics',
        exist_ok=True, seed=args.seed, deterministic=False, optimizer='SGD', lr0=0.01, lrf=0.01,
        momentum=0.9, weight_decay=5e-4, cos_lr=True, warmup_epochs=args.warmup_epochs,
        warmup_momentum=0.8, warmup_bias_lr=0.1, close_mosaic=close_mosaic, mosaic=1.0,
        mixup=0.1, fliplr=0.5, hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, translate=0.1, scale=0.5,
        degrees=0.0, shear=0.0, multi_scale=args.multi_scale, box=7.5, cls=0.5, dfl=1.5,
        pretrained=bool(args.weights), verbose=False)
    last = work / 'ultralytics' / 'weights' / 'last.pt'
    coco = json.loads((data / 'annotations' / 'test.json').read_text())
    ul = YOLO(str(last))
    dets = []
    for im in coco['images']:
        res = ul.predict(str(data / im['file_name']), imgsz=args.imgsz, conf=0.001, iou=0.65,
                         max_det=300, device=args.device, verbose=False)[0]
        for (x1, y1, x2, y2), s, c in zip(res.boxes.xyxy.tolist(), res.boxes.conf.tolist(),
                                          res.boxes.cls.tolist()):
            dets.append(dict(image_id=im['id'], category_id=int(c) + 1, score=float(s),
                             bbox=[x1, y1, x2 - x1, y2 - y1]))
    n_train = len(json.loads((data / 'annotations' / 'train.json').read_text())['images'])
    return dict(train_s=sum(times.values()), epoch_s=[times[k] for k in sorted(times)],
                images_per_s=n_train * len(times) / max(sum(times.values()), 1e-9),
                **coco_eval(data / 'annotations' / 'test.json', dets))


# --------------------------------------------------------------------------- adapter
def adapter_config(args, data: Path, work: Path, accumulate: int, close_mosaic: int):
    """Build the adapter's config: the shipped YOLO11 recipe with the benchmark's sizes.

    Args:
        args (argparse.Namespace): parsed benchmark arguments (size, weights, imgsz, batch,
            workers, multi_scale, epochs, warmup_epochs, amp, seed).
        data (Path): converted-layout data root (train/ test/ annotations/).
        work (Path): work folder; the runner writes under ``work / 'adapter'``.
        accumulate (int): gradient accumulation steps.
        close_mosaic (int): epochs trained without mosaic at the end.

    Returns:
        mmengine.config.Config: the config ``SpinexrRunner.from_cfg`` builds.
    """
    from mmengine.config import Config

    import spinexr.engine  # noqa: F401
    import spinexr.models  # noqa: F401
    from spinexr.apis.comparison import scale_pipeline_sizes

    cfg = Config.fromfile(str(REPO / 'configs/yolo11/yolo11l_35e_vindr-640.py'))
    size = args.imgsz
    cfg.model.model_yaml = f'yolo11{args.size}.yaml'
    cfg.model.pretrained = args.weights
    cfg.model.loss_gain = accumulate
    lo = max(32, int(size * (1 - args.multi_scale)))
    hi = int(size * (1 + args.multi_scale))
    if args.multi_scale > 0:
        cfg.model.data_preprocessor.batch_augments[0]['random_size_range'] = (lo, hi)
    else:
        cfg.model.data_preprocessor.batch_augments = None

    root = str(data) + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, size / 640)
    cfg.train_dataloader.batch_size = args.batch
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        ev.ann_file = root + 'annotations/test.json'
    cfg.test_evaluator.outfile_prefix = str(work / 'adapter_dets')
    for hook in cfg.custom_hooks:
        if hook['type'] == 'PipelineSwitchHook':
            hook['switch_epoch'] = args.epochs - close_mosaic
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], size / 640)
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = args.warmup_epochs
    cfg.optim_wrapper.accumulative_counts = accumulate
    # Ultralytics scales weight decay by batch x accumulate / nbs = 1 here (nbs = batch x acc.)
    cfg.optim_wrapper.optimizer.weight_decay = 5e-4
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs + 1  # no validation during training (as Ultralytics)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=args.epochs)
    cfg.default_hooks.logger.interval = 10
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = str(work / 'adapter')
    return cfg


def run_adapter(args, data: Path, work: Path, accumulate: int, close_mosaic: int) -> dict:
    from mmengine.hooks import Hook

    from spinexr.engine import SpinexrRunner

    cfg = adapter_config(args, data, work, accumulate, close_mosaic)
    if args.device != 'cpu':
        os.environ.setdefault('CUDA_VISIBLE_DEVICES', args.device)

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
    runner.test()
    dets = json.loads(Path(str(work / 'adapter_dets') + '.bbox.json').read_text())
    n_train = len(runner.train_dataloader.dataset)
    return dict(train_s=sum(timer.times), epoch_s=timer.times,
                images_per_s=n_train * len(timer.times) / max(sum(timer.times), 1e-9),
                **coco_eval(data / 'annotations' / 'test.json', dets))


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    tmp = None
    if args.work_dir:
        work = Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix='yolo_parity_')
        work = Path(tmp)
    if args.device == 'cpu':
        import torch

        # Ultralytics' select_device sets torch.set_num_threads(min(8, cpu_count - 1)) for CPU
        # training; give the adapter the same (on a busy 2-core machine 1 thread is ~4x faster
        # than 2).
        torch.set_num_threads(args.threads or min(8, max(1, (os.cpu_count() or 2) - 1)))
    try:
        data = make_data(args, work)
        nbs = args.nbs or args.batch * 4
        accumulate = max(round(nbs / args.batch), 1)
        close_mosaic = args.close_mosaic if args.close_mosaic is not None else min(
            10, args.epochs // 2)
        results = {}
        if args.skip != 'adapter':
            results['adapter'] = run_adapter(args, data, work, accumulate, close_mosaic)
        if args.skip != 'ultralytics':
            results['ultralytics'] = run_ultralytics(args, data, work, accumulate, close_mosaic)
        import torch
        print(f'\nYOLO11{args.size}, {args.epochs} epochs, {args.imgsz} px, batch {args.batch} x '
              f'{accumulate} accumulation, device {args.device}, torch threads '
              f'{torch.get_num_threads()}, adapter workers {args.workers} (Ultralytics forces 0 on '
              f'CPU), data {data}')
        print(f"{'trainer':<12} {'mAP@0.5':>8} {'mAP@.5:.95':>10} {'train img/s':>12} "
              f"{'train s':>8}")
        for name, r in results.items():
            print(f"{name:<12} {r['map50']:8.2f} {r['map']:10.2f} {r['images_per_s']:12.2f} "
                  f"{r['train_s']:8.1f}")
        if len(results) == 2:
            a, u = results['adapter'], results['ultralytics']
            results['ratios'] = dict(
                map50_diff_points=a['map50'] - u['map50'],
                throughput_ratio=a['images_per_s'] / max(u['images_per_s'], 1e-9))
            print(f"adapter - ultralytics mAP@0.5: {results['ratios']['map50_diff_points']:+.2f} "
                  f"points; throughput ratio adapter/ultralytics: "
                  f"{results['ratios']['throughput_ratio']:.2f}x")
        (work / 'parity.json').write_text(json.dumps(dict(args=vars(args), **results), indent=1))
        if not tmp:
            print(f'written {work / "parity.json"}')
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
