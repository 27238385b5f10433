"""Export a trained :class:`~spinexr.models.detectors.YOLO11Detector` to an Ultralytics ``.pt``.

The written file has the layout of the checkpoints Ultralytics' own trainer saves (a pickled
``DetectionModel`` under ``'ema'`` plus ``train_args`` and metadata), so ``ultralytics.YOLO(path)``
loads it and predicts, validates or exports it further (ONNX, TensorRT, ...) with
Ultralytics' tools.

Ultralytics is imported lazily (importing it sets environment variables and thread counts).
"""
import copy
import datetime
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn


def detector_to_ultralytics_ckpt(detector: nn.Module,
                                 class_names: Optional[Sequence[str]] = None,
                                 imgsz: int = 640,
                                 half: bool = False) -> Dict[str, Any]:
    """Build the checkpoint dict Ultralytics' loader expects from a spinexr YOLO11 detector.

    Args:
        detector (nn.Module): A ``YOLO11Detector`` (or a model wrapper around one).
        class_names (Sequence[str], optional): Class names in label order; ``'0'``, ``'1'`` ...
            when omitted.
        imgsz (int): Default inference size recorded in ``train_args``. Defaults to 640.
        half (bool): Store FP16 weights as Ultralytics' trainer does (the loader converts back to
            FP32; predictions then differ by FP16 rounding). Defaults to False (exact).

    Returns:
        dict: ``{'ema': DetectionModel, 'model': None, 'train_args': {...}, ...}``.
    """
    import ultralytics

    detector = getattr(detector, 'module', detector)
    # NCHW like Ultralytics' own checkpoints (its fuse() uses .view(), which fails on NHWC)
    yolo = copy.deepcopy(detector.yolo).cpu().float().eval()
    yolo = yolo.to(memory_format=torch.contiguous_format)
    nc = int(yolo.model[-1].nc)
    if class_names is None:
        class_names = [str(i) for i in range(nc)]
    if len(class_names) != nc:
        raise ValueError(f'{len(class_names)} class names given for a model with nc={nc}')
    train_args = dict(task='detect', imgsz=int(imgsz), single_cls=False,
                      model=getattr(detector, 'model_yaml', None))
    yolo.names = {i: str(name) for i, name in enumerate(class_names)}
    yolo.args = dict(train_args)  # Ultralytics' loader replaces it by its defaults + train_args
    yolo.task = 'detect'
    for attr in ('criterion', ):
        if hasattr(yolo, attr):
            delattr(yolo, attr)
    for p in yolo.parameters():
        p.requires_grad_(False)
    if half:
        yolo = yolo.half()
    return {
        'date': datetime.datetime.now().isoformat(),
        'version': ultralytics.__version__,
        'license': 'AGPL-3.0 (Ultralytics)',
        'docs': 'exported by spinexr tools/model_converters/spinexr_to_ultralytics.py',
        'epoch': -1,
        'best_fitness': None,
        'model': None,
        'ema': yolo,
        'updates': None,
        'optimizer': None,
        'train_args': train_args,
        'train_metrics': None,
        'train_results': None,
    }


def save_ultralytics_pt(detector: nn.Module,
                        out_file: str,
                        class_names: Optional[Sequence[str]] = None,
                        imgsz: int = 640,
                        half: bool = False) -> str:
    """Write ``detector`` as an Ultralytics ``.pt`` that ``ultralytics.YOLO(out_file)`` loads.

    Args:
        detector (nn.Module): A ``YOLO11Detector``.
        out_file (str): Output path; must end in ``.pt`` (Ultralytics checks the suffix).
        class_names (Sequence[str], optional): Class names in label order.
        imgsz (int): Default inference size. Defaults to 640.
        half (bool): Store FP16 weights. Defaults to False.

    Returns:
        str: ``out_file``.
    """
    if not str(out_file).endswith('.pt'):
        raise ValueError(f'Ultralytics weights must end in .pt, got {out_file}')
    ckpt = detector_to_ultralytics_ckpt(detector, class_names=class_names, imgsz=imgsz, half=half)
    torch.save(ckpt, out_file)
    return str(out_file)
