"""Tests of the YOLO11 adapter: Ultralytics' loss, focal classification, predict, weights."""
import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from spinexr.models.detectors.yolo11_loss import pack_yolo_targets
from spinexr.models.detectors import YOLO11Detector
from spinexr.models.detectors.ultralytics_export import save_ultralytics_pt
from spinexr.models.detectors.yolo11_loss import SigmoidFocalBCE

NC = 7


def _sample(boxes, labels, img_shape=(64, 64), **meta):
    sample = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=img_shape,
                                         scale_factor=(1.0, 1.0), **meta))
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    sample.gt_instances = gt
    return sample


@pytest.fixture(scope='module')
def detector():
    torch.manual_seed(0)
    return YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC)


def test_builds_from_registry():
    from mmdet.registry import MODELS
    model = MODELS.build(dict(type='YOLO11Detector', model_yaml='yolo11n.yaml', num_classes=3))
    assert model.yolo.model[-1].nc == 3
    assert type(model.data_preprocessor).__name__ == 'YOLODetDataPreprocessor'
    assert all(k.startswith(('yolo.', 'data_preprocessor.')) for k in model.state_dict())


@pytest.mark.parametrize('cls_loss', [None, dict(type='focal', gamma=2.0, alpha=0.25)])
def test_loss_no_gt_and_one_box(detector, cls_loss):
    """mmdet head-test style: empty gt -> only cls loss; one box -> every loss > 0."""
    model = copy.deepcopy(detector)
    model.cls_loss = cls_loss or dict(type='bce')
    model._criterion = None
    model.train()
    inputs = torch.rand(2, 3, 64, 64)
    empty = [_sample([], []), _sample([], [])]
    losses = model.loss(inputs, empty)
    assert set(losses) == {'loss_box', 'loss_cls', 'loss_dfl'}
    assert losses['loss_cls'].item() > 0 and torch.isfinite(losses['loss_cls'])
    assert losses['loss_box'].item() == 0
    assert losses['loss_dfl'].item() == 0

    one = [_sample([[8., 10., 40., 50.]], [2]), _sample([], [])]
    losses = model.loss(inputs, one)
    assert all(v.item() > 0 for v in losses.values()), losses
    sum(losses.values()).backward()
    grad = model.yolo.model[0].conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_loss_scale_follows_ultralytics(detector):
    """The returned loss is the per-image mean x batch size x loss_gain (Ultralytics' scale)."""
    model = copy.deepcopy(detector).train()
    inputs = torch.rand(2, 3, 64, 64)
    samples = [_sample([[8., 10., 40., 50.]], [1]), _sample([[0., 0., 30., 20.]], [4])]
    model.ultralytics_loss_scale, model.loss_gain = False, 1.0
    per_image = model.loss(inputs, samples)
    model.ultralytics_loss_scale, model.loss_gain = True, 4.0
    scaled = model.loss(inputs, samples)
    for k in per_image:
        torch.testing.assert_close(scaled[k], per_image[k] * 2 * 4)
    # and equals Ultralytics' own DetectionModel.loss (x batch size) on the same batch
    batch = pack_yolo_targets(samples, (64, 64))
    batch['img'] = inputs
    ul_loss, _ = model.yolo.loss(batch)
    torch.testing.assert_close(torch.stack([scaled[k] for k in ('loss_box', 'loss_cls',
                                                                 'loss_dfl')]), ul_loss * 4)


def test_focal_matches_formula():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, 7) * 3
    targets = (torch.rand(3, 5, 7) > 0.7).float()
    got = SigmoidFocalBCE(gamma=2.0, alpha=0.25)(logits, targets)
    p = torch.sigmoid(logits).double()
    t = targets.double()
    expected = (-0.25 * t * (1 - p)**2 * torch.log(p)
                - 0.75 * (1 - t) * p**2 * torch.log(1 - p))
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # gamma 0 and no alpha reduce to BCE
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    torch.testing.assert_close(SigmoidFocalBCE(gamma=0.0, alpha=-1)(logits, targets), bce)


