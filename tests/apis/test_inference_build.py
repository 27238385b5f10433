"""build_detector: the one loading route for inference and the comparison table."""
import copy

import pytest
from mmengine.config import Config

from spinexr.apis.inference import build_detector
from spinexr.utils.paths import config_path

YOLO = 'configs/yolo11/yolo11n_35e_vindr-640.py'


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_build_detector_from_a_loaded_config_leaves_it_as_it_is():
    cfg = Config.fromfile(config_path(YOLO))
    cfg.model.pretrained = 'not/used.pt'
    before = copy.deepcopy(cfg.to_dict())
    model, spec, names = build_detector(cfg, None, prepare=False)
    assert cfg.to_dict() == before  # the caller's config is not modified
    assert len(names) == 7 and spec.scale is not None
    assert _n_params(model) == _n_params(build_detector(config_path(YOLO), None,
                                                        prepare=False)[0])


def test_prepare_false_keeps_the_model_as_trained():
    """The comparison table counts the trained model's parameters: no Conv+BN fusing."""
    trained, _, _ = build_detector(YOLO, None, prepare=False)
    fused, _, _ = build_detector(YOLO, None)
    assert not trained.training and not fused.training
    assert any(type(m).__name__ == 'BatchNorm2d' for m in trained.modules())
    assert not any(type(m).__name__ == 'BatchNorm2d' for m in fused.modules())
    assert _n_params(fused) < _n_params(trained)


def test_build_detector_finds_a_shipped_config_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, _, _ = build_detector(YOLO, None, prepare=False)
    assert type(model).__name__ == 'YOLO11Detector'
    with pytest.raises(FileNotFoundError, match='config file not found'):
        build_detector('configs/yolo11/nothing.py', None)
