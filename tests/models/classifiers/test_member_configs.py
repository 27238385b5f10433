"""The three member configs (and a focal variant) build, train one step and predict at 64 px."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.structures import DataSample

import spinexr.models  # noqa: F401  (registration)
from spinexr.models.classifiers.ensemble import build_member
from spinexr.testing.runs import REPO

CONFIGS = ['densenet121_60e_vindr-384.py', 'efficientnetv2-s_60e_vindr-384.py',
           'resnet50_60e_vindr-384.py']


@pytest.mark.parametrize('name', CONFIGS)
def test_focal_variant_switches_only_the_loss(name):
    base = Config.fromfile(str(REPO / 'configs/classifiers' / name))
    focal = Config.fromfile(str(REPO / 'configs/classifiers' / name.replace('.py', '_focal.py')))
    assert base.model.head.loss.type == 'CrossEntropyLoss' and base.model.head.loss.use_sigmoid
    assert focal.model.head.loss.to_dict() == dict(type='BinaryFocalLoss', gamma=2.0, alpha=0.25)
    focal.model.head.loss = base.model.head.loss
    assert focal.model.to_dict() == base.model.to_dict()


@pytest.mark.parametrize('name', CONFIGS)
def test_member_config_trains_and_predicts(name):
    path = str(REPO / 'configs/classifiers' / name)
    cfg = Config.fromfile(path)
    assert cfg.model.head.type == 'BinaryClsHead'
    assert cfg.model.backbone.init_cfg is None  # nothing downloaded
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.custom_hooks[0].type == 'EarlyStoppingHook'
    assert cfg.custom_hooks[0].monitor == 'binary/auroc' and cfg.custom_hooks[0].patience == 10
    assert cfg.train_dataloader.dataset.folds == [1, 2, 3, 4]
    assert cfg.val_dataloader.dataset.folds == [0]
    assert cfg.test_dataloader.dataset.ann_file == 'annotations/test.json'
    torch.manual_seed(0)
    model = build_member(dict(config=path))
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    inputs = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    samples = [DataSample().set_gt_label(v) for v in (0, 1)]
    model.train()
    losses = model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0
    model.eval()
    preds = model.test_step(dict(inputs=inputs, data_samples=samples))
    assert preds[0].pred_score.shape == (2, )
    assert float(preds[0].pred_score.sum()) == pytest.approx(1.0)