def test_focal_cls_loss_keeps_target_score_normalisation(detector):
    """Focal cls loss = gain * sum(focal(pred, target_scores)) / max(sum(target_scores), 1)."""
    model = copy.deepcopy(detector).train()
    model.cls_loss = dict(type='focal', gamma=2.0, alpha=0.25)
    model._criterion = None
    criterion = model._get_criterion()
    seen = {}
    focal = criterion.bce

    def observe(pred, target):  # records what Ultralytics' criterion feeds its cls loss
        seen['pred'], seen['target'] = pred.detach(), target.detach()
        return focal(pred, target)

    criterion.bce = observe
    inputs = torch.rand(1, 3, 64, 64)
    losses = model.loss(inputs, [_sample([[8., 10., 40., 50.]], [3])])  # batch 1, gain 1
    expected = 0.5 * SigmoidFocalBCE(2.0, 0.25)(seen['pred'], seen['target']).sum() / \
        seen['target'].sum().clamp(min=1)
    torch.testing.assert_close(losses['loss_cls'].detach(), expected)


def test_to_original_undoes_letterbox():
    # original 100 x 200 (h, w) -> resized by 0.64 to 64 x 128, centred pad of 32 on top
    box_in_batch = torch.tensor([[12.8, 32 + 6.4, 64.0, 32 + 32.0]])
    meta = dict(scale_factor=(0.64, 0.64), pad_param=[32, 32, 0, 0], ori_shape=(100, 200))
    out = YOLO11Detector.to_original(box_in_batch, meta)
    torch.testing.assert_close(out, torch.tensor([[20.0, 10.0, 100.0, 50.0]]))
    # bottom/right padding (mmdet Pad): only the scale is undone; boxes are clipped
    out = YOLO11Detector.to_original(torch.tensor([[-5., 10., 140., 70.]]),
                                     dict(scale_factor=(0.64, 0.5), ori_shape=(100, 200)))
    torch.testing.assert_close(out, torch.tensor([[0.0, 20.0, 200.0, 100.0]]))


def _confident(model):
    """Make an untrained model give spread-out scores, deterministically: calibrate BN running
    statistics on one batch (else the features vanish in eval mode), then shrink the class
    logits so the scores spread over ~0.1-0.4."""
    torch.manual_seed(4)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
    model.train()
    with torch.no_grad():
        model.yolo(torch.rand(2, 3, 128, 128))
        for seq in model.yolo.model[-1].cv3:
            seq[-1].weight.mul_(0.05)
            seq[-1].bias.fill_(-2.0)
    for bn in bns:
        bn.momentum = 0.03
    return model.eval()


def test_predict_returns_original_coordinates(detector):
    model = _confident(copy.deepcopy(detector)).eval()
    model.test_cfg.update(conf_thr=0.2, max_det=50)
    torch.manual_seed(2)
    inputs = torch.rand(1, 3, 64, 96)
    # image of 120 x 180 resized by (96/180, 64/120) = 0.5333
    meta = dict(img_shape=(64, 96), ori_shape=(120, 180), scale_factor=(96 / 180, 64 / 120))
    with torch.no_grad():
        res = model.predict(inputs, [DetDataSample(metainfo=meta)])[0].pred_instances
        raw = model.yolo(inputs)[0]
    assert len(res) > 0
    from ultralytics.utils.nms import non_max_suppression
    det = non_max_suppression(raw, 0.2, 0.65, max_det=50, nc=NC)[0]
    expected = det[:, :4] / torch.tensor([96 / 180, 64 / 120] * 2)
    expected[:, 0::2] = expected[:, 0::2].clamp(0, 180)
    expected[:, 1::2] = expected[:, 1::2].clamp(0, 120)
    torch.testing.assert_close(res.bboxes, expected)
    torch.testing.assert_close(res.scores, det[:, 4])
    assert res.labels.dtype == torch.long and int(res.labels.max()) < NC


