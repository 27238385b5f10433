"""Cost columns: training time from a work dir, parameters and GFLOPs of every baseline."""
import json

import pytest
from mmengine.config import Config

from spinexr.analysis.cost import model_complexity, training_time_s
from spinexr.apis.inference import build_detector
from spinexr.utils.paths import config_path


def test_training_time_from_log(tmp_path):
    log = tmp_path / '20260101_000000' / '20260101_000000.log'
    log.parent.mkdir()
    log.write_text('2026/01/01 10:00:00 - mmengine - INFO - start\n'
                   '2026/01/01 10:02:30 - mmengine - INFO - Iter(train) [1/1] loss: 1\n')
    assert training_time_s(str(tmp_path)) == 150.0
    (tmp_path / 'train_time.json').write_text(json.dumps(dict(seconds=12.5)))
    assert training_time_s(str(tmp_path)) == 12.5
    assert training_time_s(None) is None


@pytest.mark.parametrize('config', [
    'configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
    'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
    'configs/sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
    'configs/dino/dino-4scale_r50_12e_vindr-640.py',
])
def test_every_baseline_gets_a_flop_count(config):
    """No baseline prints 'GFLOPs n/a' (Sparse R-CNN's tensor-mode forward needs a GT box)."""
    model, _, _ = build_detector(Config.fromfile(config_path(config)), None, prepare=False)
    model.init_weights()  # as the Runner does before training
    _, gflops, note = model_complexity(model, img_size=320)  # DINO's 900 queries need >900 tokens
    # the R50 backbone alone is ~8 GFLOPs (multiply-adds) at 320x320
    assert gflops is not None and gflops > 8.0, note
    if 'sparse' in config:
        assert 'matching' in note
