"""Every shipped config moves with its top-level ``data_root`` (``--cfg-options data_root=DIR``).

For each config: load it, set ``data_root`` the way ``--cfg-options`` does, resolve it with the
runner's entry point, then check that no string anywhere still points at the configs' default root
(or holds the placeholder) and build every dataset (with its pipeline, so ``BoxCopyPaste`` reads its
annotations) and evaluator from the tiny data at the new root. End to end: ``tools/train.py`` on the
copy-paste ablation config, started from a folder without ``data/vindr_spinexr/``, trains from the
moved root, and ``SpinexrRunner.from_cfg`` builds a classifier's loaders there.
"""
import glob
import os.path as osp
import shutil
from pathlib import Path

import pytest
from mmengine.config import Config

from spinexr.testing import make_tiny_coco
from _tools import REPO, run_tool
from spinexr.utils.data_root import PLACEHOLDER, resolve_data_root

OLD_ROOT = 'data/vindr_spinexr'
SHIPPED = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(str(REPO / 'configs' / '**' / '*.py'), recursive=True)
    + glob.glob(str(REPO / 'projects' / '*' / 'configs' / '*.py'))
    if '_base_' not in Path(p).parts)


def test_every_config_is_covered():
    names = {osp.basename(p) for p in SHIPPED}
    assert len(SHIPPED) >= 18
    assert {'yolo11l_35e_vindr-640.py', 'yolo11n_a3_copy-paste_vindr-640.py',
            'resnet50_60e_vindr-384.py', 'ensemble_vindr-384.py',
            'retinanet_r18_clahe_vindr.py'} <= names


@pytest.fixture(scope='module')
def moved_root(tmp_path_factory) -> str:
    """Tiny converted data in a fresh folder, with every annotation file a config names."""
    root = tmp_path_factory.mktemp('moved') / 'vindr'
    make_tiny_coco(str(root), split='train', num_images=20, seed=0)
    make_tiny_coco(str(root), split='test', num_images=4, seed=1)
    for name in ('train_split', 'val_split'):  # the holdout base's files
        shutil.copy(root / 'annotations' / 'train.json', root / 'annotations' / f'{name}.json')
    return f'{root}/'


def _strings(node, path=''):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _strings(v, f'{path}.{i}')


def _datasets(node):
    """Innermost dataset dicts of a dataloader's ``dataset`` (through wrappers)."""
    while isinstance(node, dict) and isinstance(node.get('dataset'), dict):
        node = node['dataset']
    return node


