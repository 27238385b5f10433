"""Tests of the RT-DETR adapter: Ultralytics' own loss, top-k postprocess, weights, the recipe."""
import copy

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from _tools import run_tool
from spinexr.models.detectors import RTDETRDetector
from spinexr.models.detectors import rtdetr as rtdetr_module
from spinexr.testing.tiny_models import tiny_rtdetr_yaml
from spinexr.utils.paths import config_path

NC = 7
RECIPE = 'configs/rtdetr/rtdetr-l_72e_vindr-640.py'


def _sample(boxes, labels, img_shape=(64, 64), **meta):
    meta = {**dict(img_shape=img_shape, ori_shape=img_shape, scale_factor=(1.0, 1.0)), **meta}
    sample = DetDataSample(metainfo=meta)
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    sample.gt_instances = gt
    return sample


@pytest.fixture(scope='module')
def detector():
    torch.manual_seed(0)
    return RTDETRDetector(model_yaml=tiny_rtdetr_yaml(), num_classes=NC)


def test_builds_from_registry_with_rtdetr_l_graph():
    from mmdet.registry import MODELS
    from ultralytics.nn.modules.head import RTDETRDecoder
    model = MODELS.build(dict(type='RTDETRDetector', model_yaml=tiny_rtdetr_yaml(),
                              num_classes=NC))
    assert isinstance(model, RTDETRDetector)
    assert isinstance(model.yolo.model[-1], RTDETRDecoder) and model.yolo.model[-1].nc == NC
    assert len(model.yolo.model) == 29  # rtdetr-l.yaml's 29 layers
    with pytest.raises(ValueError, match='iou_thr'):
        RTDETRDetector(model_yaml=tiny_rtdetr_yaml(), num_classes=NC, test_cfg=dict(iou_thr=0.5))


def test_loss_is_ultralytics_own(detector, monkeypatch):
    """Same weights, same seed: the adapter's loss is ``RTDETRDetectionModel.loss`` on a batch
    written by hand in Ultralytics' format (xywh normalised by the image)."""
    model = copy.deepcopy(detector).train()
    reference = copy.deepcopy(detector.yolo).train()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    samples = [_sample([[10, 10, 30, 40]], [1]),
               _sample([[0, 8, 16, 24], [32, 32, 64, 48]], [2, 6])]
    batch = dict(img=x, batch_idx=torch.tensor([0., 1., 1.]),
                 cls=torch.tensor([[1.], [2.], [6.]]),
                 bboxes=torch.tensor([[20, 25, 20, 30], [8, 16, 16, 16], [48, 40, 32, 16]]) / 64)
    torch.manual_seed(123)  # denoising queries are drawn at random
    total, items = reference.loss(batch)
    torch.manual_seed(123)
    losses = model.loss(x, samples)
    summed = sum(v for k, v in losses.items() if 'loss' in k)
    torch.testing.assert_close(summed, total, rtol=1e-5, atol=1e-6)
    assert set(losses) == {'loss_rtdetr', 'giou', 'cls', 'l1'}
    for ours, theirs in (('giou', 'giou_loss'), ('cls', 'cls_loss'), ('l1', 'l1_loss')):
        torch.testing.assert_close(losses[ours], items[theirs])
    # not x batch size (YOLO's trainer does that), x world size under DDP
    monkeypatch.setattr(rtdetr_module, 'get_world_size', lambda: 2)
    torch.manual_seed(123)
    doubled = model.loss(x, samples)
    torch.testing.assert_close(doubled['loss_rtdetr'], 2 * total, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(doubled['giou'], items['giou_loss'])


def test_loss_without_boxes_backpropagates(detector):
    model = copy.deepcopy(detector).train()
    losses = model.loss(torch.rand(2, 3, 64, 64), [_sample([], []), _sample([], [])])
    assert torch.isfinite(losses['loss_rtdetr'])
    losses['loss_rtdetr'].backward()
    # every parameter gets a gradient (DDP needs no find_unused_parameters)
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_postprocess_hand_checked(detector, tmp_path):
    """RTDETRValidator.postprocess, then back to the original image: a (64 H, 128 W) batch tensor
    holding a 256 x 256 image stretched by (0.5, 0.25)."""
    model = copy.deepcopy(detector)
    model.test_cfg = dict(conf_thr=0.1, max_det=2)
    topk = torch.tensor([[[0.5, 0.5, 0.25, 0.5, 0.9, 2.],     # kept
                          [0.25, 0.25, 0.125, 0.25, 0.6, 4.],  # kept
                          [0.75, 0.75, 0.1, 0.1, 0.5, 1.],    # over max_det
                          [0.5, 0.5, 0.1, 0.1, 0.05, 0.]]]).half()  # under conf_thr
    meta = dict(img_shape=(64, 128), ori_shape=(256, 256), scale_factor=(0.5, 0.25))
    out = model.postprocess(topk, [DetDataSample(metainfo=meta)], (64, 128))[0].pred_instances
    # box 1: xyxy (0.375, 0.25, 0.625, 0.75) x (128, 64) = (48, 16, 80, 48); / (0.5, 0.25)
    # box 2: xyxy (0.1875, 0.125, 0.3125, 0.375) x (128, 64) = (24, 8, 40, 24); / (0.5, 0.25)
    expected = torch.tensor([[96., 64., 160., 192.], [48., 32., 80., 96.]])
    assert out.bboxes.dtype == torch.float32
    torch.testing.assert_close(out.bboxes, expected)
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.6]), atol=1e-3, rtol=0)
    assert out.labels.tolist() == [2, 4]
    # on a square batch tensor without resize: exactly Ultralytics' RTDETRValidator.postprocess
    from ultralytics.models.rtdetr.val import RTDETRValidator
    validator = RTDETRValidator(save_dir=tmp_path, args=dict(imgsz=128, conf=0.1, max_det=2))
    theirs = validator.postprocess(topk.float())[0]
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))
    ours = model.postprocess(topk, [DetDataSample(metainfo=meta)], (128, 128))[0].pred_instances
    torch.testing.assert_close(ours.bboxes, theirs['bboxes'])
    torch.testing.assert_close(ours.scores, theirs['conf'])
    assert ours.labels.tolist() == theirs['cls'].long().tolist()


