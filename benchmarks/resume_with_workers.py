"""Resume with loader workers: the final mAP of killed-and-resumed runs vs. the spread of seeds.

With ``num_workers=0`` and ``randomness.deterministic=True`` a ``--resume`` of the YOLO11 recipe
reproduces the uninterrupted run bitwise on CPU (``ResumeStateHook``). With workers, the
transforms run in the worker processes, whose random streams and mosaic/mixup caches restart on
resume, so the resumed epochs see other augmentations. This script measures what that costs:

1. trains YOLO11 (the recipe of ``configs/yolo11/yolo11l_35e_vindr-640.py``, sizes scaled to
   ``--imgsz``) with ``--workers`` persistent loader workers, uninterrupted, once per ``--seeds``;
2. trains each of ``--resume-seeds`` (default: the first seed) again with ``tools/train.py``,
   SIGKILLs it (its whole process group, workers included) ``--kill-iters`` iterations into epoch
   ``--kill-after + 1`` (default: half-way through the mosaic stage) and continues it with
   ``tools/train.py --resume``;
3. validates every run once, after the last epoch (mmdet ``CocoMetric`` on the test json) and
   prints mAP@0.5, mAP@0.5:0.95, the seed spread (min-max, mean, sd), whether the resumed run lies
   in it, and how each resumed run compares with the uninterrupted run of the same seed (losses up
   to the kill, first resumed loss, largest final weight difference).

Data: the parity benchmark's generated set (``make_tiny_coco``, 256 x 320 grey images, 7 classes),
on which YOLO11-n learns clearly within a few minutes of CPU. CPU-sized default (about 25 minutes
on 2 busy cores; the measurement in docs/yolo11.md added seeds 3 and 4 and a resumed seed 1 to the
same work dir, whose finished runs are reused)::

    nice -n 10 python benchmarks/resume_with_workers.py --work-dir work_dirs/resume_workers
    nice -n 10 python benchmarks/resume_with_workers.py --work-dir work_dirs/resume_workers \
        --seeds 0 1 2 3 4 --resume-seeds 0 1

Every run is a ``tools/train.py`` subprocess with ``OMP_NUM_THREADS=--threads``; the table is also
written to ``<work-dir>/resume_with_workers.json``.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--train-images', type=int, default=96)
    p.add_argument('--test-images', type=int, default=32)
    p.add_argument('--size', default='n', choices=list('nsmlx'), help='YOLO11 scale')
    p.add_argument('--epochs', type=int, default=15)
    p.add_argument('--imgsz', type=int, default=256)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--workers', type=int, default=2, help='persistent train loader workers')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--resume-seeds', type=int, nargs='+', default=None,
                   help='seeds (of --seeds) to also train killed + resumed; default: the first')
    p.add_argument('--kill-after', type=int, default=None,
                   help='SIGKILL the resumed run during the epoch after this one (default: '
                   'half-way through the mosaic stage; a resume at or after the switch to the '
                   'no-mosaic stage is exact even with workers, as the switch restarts them)')
    p.add_argument('--kill-iters', type=int, default=2,
                   help='iterations of that next epoch to let pass before the kill')
    p.add_argument('--threads', type=int, default=1, help='torch threads per training process')
    p.add_argument('--work-dir', help='default: a new temporary folder (kept); finished runs in '
                   'a reused work dir are not trained again')
    return p.parse_args(argv)


def close_mosaic_epochs(epochs: int) -> int:
    """Epochs without mosaic/mixup at the end (as in the parity benchmark: min(10, epochs // 2))."""
    return min(10, epochs // 2)


def write_config(args, data: Path, work: Path) -> Path:
    """The YOLO11 recipe at ``--imgsz`` for the generated data, with loader workers."""
    from mmengine.config import Config

    from spinexr.experiments.profiles import scale_pipeline_sizes
    cfg = Config.fromfile(str(REPO / 'configs/yolo11/yolo11l_35e_vindr-640.py'))
    factor = args.imgsz / 640
    cfg.data_root = str(data) + '/'
    cfg.model.model_yaml = f'yolo11{args.size}.yaml'
    cfg.model.loss_gain = 1  # batch x 1 accumulation, as in the CPU parity benchmark
    cfg.optim_wrapper.accumulative_counts = 1
    cfg.optim_wrapper.optimizer.weight_decay = 5e-4
    cfg.model.data_preprocessor.batch_augments[0]['random_size_range'] = (
        int(args.imgsz * 0.75), int(args.imgsz * 1.25))
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.pipeline = scale_pipeline_sizes(cfg[name].dataset.pipeline, factor)
        cfg[name].num_workers = 0
        cfg[name].persistent_workers = False
    cfg.train_dataloader.num_workers = args.workers
    cfg.train_dataloader.persistent_workers = args.workers > 0
    cfg.train_dataloader.batch_size = args.batch
    close_mosaic = close_mosaic_epochs(args.epochs)
    for hook in cfg.custom_hooks:
        if hook['type'] == 'CloseMosaicHook':  # switches at epoch args.epochs - close_mosaic
            hook['close_epochs'] = close_mosaic
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], factor)
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs  # validate once, after the last epoch
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=2)
    cfg.default_hooks.logger.interval = 1  # every iteration's loss in scalars.json
    cfg.randomness = dict(seed=args.seeds[0], deterministic=True)
    out = work / 'yolo11_resume_workers.py'
    cfg.dump(str(out))
    return out


