"""Profile one YOLO11 training iteration: the spinexr adapter (Runner) vs Ultralytics' trainer.

Both sides are the real things, built as ``bench_yolo_parity.py`` builds them: the adapter is a
``SpinexrRunner`` from the shipped ``configs/yolo11/yolo11l_35e_vindr-640.py`` (sizes scaled by
``adapter_config``), driven one ``train_loop.run_iter`` at a time (hooks included: parameter
schedule, EMA, logging); Ultralytics is its ``DetectionTrainer`` after ``_setup_train()``, driven
by the body of ``_do_train`` for one batch with the trainer's own methods (warm-up schedule,
``preprocess_batch``, ``model(batch)``, ``loss.sum()``, ``scaler.scale(loss).backward()``,
``optimizer_step()`` when the accumulation rule says so, the running-mean ``tloss`` and the progress
string). Same generated data, model, batch, image size and accumulation; CPU, fixed torch threads.

Step figures per iteration (median over ``--iters``, batches from the real train loaders, taken
outside the timed call): host wall time without the profiler; then one ``torch.profiler`` pass with
Python stacks that gives operator counts, would-be device syncs, the top operators by self time
and a per-phase table (see ``profile_yolo_phases.py`` for the counting rules). Pipeline figures:
``dataset[i]`` samples/s in the main process (no DataLoader) for the mosaic stage and the
no-mosaic stage, with per-transform times.

    python benchmarks/profile_yolo_step.py                    # YOLO11-n, 320 px, batch 8
    python benchmarks/profile_yolo_step.py --size l --imgsz 640 --batch 4 --iters 3
"""
import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from copy import copy
from pathlib import Path
from statistics import median
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root', help='converted layout; default: a tiny generated set')
    p.add_argument('--train-images', type=int, default=160,
                   help='generated train images (enough that pipeline samples load fresh images)')
    p.add_argument('--size', default='n', choices=list('nsmlx'), help='YOLO11 scale')
    p.add_argument('--imgsz', type=int, default=320)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--accumulate', type=int, default=1, help='gradient accumulation, both sides')
    p.add_argument('--multi-scale', type=float, default=0.0,
                   help='fraction of imgsz; 0 (default) keeps one size so the sides compare')
    p.add_argument('--iters', type=int, default=5, help='profiled iterations per side')
    p.add_argument('--warmup', type=int, default=2, help='iterations before measuring')
    p.add_argument('--samples', type=int, default=64, help='pipeline samples per measurement')
    p.add_argument('--pipeline-warmup', type=int, default=8, help='samples before measuring')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work-dir', help='default: a temporary folder (deleted)')
    p.add_argument('--out', help='JSON output; default <work-dir>/profile.json')
    return p.parse_args(argv)


# --------------------------------------------------------------------------- builders
class _Ready(Exception):
    """Raised by :class:`_StopBeforeFirstIter` once the runner is set up for training."""


def parity_args(args, parity) -> argparse.Namespace:
    """``bench_yolo_parity``'s arguments for the same data, model and sizes (10 epochs, mosaic
    closed for the last 2: the profiled iterations are in the first, mosaic epoch)."""
    argv = ['--size', args.size, '--imgsz', str(args.imgsz), '--batch', str(args.batch),
            '--workers', '0', '--multi-scale', str(args.multi_scale), '--epochs', '10',
            '--close-mosaic', '2', '--seed', str(args.seed), '--train-images',
            str(args.train_images), '--test-images', '4']
    return parity.parse_args(argv + (['--data-root', args.data_root] if args.data_root else []))


def build_adapter(args, parity, data: Path, work: Path):
    """Return ``(runner, next_batch)``: a SpinexrRunner set up by its own ``train()`` up to the
    first iteration (``before_run``/``before_train``/``before_train_epoch`` hooks ran)."""
    from mmengine.hooks import Hook

    from spinexr.engine import SpinexrRunner
    cfg = parity.adapter_config(parity_args(args, parity), data, work, args.accumulate, 2)

    class _StopBeforeFirstIter(Hook):
        priority = 'LOWEST'
        armed = True

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if self.armed:
                self.armed = False
                raise _Ready

    runner = SpinexrRunner.from_cfg(cfg)
    runner.register_hook(_StopBeforeFirstIter())
    try:
        runner.train()
    except _Ready:
        pass
    return runner, _cycle(runner.train_loop.dataloader)