def test_predict_uses_the_heads_topk_and_original_pixels(detector):
    model = copy.deepcopy(detector).eval()
    x = torch.rand(1, 3, 64, 96)
    meta = dict(img_shape=(64, 96), ori_shape=(128, 384), scale_factor=(0.25, 0.5))
    with torch.no_grad():
        topk = model.yolo(x)[0][0]
        out = model.predict(x, [DetDataSample(metainfo=meta)])[0].pred_instances
    keep = topk[:, 4] > 0.001
    assert len(out) == int(keep.sum()) <= 30 * NC
    centre, half = topk[keep, :2], topk[keep, 2:4] / 2
    xyxy = torch.cat([centre - half, centre + half], 1)
    xyxy = xyxy * torch.tensor([96 / 0.25, 64 / 0.5, 96 / 0.25, 64 / 0.5])
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, 384)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, 128)
    torch.testing.assert_close(out.bboxes, xyxy)
    torch.testing.assert_close(out.scores, topk[keep, 4])
    assert torch.equal(out.labels, topk[keep, 5].long())
    # training mode (predict during a training step): the last decoder layer, decoded the same way
    model.train()
    for m in model.modules():  # batch statistics would change the features
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    with torch.no_grad():
        again = model.predict(x, [DetDataSample(metainfo=meta)])[0].pred_instances
    torch.testing.assert_close(again.bboxes, out.bboxes)
    # the inference form (Conv+BN fused, RepConv merged) predicts the same
    model.prepare_for_inference(fuse=True, channels_last=False)
    with torch.no_grad():
        fused = model.predict(x, [DetDataSample(metainfo=meta)])[0].pred_instances
    torch.testing.assert_close(fused.scores, out.scores, atol=1e-4, rtol=1e-3)


def test_pretrained_ultralytics_pt(detector, tmp_path):
    source = copy.deepcopy(detector)
    torch.nn.init.normal_(source.yolo.model[-1].enc_score_head.weight)
    path = str(tmp_path / 'rtdetr.pt')
    torch.save({'model': copy.deepcopy(source.yolo).half()}, path)
    # read with the allow-list (no trust needed): RT-DETR's modules restore from attributes
    target = RTDETRDetector(model_yaml=tiny_rtdetr_yaml(), num_classes=NC, pretrained=path)
    target.init_weights()
    loaded = target.yolo.state_dict()
    for k, v in source.yolo.state_dict().items():
        torch.testing.assert_close(loaded[k], v.half().to(v.dtype) if v.is_floating_point() else v)
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        target.load_ultralytics_weights(str(tmp_path / 'missing.pt'))


