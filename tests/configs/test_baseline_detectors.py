"""The four baseline detector configs: 7 classes, offline, anchors that fit the lesions; each trains,
resumes and tests through the tools."""
import os.path as osp
from dataclasses import replace

import pytest
from mmengine.config import Config

from _tools import REPO as REPO_ROOT
from _tools import run_tool
from spinexr.experiments.detector_configs import MODELS, derive_config
from spinexr.engine.checkpoint import load_checkpoint_dict

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


def _resume_to_2_and_test(cfg_file: str, tmp_path, unit: str, options: list) -> str:
    """``tools/train.py --resume`` from ``tmp_path/work`` to the second ``unit`` (iter or epoch),
    then ``tools/test.py`` on that checkpoint (2 test images); returns the test log."""
    work, test_dir = tmp_path / 'work', tmp_path / 'test'
    proc = run_tool(['tools/train.py', cfg_file, '--work-dir', str(work), '--resume',
                     '--cfg-options', *options])
    assert 'resumed' in (proc.stdout + proc.stderr).lower()
    assert load_checkpoint_dict(str(work / f'{unit}_2.pth'))['meta'][unit] == 2
    run_tool(['tools/test.py', cfg_file, str(work / f'{unit}_2.pth'), '--work-dir',
              str(test_dir), '--cfg-options', 'test_dataloader.dataset.indices=2'])
    return next(test_dir.glob('*/*.log')).read_text()


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_train_resume_and_test_through_the_tools(name, tiny_coco, tmp_path):
    """Each shipped baseline (its CPU-demo variant of the comparison) trains one iteration with
    tools/train.py, resumes to a second with --resume, and is scored by tools/test.py."""
    entry = next(m for m in MODELS if m.config == CONFIGS[name])
    options = dict(entry.demo_options, **{'train_dataloader.batch_size': 1})
    if name == 'dino':  # DINO selects 900 (demo: 300) encoder tokens; 128 px images have 340
        options['model.num_queries'] = 100
    profile = dict(img_size=128, iters=1, batch_size=1, demo=True, workers=0)
    cfg_file = derive_config(replace(entry, demo_options=options), profile, str(tiny_coco),
                             str(tmp_path / 'cfg.py'))
    work = tmp_path / 'work'
    run_tool(['tools/train.py', cfg_file, '--work-dir', str(work)])
    assert (work / 'iter_1.pth').is_file()
    log = _resume_to_2_and_test(cfg_file, tmp_path, 'iter', [
        'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'])
    for key in ('vindr/mAP_50', 'vindr/voc101_mAP', 'vindr/recall_Osteophytes'):
        assert key in log, log[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_as_written_trains_validates_resumes_and_tests(name, tiny_coco, tmp_path):
    """The shipped config unchanged (R50, its own epoch schedule, multi-scale 480-768, validation
    every epoch: what ``--profile full`` trains), but for the data root, 2 images per split and
    no loader workers: one epoch with validation, --resume to a second, then tools/test.py."""
    entry = next(m for m in MODELS if m.config == CONFIGS[name])
    profile = dict(img_size=640, demo=False, workers=0)  # as 'full', minus the loader workers
    cfg_file = derive_config(entry, profile, str(tiny_coco), str(tmp_path / 'cfg.py'))
    cfg = Config.fromfile(cfg_file)
    written = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name]))
    assert cfg.model == written.model and cfg.train_cfg == written.train_cfg
    assert cfg.param_scheduler == written.param_scheduler
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.val_interval == 1
    small = ['train_dataloader.batch_size=1', 'train_dataloader.dataset.indices=2',
             'val_dataloader.dataset.indices=2']
    work = tmp_path / 'work'
    run_tool(['tools/train.py', cfg_file, '--work-dir', str(work), '--cfg-options',
              'train_cfg.max_epochs=1', *small])
    assert load_checkpoint_dict(str(work / 'epoch_1.pth'))['meta']['epoch'] == 1
    log = next(work.glob('*/*.log')).read_text()
    assert 'Epoch(val) [1][2/2]' in log and 'vindr/mAP_50' in log, log[-3000:]
    log = _resume_to_2_and_test(cfg_file, tmp_path, 'epoch', ['train_cfg.max_epochs=2', *small])
    assert 'vindr/mAP_50' in log, log[-3000:]


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


ANCHOR_GENERATORS = {'faster_rcnn': 'rpn_head', 'retinanet': 'bbox_head'}


@pytest.mark.parametrize('name', sorted(ANCHOR_GENERATORS))
def test_anchors_fit_every_class_at_640(name):
    """Every class's median box (real VinDr statistics) has an anchor it overlaps at IoU >= 0.5.

    mmdet's own anchors fail this for osteophytes (IoU 0.29, below the RPN's min_pos_iou 0.3).
    """
    from spinexr.datasets.phantom.statistics import MEDIAN_BOX_WH, MEDIAN_SIZE
    from spinexr.evaluation.anchor_coverage import anchor_coverage
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name]))
    generator = cfg.model[ANCHOR_GENERATORS[name]].anchor_generator.to_dict()
    coverage = anchor_coverage(generator, MEDIAN_BOX_WH, scale=640 / max(MEDIAN_SIZE))
    assert min(coverage.values()) >= 0.5, coverage
    mmdet_model = Config.fromfile(_mmdet_cfg(
        {'faster_rcnn': 'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
         'retinanet': 'mmdet::_base_/models/retinanet_r50_fpn.py'}[name])).model
    mmdet_cov = anchor_coverage(mmdet_model[ANCHOR_GENERATORS[name]].anchor_generator.to_dict(),
                                MEDIAN_BOX_WH, scale=640 / max(MEDIAN_SIZE))
    assert mmdet_cov['Osteophytes'] < 0.3  # why the configs change them


def test_best_anchor_iou_matches_hand_computation():
    from spinexr.evaluation.anchor_coverage import best_anchor_iou
    gen = dict(type='AnchorGenerator', scales=[8], ratios=[1.0], strides=[4])
    assert best_anchor_iou(gen, (32, 32)) == pytest.approx(1.0)
    assert best_anchor_iou(gen, (16, 16)) == pytest.approx(0.25)
    assert best_anchor_iou(gen, (32, 16)) == pytest.approx(0.5)
