"""Tests of the shared Ultralytics adapter base: class layout and unchanged state-dict keys."""
import hashlib
import inspect

import pytest

from spinexr.models.detectors import RTDETRDetector, YOLO11Detector
from spinexr.testing.tiny_models import tiny_rtdetr_yaml

#: Methods both adapters share (defined once, on the base class).
SHARED = ('init_weights', 'load_ultralytics_weights', 'prepare_for_inference', 'extract_feat',
          '_apply_memory_format', '_prepare_inputs', 'to_original', 'to', 'cuda', '_forward')

#: (class, constructor kwargs) -> (number of state-dict keys, sha256 of the sorted keys joined by
#: newlines), recorded from the adapters before the base class existed (commit 5f7c3b0):
#: checkpoints written then must still load.
KEYS_BEFORE = [
    (YOLO11Detector, dict(model_yaml='yolo11n.yaml', num_classes=7),
     499, 'dec7cfd176a1f90b59c5542503cfe269f4653ad9d2da1cb93828f0c730024e0d'),
    (YOLO11Detector, dict(model_yaml='yolo11l.yaml', num_classes=7),
     1015, 'f838b6cf8890b9ccb6202f152d0d8b02e8bb66ccd835c031d23c5cbc1709282e'),
    (RTDETRDetector, dict(model_yaml='rtdetr-l.yaml', num_classes=7),
     941, '9e335b08d7538e810a7196e64cdc6b375cfe732f1e6792158682ea7b4e251e10'),
    (RTDETRDetector, dict(model_yaml=None, num_classes=7),  # None: tiny_rtdetr_yaml()
     425, 'db6e495fb55d171243fc5b595655fd536537ef24cd3d21eedec9b4b5bdb53ef9'),
]


def test_both_adapters_subclass_the_base():
    from spinexr.models.detectors.ultralytics_base import UltralyticsDetector
    assert issubclass(YOLO11Detector, UltralyticsDetector)
    assert issubclass(RTDETRDetector, UltralyticsDetector)
    assert not issubclass(RTDETRDetector, YOLO11Detector)
    assert inspect.isabstract(UltralyticsDetector)
    for name in SHARED:
        assert name in vars(UltralyticsDetector), name
        assert name not in vars(YOLO11Detector) and name not in vars(RTDETRDetector), name


def test_rtdetr_carries_no_yolo11_functions():
    """RT-DETR's methods are its own or the base's, none borrowed from YOLO11Detector."""
    borrowed = []
    for name in dir(RTDETRDetector):
        attr = getattr(RTDETRDetector, name)
        qualname = getattr(attr, '__qualname__', '')
        if inspect.isroutine(attr) and qualname.startswith('YOLO11Detector'):
            borrowed.append(name)
    assert borrowed == []
    for name in SHARED:
        assert not getattr(RTDETRDetector, name).__qualname__.startswith('YOLO11Detector'), name


@pytest.mark.parametrize('cls, kwargs, count, digest', KEYS_BEFORE,
                         ids=['yolo11n', 'yolo11l', 'rtdetr-l', 'rtdetr-tiny'])
def test_state_dict_keys_unchanged(cls, kwargs, count, digest):
    if kwargs['model_yaml'] is None:
        kwargs = {**kwargs, 'model_yaml': tiny_rtdetr_yaml()}
    keys = sorted(cls(**kwargs).state_dict())
    assert len(keys) == count
    assert hashlib.sha256('\n'.join(keys).encode()).hexdigest() == digest


@pytest.mark.parametrize('cls, kwargs, message', [
    (YOLO11Detector, dict(model_yaml='yolo11n.yaml', test_cfg=dict(iou=0.5)),
     r"unknown test_cfg keys \['iou'\] for YOLO11Detector"),
    (YOLO11Detector, dict(model_yaml='yolo11n.yaml', loss_gains=dict(bbox=1.0)),
     r"unknown loss_gains keys \['bbox'\] for YOLO11Detector \(allowed: box, cls, dfl\)"),
    (RTDETRDetector, dict(model_yaml=tiny_rtdetr_yaml(), test_cfg=dict(iou_thr=0.5)),
     r"unknown test_cfg keys \['iou_thr'\] for RTDETRDetector \(allowed: conf_thr, max_det\)"),
])
def test_unknown_settings_are_refused(cls, kwargs, message):
    """A misspelt test_cfg / loss_gains key is an error naming the allowed keys, not ignored."""
    with pytest.raises(ValueError, match=message):
        cls(num_classes=7, **kwargs)
    good = cls(num_classes=7, model_yaml=kwargs['model_yaml'], test_cfg=dict(max_det=10))
    assert good.test_cfg['max_det'] == 10 and good.test_cfg['conf_thr'] == 0.001