def test_predict_keeps_every_image_when_nms_exceeds_its_time_limit(detector, monkeypatch):
    """Issue 11 item 0: Ultralytics' NMS stops after 2 + 0.05 x batch seconds and returns the rest
    of the batch without boxes. A clock that advances 1000 s per reading (the library's own logic
    untouched) makes every batch overrun; predict must still give every image its boxes."""
    import ultralytics.utils.nms as ul_nms
    model = _confident(copy.deepcopy(detector))
    model.test_cfg.update(conf_thr=0.2, max_det=50)
    torch.manual_seed(5)
    inputs = torch.rand(4, 3, 64, 64)
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))
    with torch.no_grad():
        raw = model.yolo(inputs)[0]
        expected = [s.pred_instances for s in
                    model.predict(inputs, [DetDataSample(metainfo=meta) for _ in range(4)])]
    assert all(len(e) > 0 for e in expected)

    readings = iter(range(0, 10**9, 1000))
    monkeypatch.setattr(ul_nms, 'time', SimpleNamespace(time=lambda: float(next(readings))))
    # the slow clock does trip Ultralytics' limit: called as before, images 1-3 come back empty
    tripped = ul_nms.non_max_suppression(raw, 0.2, 0.65, max_det=50, nc=NC)
    assert len(tripped[0]) > 0 and all(len(d) == 0 for d in tripped[1:])
    with torch.no_grad():
        slow = model.predict(inputs, [DetDataSample(metainfo=meta) for _ in range(4)])
    for got, exp in zip(slow, expected):
        torch.testing.assert_close(got.pred_instances.bboxes, exp.bboxes)
        torch.testing.assert_close(got.pred_instances.scores, exp.scores)
        torch.testing.assert_close(got.pred_instances.labels, exp.labels)


