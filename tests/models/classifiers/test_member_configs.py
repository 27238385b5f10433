"""The member configs (and focal variants) build, train one step and predict at 64 px; every
classifier config under ``configs/classifiers`` (ensembles included) builds its model and
predicts."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import spinexr.models  # noqa: F401  (registration)
from spinexr.models.classifiers.ensemble import build_member
from _tools import REPO

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


ALL_CONFIGS = sorted(osp.basename(p) for p in glob.glob(str(REPO / 'configs/classifiers/*.py')))
#: The VinDr-SpineXR paper's DenseNets beside DenseNet-121: (arch, channels of the last stage).
PAPER_DENSENETS = {'densenet169_60e_vindr-384.py': ('169', 1664),
                   'densenet201_60e_vindr-384.py': ('201', 1920)}


def test_every_classifier_config_is_listed():
    assert set(CONFIGS) | set(PAPER_DENSENETS) | {'ensemble-densenet_vindr-384.py'} \
        <= set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_every_classifier_config_builds_and_predicts(name):
    """Build the model a config describes (for an ensemble: all its members) and predict."""
    cfg = Config.fromfile(str(REPO / 'configs/classifiers' / name))
    torch.manual_seed(0)
    if cfg.model.type == 'WeightedEnsembleClassifier':
        model = MODELS.build(cfg.model)
        assert len(model.members) == len(cfg.model.members)
    else:
        model = build_member(dict(config=str(REPO / 'configs/classifiers' / name)))
        assert cfg.model.backbone.init_cfg is None  # nothing downloaded
    model.eval()  # (PyTorch's default initialisation: init_weights only logs every parameter)
    inputs = [torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    preds = model.test_step(dict(inputs=inputs, data_samples=None))
    assert len(preds) == 2 and preds[0].pred_score.shape == (2, )
    assert torch.isfinite(torch.stack([p.pred_score for p in preds])).all()


@pytest.mark.parametrize('name', sorted(PAPER_DENSENETS))
def test_paper_densenet_differs_from_densenet121_only_in_arch_and_head_width(name):
    arch, channels = PAPER_DENSENETS[name]
    cfg = Config.fromfile(str(REPO / 'configs/classifiers' / name))
    base = Config.fromfile(str(REPO / 'configs/classifiers/densenet121_60e_vindr-384.py'))
    assert (cfg.model.backbone.arch, cfg.model.head.in_channels) == (arch, channels)
    base.model.backbone.arch, base.model.head.in_channels = arch, channels
    assert cfg.to_dict() == base.to_dict()
    # the head width is the backbone's real output width
    backbone = MODELS.build(dict(type='DenseNet', arch=arch))
    backbone.eval()  # (mmpretrain's DenseNet.train returns None: no chaining)
    assert backbone(torch.zeros(1, 3, 32, 32))[-1].shape[1] == channels


def test_paper_ensemble_config():
    """DenseNet-121/169/201, logit average, equal weights unless a weights file is given."""
    cfg = Config.fromfile(str(REPO / 'configs/classifiers/ensemble-densenet_vindr-384.py'))
    members = cfg.model.members
    assert [m.name for m in members] == ['densenet121', 'densenet169', 'densenet201']
    assert [osp.basename(m.config) for m in members] == [
        'densenet121_60e_vindr-384.py', *sorted(PAPER_DENSENETS)]
    assert cfg.model.average == 'logit'
    assert cfg.model.get('weights') is None and cfg.model.get('weights_file') is None
    assert cfg.test_evaluator.prediction_file.startswith('work_dirs/ensemble-densenet_vindr-384/')
