"""Summarise one ``benchmarks/gpu_check.sh`` run: ratios, steps and machine in JSON and markdown.

Reads from the output folder what the script left there (any of them may be missing, when a step
failed): ``parity.json`` (``bench_yolo_parity.py``), ``infer.json`` (``bench_infer.py``),
``steps.tsv`` (one row per step: name, status, exit code, seconds, time limit) and
``machine.json``; writes ``summary.json`` and ``summary.md`` beside them. Only the standard
library is used, so it runs before (or without) the project's stack::

    python3 benchmarks/gpu_check_summary.py OUT_DIR
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

# Measured on the H200 on 2026-11-30 (issue 12; /work/shared/notes/stack.md): YOLO11-l, 640 px,
# batch 32, AMP, 16 workers, phantom of 1,024 train images converted at 1024 px, 10 epochs.
REFERENCE = dict(
    parity=dict(adapter_images_per_s=109.7, ultralytics_images_per_s=255.7, ratio=0.43,
                adapter_steady_images_per_s=153.0, ultralytics_steady_images_per_s=310.0,
                adapter_first_epoch_s=31.9, ultralytics_first_epoch_s=7.7),
    infer=dict(spinexr=295.5, ultralytics=355.5, bare_forward=2307.0))


def _load(path: Path) -> Optional[dict]:
    """JSON object of ``path``, or ``None`` where it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(path: Path) -> List[dict]:
    """Rows of ``steps.tsv`` (tab-separated: name, status, rc, seconds, limit_s)."""
    rows = []
    if not path.is_file():
        return rows
    for n, line in enumerate(path.read_text().splitlines(), 1):
        cells = line.split('\t')
        if len(cells) != 5:
            raise ValueError(f'{path}: line {n} has {len(cells)} tab-separated cells, expected 5 '
                             f'(name, status, rc, seconds, limit_s): {line!r}')
        name, status, rc, seconds, limit = cells
        rows.append(dict(step=name, status=status, rc=int(rc), seconds=int(seconds),
                         limit_s=int(limit)))
    return rows


def side_rates(side: dict, n_train: Optional[int]) -> Dict[str, Optional[float]]:
    """All-epoch and steady (epoch 2 onwards) images/s and the first epoch of one trainer.

    Args:
        side (dict): ``parity.json``'s entry of one trainer (``epoch_s``, ``images_per_s``).
        n_train (int, optional): Training images per epoch; derived from ``images_per_s`` and
            ``epoch_s`` when not given.

    Returns:
        dict: ``images_per_s``, ``steady_images_per_s`` (``None`` with fewer than 2 epochs),
        ``first_epoch_s``, ``epoch_s``.
    """
    epochs = [float(t) for t in side.get('epoch_s') or []]
    if n_train is None and epochs:
        n_train = side['images_per_s'] * sum(epochs) / len(epochs)
    steady = None
    if n_train and len(epochs) >= 2 and sum(epochs[1:]) > 0:
        steady = n_train * (len(epochs) - 1) / sum(epochs[1:])
    return dict(images_per_s=side.get('images_per_s'), steady_images_per_s=steady,
                first_epoch_s=epochs[0] if epochs else None, epoch_s=epochs)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a and b else None


def summarise(out: Path) -> dict:
    """Build the summary of the run whose files lie in ``out`` (see the module docstring)."""
    parity, infer = _load(out / 'parity.json'), _load(out / 'infer.json')
    summary = dict(machine=_load(out / 'machine.json'), steps=read_steps(out / 'steps.tsv'),
                   reference_h200_2026_11_30=REFERENCE, parity=None, infer=None)
    if parity and 'adapter' in parity and 'ultralytics' in parity:
        n_train = None
        data_root = (parity.get('args') or {}).get('data_root')
        train_json = _load(Path(data_root) / 'annotations' / 'train.json') if data_root else None
        if train_json:
            n_train = len(train_json['images'])
        a = side_rates(parity['adapter'], n_train)
        u = side_rates(parity['ultralytics'], n_train)
        summary['parity'] = dict(
            args=parity.get('args'), train_images=n_train, adapter=a, ultralytics=u,
            map50=dict(adapter=parity['adapter'].get('map50'),
                       ultralytics=parity['ultralytics'].get('map50')),
            ratio_all_epochs=_ratio(a['images_per_s'], u['images_per_s']),
            ratio_steady=_ratio(a['steady_images_per_s'], u['steady_images_per_s']),
            first_epoch_ratio_adapter_over_ultralytics=_ratio(a['first_epoch_s'],
                                                              u['first_epoch_s']))
        steady = summary['parity']['ratio_steady']
        summary['parity']['goal_met_steady_ge_1'] = None if steady is None else steady >= 1.0
    if infer:
        summary['infer'] = dict(infer, spinexr_vs_ultralytics=infer.get('spinexr_vs_ultralytics'))
    return summary


