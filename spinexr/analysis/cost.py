"""What a model costs: images per second, parameters and GFLOPs, training wall time.

These fill the cost columns of the comparison table (:data:`spinexr.analysis.report.COST_COLUMNS`):
:func:`predict_split` runs a detector over a test split at batch 1 and times ``test_step``
(its predictions feed the metrics), :func:`model_complexity` counts parameters and GFLOPs of one
square input, :func:`training_time_s` reads the training wall time from a work dir, and
:func:`device_description` names the machine the timings were taken on.
"""
import glob
import json
import os.path as osp
import platform
import re
import time
from datetime import datetime
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..evaluation.coco_ap import ImagePred


def predict_split(model: torch.nn.Module, cfg, device: str = 'cpu',
                  warmup: int = 2) -> Tuple[List[ImagePred], float]:
    """Run the model over the test dataloader of ``cfg`` (batch 1).

    Args:
        model (torch.nn.Module): Detector in eval mode.
        cfg (Config): Config with the test dataloader.
        device (str): Device of the model.
        warmup (int): Images excluded from the timing.

    Returns:
        tuple[list[ImagePred], float]: Predictions (original pixels) and images/s of
        ``model.test_step`` (pre-processing, forward, post-processing; no data loading).
    """
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    preds: List[ImagePred] = []
    seconds, timed = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            outs = model.test_step(batch)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= warmup:
                seconds += time.perf_counter() - t0
                timed += len(outs)
            for ds in outs:
                pi = ds.pred_instances
                preds.append(
                    ImagePred(img_id=int(ds.img_id),
                              bboxes=pi.bboxes.cpu().numpy().astype(np.float64),
                              scores=pi.scores.cpu().numpy().astype(np.float64),
                              labels=pi.labels.cpu().numpy().astype(np.int64)))
    return preds, (timed / seconds if seconds > 0 else float('nan'))


def model_complexity(model: torch.nn.Module, img_size: int = 640,
                     device: str = 'cpu') -> Tuple[float, Optional[float], str]:
    """Parameters and GFLOPs of one ``img_size`` x ``img_size`` image.

    Counting follows mmdet's ``tools/analysis_tools/get_flops.py`` (mmengine's jit-trace counter on
    the ``tensor``-mode forward, one multiply-add = one FLOP). Custom ops without a counter (e.g.
    multi-scale deformable attention) count as zero; the note says so. The input carries one
    ground-truth box because some ``tensor``-mode forwards need it (mmdet's ``SparseRoIHead`` runs
    its training-time matching there, so mmdet's own script fails on Sparse R-CNN); the note says
    when that matching is part of the count.

    Returns:
        tuple[float, float | None, str]: Millions of parameters, GFLOPs or ``None``, note.
    """
    from functools import partial

    from mmengine.analysis import get_model_complexity_info
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    shape = (img_size, img_size)
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                         batch_input_shape=shape, scale_factor=(1.0, 1.0)))
    quarter, half = img_size / 4, img_size / 2
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[quarter, quarter, quarter + half, quarter + half]], device=device),
        labels=torch.zeros(1, dtype=torch.long, device=device))
    data = dict(inputs=[torch.zeros(3, *shape, dtype=torch.uint8, device=device)],
                data_samples=[sample])
    forward = model.forward
    try:
        with torch.no_grad():
            data = model.data_preprocessor(data, False)
            model.forward = partial(forward, data_samples=data['data_samples'])
            out = get_model_complexity_info(model, None, inputs=data['inputs'],
                                            show_table=False, show_arch=False)
        gflops = float(out['flops']) / 1e9
        note = ''
        if type(model).__name__ in ('DINO', 'DeformableDETR'):
            note = 'deformable attention not counted'
        elif type(getattr(model, 'roi_head', None)).__name__ == 'SparseRoIHead':
            note = "GFLOPs include mmdet's tensor-mode box matching (1 box)"
        return params_m, gflops, note
    except Exception as exc:  # noqa: BLE001 - report why the count failed
        return params_m, None, f'GFLOPs n/a: {type(exc).__name__}: {str(exc)[:80]}'
    finally:
        model.forward = forward


_LOG_TIME = re.compile(r'^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})')


def training_time_s(work_dir: Optional[str]) -> Optional[float]:
    """Training wall time of a work dir, in seconds.

    ``train_time.json`` (``{"seconds": ...}``, written by ``tools/run_comparison.py``) wins;
    otherwise the span between the first and last time stamp of the newest mmengine log
    (``<timestamp>/<timestamp>.log``), which includes validation and checkpoint saving.

    Returns:
        float | None: Seconds, or ``None`` if unknown.
    """
    if not work_dir or not osp.isdir(work_dir):
        return None
    jf = osp.join(work_dir, 'train_time.json')
    if osp.isfile(jf):
        return float(json.loads(open(jf).read())['seconds'])
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)
    for log in reversed(logs):
        stamps = []
        with open(log, errors='replace') as f:
            for line in f:
                m = _LOG_TIME.match(line)
                if m:
                    stamps.append(m.group(1))
        train_markers = ('Epoch(train)', 'Iter(train)', 'Checkpoints will be saved to')
        if len(stamps) >= 2 and any(m in ln for ln in open(log, errors='replace')
                                    for m in train_markers):
            fmt = '%Y/%m/%d %H:%M:%S'
            return (datetime.strptime(stamps[-1], fmt) -
                    datetime.strptime(stamps[0], fmt)).total_seconds()
    return None


def device_description(device: str) -> str:
    """Human-readable name of the device the timings were taken on."""
    if device.startswith('cuda'):
        return f'GPU {torch.cuda.get_device_name(torch.device(device))}'
    return (f'CPU {platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads')


__all__ = ['predict_split', 'model_complexity', 'training_time_s', 'device_description']