def build_ultralytics(args, data: Path, work: Path):
    """Return ``(trainer, next_batch)``: a DetectionTrainer after ``_setup_train()``."""
    from ultralytics.engine import trainer as ul_trainer
    from ultralytics.models.yolo.detect import DetectionTrainer
    ul_trainer.check_amp = lambda model: True  # its AMP check downloads weights: skip it
    yaml = _load('bench_yolo_parity').coco_to_yolo(data, work / 'yolo_data')
    overrides = dict(
        model=f'yolo11{args.size}.yaml', data=str(yaml), task='detect', mode='train', epochs=10,
        imgsz=args.imgsz, batch=args.batch, nbs=args.batch * args.accumulate, workers=0,
        device='cpu', amp=False, plots=False, val=False, project=str(work), name='ultralytics',
        exist_ok=True, seed=args.seed, deterministic=False, optimizer='SGD', lr0=0.01, lrf=0.01,
        momentum=0.9, weight_decay=5e-4, cos_lr=True, warmup_epochs=3.0, warmup_momentum=0.8,
        warmup_bias_lr=0.1, close_mosaic=2, mosaic=1.0, mixup=0.1, fliplr=0.5, hsv_h=0.015,
        hsv_s=0.7, hsv_v=0.4, translate=0.1, scale=0.5, degrees=0.0, shear=0.0,
        multi_scale=args.multi_scale, box=7.5, cls=0.5, dfl=1.5, pretrained=False, verbose=False)
    tr = DetectionTrainer(overrides=overrides)
    tr._setup_train()
    tr.optimizer.zero_grad()
    tr.epoch, tr.tloss = 0, None
    nb = len(tr.train_loader)
    tr._profile_state = dict(ni=0, last_opt_step=-1, acc0=tr.accumulate,
                             nw=tr._get_warmup_iterations(nb))
    tr.model.train()
    return tr, _cycle(tr.train_loader)


def _cycle(loader) -> Callable:
    state = dict(it=iter(loader))

    def next_batch():
        try:
            return next(state['it'])
        except StopIteration:
            state['it'] = iter(loader)
            return next(state['it'])
    return next_batch


# --------------------------------------------------------------------------- one UL iteration
# The body of Ultralytics' ``_do_train`` for one batch (8.4.190), split into functions whose
# names the phase rules of profile_yolo_phases.py recognise.
def _ul_schedule(tr, ni: int) -> None:
    import numpy as np
    st = tr._profile_state
    nw = st['nw']
    if nw and ni <= nw:
        xi = [0, nw]
        tr.accumulate = max(1, int(np.interp(ni, xi, [1, st['acc0']]).round()))
        for x in tr.optimizer.param_groups:
            x['lr'] = float(np.interp(ni, xi, [
                tr.args.warmup_bias_lr if x.get('param_group') == 'bias' else 0.0,
                x['initial_lr'] * tr.lf(tr.epoch)]))
            if 'momentum' in x:
                x['momentum'] = float(np.interp(ni, xi, [tr.args.warmup_momentum,
                                                         tr.args.momentum]))


def _ul_preprocess(tr, batch: dict) -> dict:
    return tr.preprocess_batch(batch)


def _ul_loss(tr, batch: dict) -> None:
    loss, tr.loss_items = tr.model(batch)
    tr.loss = loss.sum()
    if not tr.loss_names:
        tr.loss_names = tuple(tr.loss_items)


def _ul_backward(tr) -> None:
    tr.scaler.scale(tr.loss).backward()


def _ul_optimizer(tr) -> None:
    tr.optimizer_step()


def _ul_log(tr, i: int, batch: dict) -> str:
    tr.tloss = (tr.loss_items if tr.tloss is None else
                {k: (tr.tloss[k] * i + v) / (i + 1) for k, v in tr.loss_items.items()})
    return (('%11s' * 2 + '%11.4g' * (2 + len(tr.tloss))) % (
        f'{tr.epoch + 1}/{tr.epochs}', f'{tr._get_memory():.3g}G', *tr.tloss.values(),
        batch.get('cls', batch['img']).shape[0], batch['img'].shape[-1]))