def _f(v, fmt='{:.1f}') -> str:
    return '-' if v is None else fmt.format(v)


def to_markdown(s: dict) -> str:
    """The summary as a short markdown report."""
    m = s.get('machine') or {}
    lines = ['# gpu_check summary', '',
             f"machine: {m.get('gpu', '?')}; torch {m.get('torch', '?')}, CUDA "
             f"{m.get('cuda', '?')}, cuDNN {m.get('cudnn', '?')}; mode {m.get('mode', '?')}; "
             f"{m.get('date', '')}", '']
    p = s.get('parity')
    if p:
        args = p.get('args') or {}
        lines += [f"## Training throughput (YOLO11{args.get('size', '?')}, {args.get('imgsz')} px, "
                  f"batch {args.get('batch')}, AMP {args.get('amp')}, {args.get('epochs')} epochs "
                  f"x {p.get('train_images')} images, device {args.get('device')})", '',
                  '| | adapter (Runner) | Ultralytics | ratio |', '|---|---|---|---|']
        a, u = p['adapter'], p['ultralytics']
        lines += [
            f"| images/s, all epochs | {_f(a['images_per_s'])} | {_f(u['images_per_s'])} | "
            f"{_f(p['ratio_all_epochs'], '{:.2f}x')} |",
            f"| images/s, steady (epoch 2 on) | {_f(a['steady_images_per_s'])} | "
            f"{_f(u['steady_images_per_s'])} | {_f(p['ratio_steady'], '{:.2f}x')} |",
            f"| first epoch, s | {_f(a['first_epoch_s'])} | {_f(u['first_epoch_s'])} | |",
            f"| mAP@0.5 (few epochs: says nothing) | {_f(p['map50']['adapter'], '{:.2f}')} | "
            f"{_f(p['map50']['ultralytics'], '{:.2f}')} | |", '']
    else:
        lines += ['## Training throughput', '', 'no result (see the steps below)', '']
    i = s.get('infer')
    if i:
        r = i.get('images_per_s') or {}
        lines += [f"## Inference ({i.get('model')}, {i.get('imgsz')} px, batch {i.get('batch')}, "
                  f"fp16 {i.get('fp16')}, {i.get('images')} files, {i.get('weights')})", '',
                  '| pipeline | images/s |', '|---|---|']
        lines += [f'| {k} | {_f(v)} |' for k, v in r.items()]
        lines += ['', f"spinexr / Ultralytics predict: {i.get('spinexr_vs_ultralytics')}x", '']
    else:
        lines += ['## Inference', '', 'no result (see the steps below)', '']
    lines += ['## Steps', '', '| step | status | rc | seconds | limit s |', '|---|---|---|---|---|']
    lines += [f"| {r['step']} | {r['status']} | {r['rc']} | {r['seconds']} | {r['limit_s']} |"
              for r in s.get('steps', [])]
    ref = s['reference_h200_2026_11_30']
    lines += ['', f"Reference (H200, 2026-11-30, 10 epochs): adapter "
              f"{ref['parity']['adapter_images_per_s']} / Ultralytics "
              f"{ref['parity']['ultralytics_images_per_s']} images/s "
              f"({ref['parity']['ratio']}x); inference spinexr {ref['infer']['spinexr']} / "
              f"Ultralytics {ref['infer']['ultralytics']} images/s.", '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out', help='the output folder of benchmarks/gpu_check.sh')
    out = Path(p.parse_args(argv).out)
    summary = summarise(out)
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    md = to_markdown(summary)
    (out / 'summary.md').write_text(md)
    print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