def _dicts(node, path=''):
    """``(path, dict)`` of every dict under ``node``."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _dicts(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _dicts(v, f'{path}.{i}')


@pytest.mark.parametrize('config', SHIPPED)
def test_data_root_moves_every_path(config, moved_root, monkeypatch):
    from mmengine.registry import DATASETS, METRICS
    from mmengine.utils import import_modules_from_strings
    monkeypatch.syspath_prepend(str(REPO))  # the example project's custom import
    cfg = Config.fromfile(str(REPO / config))
    cfg.merge_from_dict({'data_root': moved_root})  # what --cfg-options data_root=DIR does
    resolve_data_root(cfg)  # what SpinexrRunner.from_cfg does

    flat = cfg.to_dict()
    flat.pop('data_root')
    stale = [(p, v) for p, v in _strings(flat) if OLD_ROOT in v or PLACEHOLDER in v]
    assert not stale, f'{config}: paths left behind: {stale}'

    # every data_root is the new one; every ann_file lies under it (relative to a data_root
    # beside it: datasets, BoxCopyPaste; or a full path: evaluators)
    for path, node in _dicts(flat):
        if 'data_root' in node:
            assert node['data_root'] == moved_root, (config, path)
        if isinstance(node.get('ann_file'), str) and not node['ann_file'].startswith(moved_root):
            assert node.get('data_root') == moved_root and not osp.isabs(node['ann_file']), \
                (config, path, node['ann_file'])

    if 'ensemble' in cfg and not any(cfg.get(f'{s}_dataloader') for s in ('train', 'val', 'test')):
        return  # configs/ensembles/: saved predictions only, no dataset to build
    import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.default_scope
    built = 0
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        assert _datasets(loader['dataset'])['data_root'] == moved_root, (config, split)
        with DATASETS.switch_scope_and_registry(scope) as registry:
            dataset = registry.build(loader['dataset'])  # reads the annotations, builds pipeline
        assert _datasets(dataset).ann_file.startswith(moved_root) and len(dataset) > 0
        built += 1
    assert built >= 1
    for split in ('val', 'test'):
        evaluator = cfg.get(f'{split}_evaluator')
        if not evaluator:
            continue
        if 'ann_file' in evaluator:
            assert evaluator['ann_file'].startswith(moved_root)
            assert osp.isfile(evaluator['ann_file'])
        with METRICS.switch_scope_and_registry(scope) as registry:
            registry.build(evaluator)  # mmdet's CocoMetric loads its ann_file here


@pytest.mark.slow
def test_tools_read_the_moved_root(moved_root, tmp_path):
    """tools/train.py with ``--cfg-options data_root=DIR`` on the copy-paste ablation (datasets,
    evaluator and BoxCopyPaste in the pipeline and in the stage-2 hook), then tools/test.py with
    ``--data-root DIR``, both run where ``data/vindr_spinexr/`` does not exist."""
    config = REPO / 'configs/ablation/yolo11n_a3_copy-paste_vindr-640.py'
    work = tmp_path / 'work'
    loaders = []
    for split in ('train', 'val', 'test'):
        loaders += [f'{split}_dataloader.batch_size=2', f'{split}_dataloader.num_workers=0',
                    f'{split}_dataloader.persistent_workers=False']
    proc = run_tool(
        [str(REPO / 'tools/train.py'), str(config), '--work-dir', str(work),
         '--cfg-options', f'data_root={moved_root}', 'train_cfg.max_epochs=1',
         'model.data_preprocessor.batch_augments.0.random_size_range=(64,96)',
         'default_hooks.logger.interval=1', 'randomness.seed=0', *loaders],
        cwd=tmp_path, env={'PYTHONPATH': str(REPO)})
    assert not (tmp_path / OLD_ROOT).exists()
    assert (work / 'epoch_1.pth').is_file()
    log = proc.stdout + proc.stderr
    assert 'BoxCopyPaste: ' in log and f'in {moved_root}annotations/train.json' in log
    scalars = sorted(work.glob('*/vis_data/scalars.json'))
    assert scalars and 'coco/bbox_mAP' in scalars[-1].read_text()  # evaluated on the moved test
    dumped = Config.fromfile(str(work / osp.basename(config)))
    assert dumped.train_dataloader.dataset.data_root == moved_root
    assert dumped.val_evaluator.ann_file == f'{moved_root}annotations/test.json'

    test_work = tmp_path / 'test'
    proc = run_tool(
        [str(REPO / 'tools/test.py'), str(config), str(work / 'epoch_1.pth'), '--work-dir',
         str(test_work), '--data-root', moved_root, '--cfg-options', *loaders[-3:]],
        cwd=tmp_path, env={'PYTHONPATH': str(REPO)})
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    dumped = Config.fromfile(str(test_work / osp.basename(config)))
    assert dumped.test_dataloader.dataset.data_root == moved_root


@pytest.mark.slow
def test_runner_builds_classifier_loaders_at_the_moved_root(moved_root, tmp_path):
    from spinexr.engine import SpinexrRunner
    cfg = Config.fromfile(str(REPO / 'configs/classifiers/resnet50_60e_vindr-384.py'))
    cfg.data_root = moved_root
    cfg.work_dir = str(tmp_path / 'work')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].update(num_workers=0, persistent_workers=False)
    runner = SpinexrRunner.from_cfg(cfg)
    assert cfg.train_dataloader.dataset.data_root == PLACEHOLDER  # the caller's cfg is untouched
    assert runner.cfg.train_dataloader.dataset.data_root == moved_root
    train, val, test = (runner.train_dataloader.dataset, runner.val_dataloader.dataset,
                        runner.test_dataloader.dataset)
    assert train.ann_file == val.ann_file == f'{moved_root}annotations/train.json'
    assert test.ann_file == f'{moved_root}annotations/test.json'
    assert len(train) + len(val) == 20 and len(test) == 4
    paths = [d.get_data_info(i)['img_path'] for d in (train, val, test) for i in range(len(d))]
    assert all(p.startswith(moved_root) and osp.isfile(p) for p in paths)
