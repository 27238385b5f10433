"""EMA update time: mmdet's ``ExpMomentumEMA`` vs spinexr's ``YOLOModelEMA`` on YOLO11.

Both average the same tensors with the same weights (Ultralytics' ``decay=0.9999, tau=2000``,
``update_buffers=True``); ``ExpMomentumEMA`` reads its tensor step count back once per tensor
(a device-to-host sync on CUDA) and loops over tensors in Python, ``YOLOModelEMA`` launches one
``_foreach_lerp_`` per update. Prints milliseconds per update (median of ``--repeats`` timed
updates after ``--warmup``), the ratio, and the ``aten::item`` and ``aten::`` operator counts
of one update.

    python benchmarks/bench_ema.py --sizes n l --threads 1     # CPU
    python benchmarks/bench_ema.py --sizes n l --device cuda   # GPU
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', nargs='+', default=['n', 'l'], choices=list('nsmlx'),
                   help='YOLO11 scales')
    p.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: both if CUDA)")
    p.add_argument('--warmup', type=int, default=3, help='untimed updates first')
    p.add_argument('--repeats', type=int, default=20, help='timed updates')
    p.add_argument('--threads', type=int, default=None,
                   help="torch's intra-op threads (default: torch's choice; 1 is steadier on a "
                        'loaded machine)')
    return p.parse_args(argv)


def _sync(device) -> None:
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _profile(ema, model) -> tuple:
    """Counts of ``aten::item`` / ``aten::_local_scalar_dense`` events (device-to-host reads on
    CUDA) and of all ``aten::`` operator events in one update."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ema.update_parameters(model)
    events = prof.key_averages()
    items = sum(e.count for e in events
                if e.key in ('aten::item', 'aten::_local_scalar_dense'))
    return items, sum(e.count for e in events if e.key.startswith('aten::'))


def time_ema(ema, model, device, warmup: int, repeats: int) -> float:
    """Median milliseconds of one ``update_parameters`` (device work included)."""
    for _ in range(warmup):
        ema.update_parameters(model)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        ema.update_parameters(model)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(size: str, device_name: str, warmup: int, repeats: int) -> dict:
    """Time both EMA classes on YOLO11-``size``; return the figures."""
    import torch
    from mmdet.models.layers import ExpMomentumEMA
    from ultralytics.nn.tasks import DetectionModel

    from spinexr.engine import YOLOModelEMA
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = DetectionModel(f'yolo11{size}.yaml', nc=7, verbose=False).to(device)
    n_tensors = sum(1 for _ in model.state_dict())
    kw = dict(momentum=0.0001, gamma=2000, update_buffers=True)
    row = dict(size=size, device=device_name, state_tensors=n_tensors)
    for name, cls in (('ExpMomentumEMA', ExpMomentumEMA), ('YOLOModelEMA', YOLOModelEMA)):
        ema = cls(model, **kw)
        row[name + '_ms'] = time_ema(ema, model, device, warmup, repeats)
        row[name + '_items'], row[name + '_ops'] = _profile(ema, model)
        del ema
    row['speedup'] = row['ExpMomentumEMA_ms'] / row['YOLOModelEMA_ms']
    return row


def main(argv=None) -> None:
    import torch
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [args.device] if args.device else (
        ['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f"{'model':<9}{'device':<7}{'tensors':>8}{'ExpMomentumEMA ms':>19}{'items':>7}"
          f"{'ops':>7}{'YOLOModelEMA ms':>17}{'items':>7}{'ops':>7}{'speedup':>9}")
    for device in devices:
        for size in args.sizes:
            r = bench(size, device, args.warmup, args.repeats)
            print(f"{'yolo11' + size:<9}{device:<7}{r['state_tensors']:>8}"
                  f"{r['ExpMomentumEMA_ms']:>19.2f}{r['ExpMomentumEMA_items']:>7}"
                  f"{r['ExpMomentumEMA_ops']:>7}"
                  f"{r['YOLOModelEMA_ms']:>17.2f}{r['YOLOModelEMA_items']:>7}"
                  f"{r['YOLOModelEMA_ops']:>7}"
                  f"{r['speedup']:>8.2f}x", flush=True)


if __name__ == '__main__':
    main()
