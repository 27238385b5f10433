"""Host <-> device transfers of the batched inference path: one each way per batch.

On a CPU-only machine a copy to the "device" is no copy at all, so counting memory copies
(``torch.profiler`` ``aten::copy_`` events between devices) would always give 0. What is counted
instead is every call that WOULD move data between host and device on a GPU: ``Tensor.to`` with a
device, ``.cuda()``, ``.cpu()``, ``.numpy()``, ``.tolist()``, ``.item()``, made by spinexr's own
code (the frame that calls torch lies in ``spinexr/``) while ``run_inference`` runs, recorded by a
``TorchFunctionMode``. The code path is the same on CPU and CUDA (the batched device path has no
CPU branch), so each counted call is one transfer on a GPU. Not counted: library frames (mmengine's
``cast_data`` calling ``.to(device)`` on a batch already there is a no-op on a GPU; Ultralytics'
NMS synchronises internally through boolean masks but copies no results), the DataLoader's own
host-side bookkeeping (its seed ``.item()``), and the writer thread (off the critical path; a
torch function mode is thread-local).
"""
import math
import os.path as osp
import sys

import cv2
import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from _tools import REPO

_SPINEXR = osp.join(str(REPO), 'spinexr') + osp.sep
_TORCH = osp.dirname(torch.__file__) + osp.sep
_LOADER = osp.join(_TORCH, 'utils', 'data') + osp.sep
_H2D = {'cuda', 'pin_memory'}
_D2H = {'cpu', 'numpy', 'tolist', 'item'}


def _to_device_arg(args, kwargs) -> bool:
    """``Tensor.to`` called with a device (not only a dtype)."""
    cands = list(args[1:]) + [kwargs.get('device')]
    return any(isinstance(a, (torch.device, str)) or
               (isinstance(a, torch.Tensor)) for a in cands if a is not None)


class TransferCounter(TorchFunctionMode):
    """Records transfer-like torch calls made from spinexr's own frames."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        kind = None
        if name == 'to' and _to_device_arg(args, kwargs):
            kind = 'h2d'  # to the inference device (results come back with .cpu())
        elif name in ('tensor', 'as_tensor') and kwargs.get('device') is not None:
            kind = 'h2d'  # host data made into a device tensor
        elif name in _H2D:
            kind = 'h2d'
        elif name in _D2H:
            kind = 'd2h'
        if kind is not None:
            frame = sys._getframe(1)
            if frame.f_code.co_filename.startswith(_LOADER):
                return func(*args, **kwargs)  # the DataLoader's host-side bookkeeping (seeds)
            while frame is not None and (frame.f_code.co_filename.startswith(_TORCH)
                                         or frame.f_code.co_filename == __file__):
                frame = frame.f_back
            where = frame.f_code.co_filename if frame is not None else '?'
            if where.startswith(_SPINEXR):
                self.calls.append((kind, name, osp.relpath(where, str(REPO)), frame.f_lineno))
        return func(*args, **kwargs)


def _write_configs(tmp_path):
    det_cfg = tmp_path / 'yolo11n_tiny.py'
    det_cfg.write_text(
        f"_base_ = '{REPO}/configs/yolo11/yolo11n_35e_vindr-640.py'\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=True),\n"
        "    dict(type='PackDetInputs')]))\n")
    cls_cfg = tmp_path / 'cls.py'
    cls_cfg.write_text(
        f"_base_ = '{REPO}/configs/classifiers/resnet50_60e_vindr-384.py'\n"
        "model = dict(backbone=dict(depth=18), head=dict(in_channels=512))\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(32, 32), keep_ratio=False),\n"
        "    dict(type='PackInputs')]))\n")
    return str(det_cfg), str(cls_cfg)


def _write_inputs(tmp_path, n=5):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = (96, 72) if i % 2 else (80, 120)  # two sizes: a batch mixes them
        img = rng.integers(0, 50, size=(h, w)).astype(np.uint8)
        img[20:50, 20:40] = 220
        paths.append(tmp_path / f'im{i}.png')
        cv2.imwrite(str(paths[-1]), img)
    return [str(p) for p in paths]


def test_one_transfer_each_way_per_batch(tmp_path):
    """Per batch: one host-to-device copy of the stacked uint8 batch and one device-to-host copy
    of all results (the classifier's probabilities packed with the boxes)."""
    from spinexr.apis.inference import build_classifier, build_detector, run_inference
    det_cfg, cls_cfg = _write_configs(tmp_path)
    torch.manual_seed(0)
    detector = build_detector(det_cfg, None, fuse=False)
    classifier, _ = build_classifier(cls_cfg, None)
    cls_ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, cls_ckpt)
    files = _write_inputs(tmp_path)
    batch = 2
    for clf in (None, [cls_cfg, str(cls_ckpt)]):
        counter = TransferCounter()
        with counter:
            res = run_inference(files, det_cfg, None, out_dir=str(tmp_path / 'out'),
                                batch_size=batch, workers=0, progress=False, score_thr=0.0,
                                detector=detector, classifier=clf, overlays=True)
        assert res['num_images'] == len(files)
        n_batches = math.ceil(len(files) / batch)
        h2d = [c for c in counter.calls if c[0] == 'h2d']
        d2h = [c for c in counter.calls if c[0] == 'd2h' and c[1] != 'numpy']
        assert len(h2d) == n_batches, h2d
        assert len(d2h) == n_batches, d2h
        # .numpy() only on the host copy (one per batch): no per-image conversions
        numpy_calls = [c for c in counter.calls if c[1] == 'numpy']
        assert len(numpy_calls) <= n_batches, numpy_calls
