"""The four baseline detector configs: build with 7 classes, train one iteration, predict."""
import os.path as osp

import pytest
from mmengine.config import Config

from spinexr.apis.comparison import REPO_ROOT, ModelEntry, derive_config

CONFIGS = {
    'faster_rcnn': 'configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
    'retinanet': 'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
    'sparse_rcnn': 'configs/sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
    'dino': 'configs/dino/dino-4scale_r50_12e_vindr-640.py',
}


def _num_classes(model_cfg) -> set:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == 'num_classes':
                    found.add(v)
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
    walk(model_cfg)
    return found


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_is_offline_and_has_seven_classes(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name]))
    assert _num_classes(cfg.model.to_dict()) == {7}
    assert cfg.model.backbone.init_cfg is None  # nothing downloads
    assert 'http' not in cfg.pretty_text and 'torchvision://' not in cfg.pretty_text
    assert cfg.train_dataloader.dataset.type == 'VinDrSpineXRDataset'
    assert cfg.test_evaluator.type == 'VinDrDetMetric'
    assert cfg.runner_type == 'SpinexrRunner'
    resize = cfg.train_dataloader.dataset.pipeline[2]
    assert resize.type == 'RandomChoiceResize'
    assert min(resize.scales) == (480, 480) and max(resize.scales) == (768, 768)


@pytest.mark.parametrize('name', ['sparse_rcnn', 'dino'])
def test_model_is_mmdets_own(name):
    """Sparse R-CNN / DINO copy mmdet's model dict: only the documented fields differ."""
    ours = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name])).model.to_dict()
    ref_path = {'sparse_rcnn': 'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py',
                'dino': 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'}[name]
    ref = Config.fromfile(_mmdet_cfg(ref_path)).model.to_dict()
    for key in ('init_cfg', 'frozen_stages', 'norm_eval', 'norm_cfg'):
        ref['backbone'].pop(key, None)
        ours['backbone'].pop(key, None)
    heads = ref['roi_head']['bbox_head'] if name == 'sparse_rcnn' else [ref['bbox_head']]
    for h in heads:
        h['num_classes'] = 7
    assert ours == ref


def _mmdet_cfg(path: str) -> str:
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path.split('::')[1])


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_train_one_iter_and_predict(name, tiny_coco, tmp_path):
    from mmengine.registry import RUNNERS
    profile = dict(img_size=128, iters=1, batch_size=1, demo=True, workers=0)
    # DINO selects 900 encoder tokens: a 128 px image has only 340, so use fewer queries here
    options = {'model.num_queries': 100} if name == 'dino' else {}
    cfg_file = derive_config(ModelEntry(name, CONFIGS[name], demo_options=options), profile,
                             str(tiny_coco),
                             str(tmp_path / 'cfg.py'))
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.checkpoint.save_optimizer = False  # Sparse R-CNN + AdamW: 1.2 GB
    cfg.test_dataloader.dataset.indices = 2
    runner = RUNNERS.build(cfg)
    runner.train()
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_1.pth'))
    metrics = runner.test()
    assert 0.0 <= metrics['vindr/mAP_50'] <= 1.0
    assert 'vindr/voc101_mAP' in metrics and 'vindr/recall_Osteophytes' in metrics


def test_pretrained_backbone_cfg_options_from_docs():
    """The --cfg-options documented in docs/comparison.md turn on a local checkpoint."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS['faster_rcnn']))
    cfg.merge_from_dict({
        'model.backbone.init_cfg._delete_': True,
        'model.backbone.init_cfg.type': 'Pretrained',
        'model.backbone.init_cfg.checkpoint': '/path/resnet50.pth',
        'model.backbone.frozen_stages': 1,
        'model.backbone.norm_eval': True,
    })
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='/path/resnet50.pth')
    assert cfg.model.backbone.frozen_stages == 1
