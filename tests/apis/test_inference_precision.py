"""The classifier of decision fusion runs on the detector's device and in its precision."""
import cv2
import numpy as np
import pytest
import torch

from spinexr.apis.inference import (BatchInferencer, ImageFileDataset, build_classifier,
                                    build_detector)
from spinexr.apis.inference_precision import InferencePrecision
from _tools import REPO


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


def _items(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(80, 64), (64, 96)]):
        path = tmp_path / f'im{i}.png'
        cv2.imwrite(str(path), rng.integers(0, 255, size=(h, w), dtype=np.uint8))
        paths.append(str(path))
    dataset = ImageFileDataset(paths)
    return [dataset[i] for i in range(len(paths))]


def _record_input(module, seen, name):
    def hook(_, args, kwargs):
        x = args[0] if args else kwargs['inputs']
        seen[name] = (x.dtype, x.device)
    return module.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_classifier_follows_detector_precision_and_device(tmp_path, dtype):
    """fp32 run: both models float32. Reduced run (a ``.half()`` YOLO11-n, as ``build_detector``
    makes for ``--fp16`` on CUDA; torch runs float16 convolutions on the CPU too): the
    float32-built classifier's weights and inputs become float16 as well, and fusion still runs."""
    det_cfg, cls_cfg = _write_configs(tmp_path)
    torch.manual_seed(0)
    detector, det_spec, names = build_detector(det_cfg, None, fuse=False, channels_last=False)
    detector.to(dtype)
    classifier, cls_spec = build_classifier(cls_cfg, None)
    assert next(classifier.parameters()).dtype == torch.float32  # built in float32
    engine = BatchInferencer(detector, det_spec, names, classifier=classifier, cls_spec=cls_spec,
                             fusion_threshold=0.5)
    assert engine.precision == InferencePrecision(torch.device('cpu'), dtype,
                                                  cast_weights=dtype != torch.float32)
    det_params = {(p.dtype, p.device) for p in detector.parameters()}
    cls_params = {(p.dtype, p.device) for p in classifier.parameters()}
    assert det_params == cls_params == {(dtype, torch.device('cpu'))}
    seen = {}
    hooks = [_record_input(detector.yolo, seen, 'detector'),
             _record_input(classifier, seen, 'classifier')]
    try:
        out = engine(_items(tmp_path))
    finally:
        for h in hooks:
            h.remove()
    assert seen['detector'] == seen['classifier'] == (dtype, torch.device('cpu'))
    assert len(out) == 2
    for rec in out:
        assert 0.0 <= rec['abnormal_prob'] <= 1.0
        assert rec['bboxes'].dtype == np.float32 and rec['bboxes'].shape[1] == 4


def test_autocast_precision_applies_to_float32_weights():
    """Float32 weights in a reduced precision (another mmdet detector with ``--fp16``) compute
    under autocast; the weights and inputs are left float32."""
    precision = InferencePrecision(torch.device('cpu'), torch.bfloat16, cast_weights=False)
    conv = precision.apply(torch.nn.Conv2d(3, 4, 3))
    x = precision.inputs(torch.rand(1, 3, 8, 8))
    assert conv.weight.dtype == x.dtype == torch.float32
    with precision.autocast():
        assert conv(x).dtype == torch.bfloat16
    fp32 = InferencePrecision.of_detector(conv, fp16=True)  # fp16 on a CPU detector: float32
    assert fp32 == InferencePrecision(torch.device('cpu'))
    with fp32.autocast():
        assert conv(x).dtype == torch.float32