def _train_cmd(config: Path, run_dir: Path, seed: int, resume: bool) -> List[str]:
    cmd = [sys.executable, str(REPO / 'tools/train.py'), str(config), '--work-dir', str(run_dir),
           '--cfg-options', f'randomness.seed={seed}']
    return cmd + (['--resume'] if resume else [])


def _env(args) -> Dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))


def scalars(run_dir: Path) -> List[dict]:
    """Every record of every ``vis_data/scalars.json`` of a work dir (oldest run first)."""
    rows = []
    for f in sorted(run_dir.glob('*/vis_data/scalars.json')):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def _train_losses(run_dir: Path) -> Dict[int, float]:
    return {r['iter']: r['loss'] for r in scalars(run_dir) if 'loss' in r and 'iter' in r}


def final_metrics(run_dir: Path) -> Dict[str, float]:
    rows = [r for r in scalars(run_dir) if 'coco/bbox_mAP_50' in r]
    if not rows:
        raise RuntimeError(f'{run_dir}: no validation result in vis_data/scalars.json')
    return dict(map50=100 * rows[-1]['coco/bbox_mAP_50'], map=100 * rows[-1]['coco/bbox_mAP'])


def train(args, config: Path, run_dir: Path, seed: int, resume: bool = False,
          kill_at_iter: Optional[int] = None) -> float:
    """Run ``tools/train.py``; with ``kill_at_iter`` SIGKILL its process group once that many
    iterations are logged. Returns the wall seconds."""
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # a former run's logs would mix into scalars()
    t0 = time.perf_counter()
    log = open(run_dir.parent / f'{run_dir.name}{"_resume" if resume else ""}.log', 'w')
    proc = subprocess.Popen(_train_cmd(config, run_dir, seed, resume), cwd=REPO, env=_env(args),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while proc.poll() is None:
            time.sleep(2)
            if kill_at_iter is not None and max(_train_losses(run_dir), default=0) >= kill_at_iter:
                os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader workers
                proc.wait()
                break
    finally:
        log.close()
    if kill_at_iter is None and proc.returncode != 0:
        raise RuntimeError(f'{run_dir}: tools/train.py exited {proc.returncode}; see {log.name}')
    if kill_at_iter is not None and proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f'{run_dir}: finished before the kill (iteration {kill_at_iter})')
    return time.perf_counter() - t0


def max_weight_diff(a: Path, b: Path) -> Dict[str, float]:
    """Largest absolute difference of the weights of two checkpoints: ``state_dict`` (which the
    EMA hook fills with the EMA weights) and ``ema_state_dict`` (there the raw weights)."""
    from spinexr.engine.checkpoint import load_checkpoint_dict
    ca, cb = load_checkpoint_dict(str(a)), load_checkpoint_dict(str(b))
    out = {}
    for part in ('state_dict', 'ema_state_dict'):
        sa, sb = ca.get(part, {}), cb.get(part, {})
        keys = [k for k in sa if hasattr(sa[k], 'is_floating_point') and sa[k].is_floating_point()]
        out[part] = max(float((sa[k] - sb[k]).abs().max()) for k in keys) if keys else float('nan')
    return out


def finished(run_dir: Path, epochs: int) -> bool:
    """A run of a reused ``--work-dir`` that holds its last checkpoint and validation result."""
    return (run_dir / f'epoch_{epochs}.pth').exists() and any(
        'coco/bbox_mAP_50' in r for r in scalars(run_dir))


def compare(args, straight_dir: Path, resumed_dir: Path, resumed_iter: int) -> dict:
    """Losses up to the resume point, the first resumed loss and the final weights of a resumed
    run against the uninterrupted run of its seed."""
    straight, killed = _train_losses(straight_dir), _train_losses(resumed_dir)
    before = [i for i in straight if i <= resumed_iter and i in killed]
    return dict(
        resumed_from_iter=resumed_iter, iters_compared=len(before),
        losses_equal_before_kill=all(straight[i] == killed[i] for i in before),
        first_resumed_loss=killed.get(resumed_iter + 1),
        straight_loss_same_iter=straight.get(resumed_iter + 1),
        **{f'max_weight_diff_{k}': v for k, v in max_weight_diff(
            straight_dir / f'epoch_{args.epochs}.pth',
            resumed_dir / f'epoch_{args.epochs}.pth').items()})


