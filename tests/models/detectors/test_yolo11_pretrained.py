"""``YOLO11Detector(pretrained=...)``: an Ultralytics .pt is read with an allow-list; a file
holding anything else is refused unless ``trust_checkpoint=True`` (issue 11)."""
import copy
import os
import pickle

import pytest
import torch

from spinexr.models.detectors import YOLO11Detector

NC = 7


class _Payload:
    """Unpickling it runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_pretrained_crafted_pt_needs_trust_checkpoint(tmp_path):
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(1)
    src = DetectionModel('yolo11n.yaml', nc=80, verbose=False)
    marker = tmp_path / 'was_executed'
    pt = tmp_path / 'crafted.pt'
    torch.save({'model': None, 'ema': copy.deepcopy(src).half(), 'train_args': {},
                'train_metrics': {'fitness': _Payload(str(marker))}}, pt)
    key = 'model.0.conv.weight'
    ref = src.half().float().state_dict()[key]

    model = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC, pretrained=str(pt))
    with pytest.raises(pickle.UnpicklingError, match='--trust-checkpoint') as err:
        model.init_weights()
    assert str(pt) in str(err.value)
    assert not marker.exists()
    assert not torch.equal(model.yolo.state_dict()[key], ref)

    trusted = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC, pretrained=str(pt),
                             trust_checkpoint=True)
    trusted.init_weights()
    assert marker.exists()
    torch.testing.assert_close(trusted.yolo.state_dict()[key], ref)


def test_pretrained_plain_ultralytics_pt_needs_no_opt_in(tmp_path):
    """The layout Ultralytics' trainer saves (modules, tensors, dicts) loads without trust."""
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(2)
    src = DetectionModel('yolo11n.yaml', nc=80, verbose=False)
    pt = tmp_path / 'yolo11n.pt'
    torch.save({'epoch': -1, 'model': None, 'ema': copy.deepcopy(src).half(),
                'train_args': {'imgsz': 640}}, pt)
    model = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC, pretrained=str(pt))
    model.init_weights()
    key = 'model.0.conv.weight'
    torch.testing.assert_close(model.yolo.state_dict()[key], src.half().float().state_dict()[key])