def test_recipe_config_is_ultralytics_rtdetr_trainer():
    """The values Ultralytics' RTDETRTrainer would use on the 8,389 train images at batch 16."""
    cfg = Config.fromfile(config_path(RECIPE))
    assert cfg.model.type == 'RTDETRDetector' and cfg.model.model_yaml == 'rtdetr-l.yaml'
    assert cfg.model.num_classes == 7 and cfg.model.pretrained is None and cfg.load_from is None
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 0.000909 and opt.weight_decay == 5e-4
    assert cfg.optim_wrapper.accumulative_counts == 4 and cfg.train_dataloader.batch_size == 16
    assert 132 * cfg.train_cfg.max_epochs <= 10000  # 'auto' stays AdamW (else MuSGD)
    hooks = {h['type']: h for h in cfg.custom_hooks}
    sched = hooks['YOLOParamSchedulerHook']
    assert not sched['cos_lr'] and sched['warmup_bias_lr'] == 0.0 and sched['lrf'] == 0.01
    assert hooks['CloseMosaicHook']['close_epochs'] == 10  # switches at epoch 62 of 72
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert types.index('Resize') < types.index('YOLOCachedMosaic') and 'CachedMixUp' not in types
    assert cfg.train_dataloader.dataset.pipeline[2]['keep_ratio'] is False  # stretched
    assert cfg.test_dataloader.dataset.pipeline[1]['keep_ratio'] is False
    assert 'http' not in cfg.pretty_text
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)  # the full RT-DETR-l, 7 classes
    assert 32e6 < sum(p.numel() for p in model.parameters()) < 34e6
    assert model.yolo.model[-1].num_queries == 300 and model.yolo.model[-1].nc == 7


@pytest.mark.slow
def test_recipe_trains_and_tests_through_the_tools(tiny_coco, tmp_path):
    """The recipe, at 128 px with the reduced network: tools/train.py for one epoch (2
    iterations of 4 images, mosaic stage) with validation, then tools/test.py on its checkpoint."""
    import yaml

    from spinexr.experiments.profiles import scale_pipeline_sizes
    yaml_file = tmp_path / 'rtdetr-tiny.yaml'
    yaml_file.write_text(yaml.safe_dump(tiny_rtdetr_yaml()))
    cfg = Config.fromfile(config_path(RECIPE))
    cfg.data_root = str(tiny_coco) + '/'
    cfg.model.model_yaml = str(yaml_file)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False, pin_memory=False)
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, 128 / 640)
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 2
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    for hook in cfg.custom_hooks:
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = 1
        if hook['type'] == 'CloseMosaicHook':
            hook['close_epochs'] = 0  # the one epoch stays in the mosaic stage
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], 128 / 640)
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    work = tmp_path / 'work'
    run_tool(['tools/train.py', cfg_file, '--work-dir', str(work)])
    assert (work / 'epoch_1.pth').is_file()
    log = next(work.glob('*/*.log')).read_text()
    assert 'loss_rtdetr' in log and 'giou' in log and 'coco/bbox_mAP_50' in log, log[-3000:]
    run_tool(['tools/test.py', cfg_file, str(work / 'epoch_1.pth'), '--work-dir',
              str(tmp_path / 'test')])
    log = next((tmp_path / 'test').glob('*/*.log')).read_text()
    assert 'coco/bbox_mAP_50' in log, log[-3000:]


def test_accumulation_gain_scales_the_loss_like_yolo11(detector):
    """The runner's accumulation_gain (see SpinexrRunner.build_optim_wrapper) reaches the loss."""
    torch.manual_seed(0)
    model = copy.deepcopy(detector).train()
    inputs = torch.rand(2, 3, 64, 64)
    samples = [_sample([[8., 10., 40., 50.]], [1]), _sample([[4., 4., 30., 20.]], [2])]
    torch.manual_seed(1)
    base = model.loss(inputs, samples)['loss_rtdetr'].detach()
    model.accumulation_gain = 3.0
    torch.manual_seed(1)
    scaled = model.loss(inputs, samples)['loss_rtdetr'].detach()
    torch.testing.assert_close(scaled, 3 * base)
