"""CPU smoke test: Faster R-CNN R50-FPN from mmdet's own model config, 7 classes, trains and predicts."""
import pytest
from mmengine.config import Config

from spinexr.testing.runs import write_det_config
from spinexr.utils.cli import build_runner


@pytest.mark.slow
def test_faster_rcnn_trains_one_iteration_and_predicts(tiny_coco, tmp_path):
    from mmdet.apis import inference_detector
    cfg_file = write_det_config(tmp_path / 'frcnn.py', tiny_coco,
                                base='mmdet::_base_/models/faster-rcnn_r50_fpn.py',
                                iters=1, ckpt_interval=1, size=128)
    cfg = Config.fromfile(str(cfg_file))
    cfg.work_dir = str(tmp_path / 'work')
    assert cfg.model.roi_head.bbox_head.num_classes == 7
    runner = build_runner(cfg)
    assert type(runner).__name__ == 'SpinexrRunner'
    runner.train()
    assert runner.iter == 1
    assert (tmp_path / 'work' / 'iter_1.pth').is_file()

    model = runner.model
    model.cfg = cfg
    img = next((tiny_coco / 'test').glob('*.png'))
    result = inference_detector(model, str(img))
    pred = result.pred_instances
    assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
    assert len(pred.bboxes) == len(pred.scores) == len(pred.labels)
    if len(pred.labels):
        assert int(pred.labels.max()) < 7
        assert float(pred.bboxes[:, 2].max()) <= 128 + 1e-3  # original image coordinates
