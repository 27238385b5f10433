"""YOLO11 adapter: NMS and box post-processing run in float32 whatever the network's precision."""
import pytest
import torch
from mmdet.structures import DetDataSample

from spinexr.models.detectors import YOLO11Detector

NC = 7
META = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))


@pytest.fixture
def nms_spy(monkeypatch):
    """Record the dtype of every tensor Ultralytics' real NMS receives (predict looks the function
    up in ``ultralytics.utils.nms`` at call time)."""
    import ultralytics.utils.nms as ul_nms
    real, seen = ul_nms.non_max_suppression, []

    def spy(prediction, *args, **kwargs):
        seen.append(prediction.dtype)
        return real(prediction, *args, **kwargs)

    monkeypatch.setattr(ul_nms, 'non_max_suppression', spy)
    return seen


def test_half_model_hands_float32_boxes_to_nms(nms_spy):
    """A float16 YOLO11-n (CPU float16 convolutions, torch >= 2.x) decodes in float16; what reaches
    NMS is float32, and the results equal float32 NMS of the same decoded tensor."""
    torch.manual_seed(0)
    model = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC).eval().half()
    model.test_cfg.update(conf_thr=0.0, max_det=30)
    inputs = torch.rand(2, 3, 64, 64).half()
    with torch.no_grad():
        decoded = model.yolo(inputs)[0]
        assert decoded.dtype == torch.float16  # without an explicit cast NMS would get this
        res = model.predict(inputs, [DetDataSample(metainfo=META) for _ in range(2)])
    assert nms_spy == [torch.float32]
    from ultralytics.utils.nms import non_max_suppression
    ref = non_max_suppression(decoded.float(), 0.0, model.test_cfg['iou_thr'], max_det=30, nc=NC,
                              max_time_img=float('inf'))
    for got, exp in zip(res, ref):
        inst = got.pred_instances
        assert len(inst) > 0
        assert inst.bboxes.dtype == torch.float32 and inst.scores.dtype == torch.float32
        torch.testing.assert_close(inst.bboxes, exp[:, :4].clamp(0, 64))
        torch.testing.assert_close(inst.scores, exp[:, 4])


def test_class_offset_needs_float32(nms_spy):
    """Two boxes of class 6 at IoU 0.6 (< iou_thr) must both survive. NMS offsets them by
    6 x 7680 = 46,080 px, where float16 has a 32 px spacing: both boxes then round onto the same
    x-range (IoU 1) and one is suppressed -- so the float32 cast is what keeps the second box."""
    from ultralytics.utils.nms import TorchNMS  # torchvision has no CPU float16 NMS kernel
    model = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC).eval().half()
    model.test_cfg.update(conf_thr=0.25, iou_thr=0.65, max_det=30)
    xyxy = torch.tensor([[600., 600., 640., 640.], [610., 600., 650., 640.]])
    decoded = torch.zeros(1, 4 + NC, 3)
    decoded[0, 0, :2] = (xyxy[:, 0] + xyxy[:, 2]) / 2
    decoded[0, 1, :2] = (xyxy[:, 1] + xyxy[:, 3]) / 2
    decoded[0, 2, :2] = xyxy[:, 2] - xyxy[:, 0]
    decoded[0, 3, :2] = xyxy[:, 3] - xyxy[:, 1]
    decoded[0, 4 + 6, :2] = torch.tensor([0.9, 0.8])
    decoded = decoded.half()  # every value above is exact in float16
    # the construction is sensitive: the same offset boxes NMSed in float16 lose one box
    offset = (xyxy + 6 * 7680).half()
    assert torch.equal(offset[0], offset[1])
    assert len(TorchNMS.nms(offset, torch.tensor([0.9, 0.8]).half(), 0.65)) == 1
    assert len(TorchNMS.nms(xyxy + 6 * 7680, torch.tensor([0.9, 0.8]), 0.65)) == 2
    meta = dict(img_shape=(704, 704), ori_shape=(704, 704), scale_factor=(1.0, 1.0))
    inst = model.postprocess(decoded, [DetDataSample(metainfo=meta)])[0].pred_instances
    assert nms_spy == [torch.float32]
    assert inst.labels.tolist() == [6, 6]
    torch.testing.assert_close(inst.bboxes, xyxy)