def main(argv=None) -> dict:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bench_yolo_parity import make_data
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='resume_workers_')).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(argparse.Namespace(data_root=None, train_images=args.train_images,
                                        test_images=args.test_images), work)
    config = write_config(args, data, work)
    kill_after = args.kill_after if args.kill_after is not None else (
        args.epochs - close_mosaic_epochs(args.epochs)) // 2
    iters_per_epoch = -(-args.train_images // args.batch)
    kill_at = kill_after * iters_per_epoch + args.kill_iters
    results: Dict[str, dict] = {}
    for seed in args.seeds:
        run = work / f'seed{seed}'
        wall = None if finished(run, args.epochs) else train(args, config, run, seed)
        results[f'seed {seed}'] = dict(final_metrics(run), wall_s=wall)
        print(f'seed {seed}: {results[f"seed {seed}"]}', flush=True)
    for seed in args.resume_seeds or args.seeds[:1]:
        run = work / f'seed{seed}_killed'
        wall = None
        if not finished(run, args.epochs):
            wall = train(args, config, run, seed, kill_at_iter=kill_at)
            wall += train(args, config, run, seed, resume=True)
        results[f'seed {seed} resumed'] = dict(
            final_metrics(run), wall_s=wall, **compare(args, work / f'seed{seed}', run,
                                                       kill_after * iters_per_epoch))

    import torch
    print(f'\nYOLO11{args.size} recipe, {args.epochs} epochs, {args.imgsz} px, batch {args.batch}, '
          f'{args.workers} persistent loader workers, {args.train_images} train / '
          f'{args.test_images} test generated images, torch threads {args.threads} '
          f'(torch {torch.__version__}); resumed runs SIGKILLed at iteration {kill_at} (epoch '
          f'{kill_after + 1}) and resumed from epoch_{kill_after}.pth; data {data}')
    print(f"{'run':<18} {'mAP@0.5':>8} {'mAP@.5:.95':>10} {'wall s':>7}")
    for name, r in results.items():
        wall = '-' if r['wall_s'] is None else f"{r['wall_s']:.0f}"
        print(f"{name:<18} {r['map50']:8.2f} {r['map']:10.2f} {wall:>7}")
    spread = {}
    straight = [r for name, r in results.items() if not name.endswith('resumed')]
    resumed = {name: r for name, r in results.items() if name.endswith('resumed')}
    for key, label in (('map50', 'mAP@0.5'), ('map', 'mAP@.5:.95')):
        vals = [r[key] for r in straight]
        mean = statistics.mean(vals)
        sd = statistics.stdev(vals) if len(vals) > 1 else float('nan')
        spread[key] = dict(min=min(vals), max=max(vals), mean=mean, sd=sd, resumed={})
        print(f'{label}: {len(vals)} uninterrupted seeds min-max {min(vals):.2f}-{max(vals):.2f}, '
              f'mean {mean:.2f}, sd {sd:.2f}')
        for name, r in resumed.items():
            inside = min(vals) <= r[key] <= max(vals)
            spread[key]['resumed'][name] = dict(value=r[key], within_min_max=inside,
                                                z=(r[key] - mean) / sd)
            print(f'  {name}: {r[key]:.2f} ({"within" if inside else "OUTSIDE"} the seed '
                  f'range, {(r[key] - mean) / sd:+.2f} sd from the mean; '
                  f'{r[key] - results[name[:-len(" resumed")]][key]:+.2f} vs. the same seed '
                  'uninterrupted)')
    for name, r in resumed.items():
        print(f"{name} vs. uninterrupted: losses equal up to the kill: "
              f"{r['losses_equal_before_kill']} ({r['iters_compared']} iterations); first resumed "
              f"iteration loss {r['first_resumed_loss']:.4f} vs {r['straight_loss_same_iter']:.4f}"
              f"; largest final weight difference {r['max_weight_diff_state_dict']:.3g} "
              f"(EMA weights; raw weights {r['max_weight_diff_ema_state_dict']:.3g})")
    out = dict(args=vars(args), results=results, spread=spread)
    (work / 'resume_with_workers.json').write_text(json.dumps(out, indent=1))
    print(f'written {work / "resume_with_workers.json"}')
    return out


if __name__ == '__main__':
    main()