def ul_iteration(tr, batch: dict) -> None:
    """One batch of ``DetectionTrainer._do_train`` (epoch 0, no OOM handling, no plots)."""
    from ultralytics.utils.torch_utils import autocast
    st = tr._profile_state
    ni = i = st['ni']
    tr.run_callbacks('on_train_batch_start')
    _ul_schedule(tr, ni)
    with autocast(tr.amp, device=tr.device.type):
        batch = _ul_preprocess(tr, batch)
        _ul_loss(tr, batch)
    _ul_backward(tr)
    if ni - st['last_opt_step'] >= tr.accumulate:
        _ul_optimizer(tr)
        st['last_opt_step'] = ni
    _ul_log(tr, i, batch)
    tr.run_callbacks('on_train_batch_end')
    st['ni'] += 1


# --------------------------------------------------------------------------- measuring
def measure_steps(sides: Dict[str, tuple], args, phases) -> Dict[str, dict]:
    """Warm up, time ``args.iters`` calls without the profiler, then profile as many.

    The sides alternate call by call, so load from other processes hits both alike.

    Args:
        sides (dict): name -> ``(step, next_batch)``; ``step(batch)`` runs one iteration.
        args (argparse.Namespace): ``warmup``, ``iters``.
        phases (module): ``profile_yolo_phases``.

    Returns:
        dict: name -> figures (``wall_ms_median``, ``wall_ms`` and :func:`summarise`'s).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile
    for _ in range(args.warmup):
        for step, next_batch in sides.values():
            step(next_batch())
    wall: Dict[str, List[float]] = {name: [] for name in sides}
    prof_iters: Dict[str, List[dict]] = {name: [] for name in sides}
    for _ in range(args.iters):
        for name, (step, next_batch) in sides.items():
            batch = next_batch()
            t0 = time.perf_counter()
            step(batch)
            wall[name].append(1000 * (time.perf_counter() - t0))
    for _ in range(args.iters):
        for name, (step, next_batch) in sides.items():
            batch = next_batch()
            with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
                step(batch)
            prof_iters[name].append(phases.analyse_events(prof.events(), step.__name__))
    out = {}
    for name in sides:
        out[name] = phases.summarise(prof_iters[name])
        out[name].update(wall_ms_median=median(wall[name]), wall_ms=wall[name],
                         threads=torch.get_num_threads())
        share = out[name]['wall_ms_median'] / max(out[name]['profiled_ms'], 1e-9)
        for ph in out[name]['phases'].values():
            ph['est_ms'] = ph['ms'] * share
    return out


def code_version() -> dict:
    """The checkout measured: commit and the files changed since (the code may be in flux)."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(['git', '-C', str(REPO), *a], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ''
    changed = [line[3:] for line in git('status', '--porcelain', '--untracked-files=no')
               .splitlines()]
    return dict(commit=git('rev-parse', '--short', 'HEAD') or 'unknown', changed=changed)


def measure_pipeline(sides: Dict[str, tuple], n: int, warm: int) -> Dict[str, dict]:
    """Samples/s of ``dataset[i]`` and per-transform ms, the sides alternating sample by sample.

    Args:
        sides (dict): name -> ``(dataset, staged)``; ``staged(i)`` runs ``dataset[i]`` transform by
            transform and returns ``[(name, ms), ...]``.
        n (int): Samples measured (``dataset[i]``, then as many staged), after ``warm`` samples.
        warm (int): Samples before measuring (fills the mosaic/mixup caches).

    Returns:
        dict: name -> ``samples_per_s``, ``ms_per_sample``, ``transforms_ms`` (mean per sample).
    """
    total = {name: 0.0 for name in sides}
    per: Dict[str, Dict[str, List[float]]] = {name: {} for name in sides}
    for i in range(warm + 2 * n):
        for name, (ds, staged) in sides.items():
            k = i % len(ds)
            if i < warm:
                ds[k]
            elif i < warm + n:
                t0 = time.perf_counter()
                ds[k]
                total[name] += time.perf_counter() - t0
            else:
                for j, (tname, ms) in enumerate(staged(k)):
                    per[name].setdefault(f'{j:02d} {tname}', []).append(ms)
    return {name: dict(samples_per_s=n / max(total[name], 1e-9),
                       ms_per_sample=1000 * total[name] / n,
                       transforms_ms={k: sum(v) / n for k, v in per[name].items()})
            for name in sides}