def test_export_roundtrip_with_ultralytics_predict(detector, tmp_path):
    """spinexr -> .pt -> ultralytics.YOLO(path).predict gives the adapter's boxes."""
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox

    model = _confident(copy.deepcopy(detector)).eval()
    model.test_cfg.update(conf_thr=0.3, iou_thr=0.65, max_det=30, multi_label=False)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(60, 100, 3), dtype=np.uint8)  # BGR, as cv2 loads
    pt = save_ultralytics_pt(model, str(tmp_path / 'yolo11n_spinexr.pt'),
                             class_names=[f'c{i}' for i in range(NC)], imgsz=128)
    ul = YOLO(pt)
    assert ul.names == {i: f'c{i}' for i in range(NC)}
    res = ul.predict(img, imgsz=128, conf=0.3, iou=0.65, max_det=30, verbose=False,
                     device='cpu')[0]

    # Ultralytics' letterbox (centred, minimal stride padding), then the adapter's predict
    lb = LetterBox((128, 128), auto=True, stride=32)(image=img)
    gain = min(128 / 60, 128 / 100)
    new_h, new_w = round(60 * gain), round(100 * gain)  # 77 x 128, as mmdet's Resize would
    pad_h, pad_w = lb.shape[0] - new_h, lb.shape[1] - new_w
    top, left = round(pad_h / 2 - 0.1), round(pad_w / 2 - 0.1)
    assert (pad_h, top) == (19, 9)  # a real, asymmetric letterbox
    inputs = torch.from_numpy(lb[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    meta = dict(ori_shape=(60, 100), scale_factor=(new_w / 100, new_h / 60),
                pad_param=[top, pad_h - top, left, pad_w - left])
    with torch.no_grad():
        ours = model.predict(inputs, [DetDataSample(metainfo=meta)])[0].pred_instances
    assert len(ours) > 0 and len(ours) == len(res.boxes)
    order_o = torch.argsort(ours.scores, descending=True)
    order_u = torch.argsort(res.boxes.conf, descending=True)
    torch.testing.assert_close(ours.bboxes[order_o], res.boxes.xyxy[order_u], atol=1e-3,
                               rtol=1e-4)
    torch.testing.assert_close(ours.scores[order_o], res.boxes.conf[order_u], atol=1e-4,
                               rtol=1e-4)
    assert torch.equal(ours.labels[order_o], res.boxes.cls[order_u].long())


def test_pretrained_ultralytics_pt_and_spinexr_checkpoint(tmp_path):
    """Load an Ultralytics .pt (saved as Ultralytics' trainer does, nc=80) into nc=7; then a
    spinexr checkpoint with mmengine."""
    from mmengine.runner import save_checkpoint
    from ultralytics.nn.tasks import DetectionModel

    from spinexr.engine.checkpoint import load_checkpoint

    torch.manual_seed(3)
    src = DetectionModel('yolo11n.yaml', nc=80, verbose=False)
    pt = tmp_path / 'yolo11n.pt'
    torch.save({'epoch': -1, 'best_fitness': None, 'model': None, 'ema': copy.deepcopy(src).half(),
                'updates': 0, 'optimizer': None, 'train_args': {}}, pt)
    model = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC, pretrained=str(pt))
    fresh = copy.deepcopy(model.yolo.state_dict())
    model.init_weights()
    got, ref = model.yolo.state_dict(), src.half().float().state_dict()
    key = 'model.0.conv.weight'
    torch.testing.assert_close(got[key], ref[key])
    same = [k for k in got if k in ref and got[k].shape == ref[k].shape
            and torch.equal(got[k], ref[k])]
    assert len(same) > 0.8 * len(got)
    # the 80-class output layer cannot transfer: it keeps its own init, nc stays 7
    cls_key = 'model.23.cv3.0.2.weight'
    assert got[cls_key].shape[0] == NC and ref[cls_key].shape[0] == 80
    assert torch.equal(got[cls_key], fresh[cls_key])
    assert set(got) == set(fresh) and all(got[k].shape == fresh[k].shape for k in got)

    ckpt = tmp_path / 'spinexr.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, str(ckpt))
    other = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=NC)
    load_checkpoint(other, str(ckpt), strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k

    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        model.load_ultralytics_weights(str(tmp_path / 'missing.pt'))


@pytest.mark.slow
def test_runner_train_resume_test_with_recipe_config(tiny_coco, tmp_path):
    """The YOLO11 recipe config trains (mosaic stage, then the switched pipeline), resumes,
    validates and tests with mmdet's CocoMetric through the SpinexrRunner, on tiny data."""
    from pathlib import Path

    from mmengine.config import Config

    from spinexr.experiments.profiles import scale_pipeline_sizes
    from spinexr.engine import SpinexrRunner

    cfg_file = Path(__file__).parents[3] / 'configs/yolo11/yolo11n_35e_vindr-640.py'
    cfg = Config.fromfile(str(cfg_file))
    root = str(tiny_coco) + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, 128 / 640)
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 2
    for e in (cfg.val_evaluator, cfg.test_evaluator):
        e.ann_file = root + 'annotations/test.json'
    for hook in cfg.custom_hooks:
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = 1
        if hook['type'] == 'CloseMosaicHook':
            hook['close_epochs'] = 0  # the first run (1 epoch) keeps mosaic
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], 128 / 640)
    cfg.model.data_preprocessor.batch_augments[0]['random_size_range'] = (96, 160)
    cfg.default_hooks.logger.interval = 1
    cfg.train_cfg.val_interval = 2  # validate once, at the end of the resumed run
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    runner = SpinexrRunner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    assert (tmp_path / 'work' / 'epoch_1.pth').exists()

    cfg.train_cfg.max_epochs = 2
    cfg.resume = True
    close = [h for h in cfg.custom_hooks if h['type'] == 'CloseMosaicHook'][0]
    close['close_epochs'] = 1  # the resumed run closes mosaic for its (last) epoch
    runner = SpinexrRunner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    assert runner.epoch == 2
    stage2 = [type(t).__name__ for t in runner.train_dataloader.dataset.pipeline.transforms]
    assert 'YOLOCachedMosaic' not in stage2 and 'CachedMixUp' not in stage2 and 'Resize' in stage2
    metrics = runner.test()
    assert 'coco/bbox_mAP_50' in metrics

    # the converter tool turns the trained checkpoint into weights Ultralytics loads
    import importlib.util

    from ultralytics import YOLO
    tool = Path(__file__).parents[3] / 'tools/model_converters/spinexr_to_ultralytics.py'
    spec = importlib.util.spec_from_file_location('spinexr_to_ultralytics', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / 'exported.pt'
    module.main([str(cfg_file), str(tmp_path / 'work' / 'epoch_2.pth'), str(out), '--imgsz', '128'])
    ul = YOLO(str(out))
    assert ul.names[0] == 'Osteophytes' and len(ul.names) == 7