def _timed(fns, data) -> list:
    out = []
    for name, fn in fns:
        t0 = time.perf_counter()
        data = fn(data)
        out.append((name, 1000 * (time.perf_counter() - t0)))
        if data is None:
            break
    return out


def adapter_staged(ds) -> Callable:
    """Per-transform run of the adapter dataset's pipeline, as ``dataset.prepare_data`` does."""
    def staged(i):
        fns = [('get_data_info', lambda _: ds.get_data_info(i))]
        fns += [(type(t).__name__, t) for t in ds.pipeline.transforms]
        return _timed(fns, None)
    return staged


def ultralytics_staged(ds) -> Callable:
    """Per-transform run of ``YOLODataset.__getitem__`` (nested Compose flattened)."""
    def flat(ts):
        for t in ts:
            yield from (flat(t.transforms) if hasattr(t, 'transforms') else (t, ))

    def staged(i):
        fns = [('get_image_and_label', lambda _: ds.get_image_and_label(i))]
        fns += [(type(t).__name__, t) for t in flat(ds.transforms.transforms)]
        return _timed(fns, None)
    return staged


def measure_pipelines(runner, tr, args) -> dict:
    from mmcv.transforms import Compose
    ads, uds = runner.train_loop.dataloader.dataset, tr.train_loader.dataset
    res = {}
    for stage in ('mosaic', 'no_mosaic'):
        if stage == 'no_mosaic':
            switch = [h for h in runner.cfg.custom_hooks
                      if h['type'] in ('CloseMosaicHook', 'PipelineSwitchHook')]
            ads.pipeline = Compose(switch[0]['switch_pipeline'])
            tr._close_dataloader_mosaic()
        m = measure_pipeline(dict(adapter=(ads, adapter_staged(ads)),
                                  ultralytics=(uds, ultralytics_staged(uds))),
                             args.samples, args.pipeline_warmup)
        res[stage] = dict(**m, ratio=m['adapter']['samples_per_s'] /
                          max(m['ultralytics']['samples_per_s'], 1e-9))
    return res


def main(argv=None) -> dict:
    args = parse_args(argv)
    tmp = None
    if args.work_dir:
        work = Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix='yolo_profile_'))
        tmp = work
    os.environ.setdefault('YOLO_CONFIG_DIR', str(work / 'ultralytics_settings'))
    os.environ.setdefault('YOLO_OFFLINE', '1')
    sys.path.insert(0, str(REPO))
    parity, phases = _load('bench_yolo_parity'), _load('profile_yolo_phases')
    import torch
    try:
        data = parity.make_data(parity_args(args, parity), work)
        runner, a_next = build_adapter(args, parity, data, work)
        tr, u_next = build_ultralytics(args, data, work)
        torch.set_num_threads(args.threads)  # after both: Ultralytics' select_device sets it

        def run_iter(batch, _loop=runner.train_loop):
            # batch_idx within the epoch, as EpochBasedTrainLoop.run_epoch passes it
            _loop.run_iter(_loop.iter % len(_loop.dataloader), batch)

        def ul_step(batch):
            ul_iteration(tr, batch)

        steps = measure_steps(dict(adapter=(run_iter, a_next), ultralytics=(ul_step, u_next)),
                              args, phases)
        result = dict(
            args=vars(args), code=code_version(), settings=phases.settings(args),
            step=dict(**steps, ratio_wall=steps['adapter']['wall_ms_median'] /
                      max(steps['ultralytics']['wall_ms_median'], 1e-9)),
            pipeline=measure_pipelines(runner, tr, args))
        print(phases.format_report(result))
        out = Path(args.out) if args.out else work / 'profile.json'
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        if not tmp or args.out:
            print(f'written {out}')
        return result
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
