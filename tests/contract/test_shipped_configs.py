"""Every shipped config under ``configs/`` loads, downloads nothing, and builds its model.

Loading covers the ``_base_`` files too. Building (the model, or a detector ensemble's
``ensemble``, as ``tools/fuse_detections.py`` does) goes through the registries of the config's
``default_scope`` after its ``custom_imports``, without ``init_weights``: nothing is downloaded and
no checkpoint is read.
"""
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings

from spinexr.utils.paths import config_dir

CONFIGS = config_dir()
ALL = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob('*.py'))
LEAVES = [p for p in ALL if not p.startswith('_base_')]
#: Checkpoint sources that download (URLs and OpenMMLab's download prefixes).
DOWNLOAD = re.compile(r'^(https?|ftp|torchvision|open-mmlab|openmmlab|mmcls|mmpretrain)://')


def _strings(node, path=''):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _strings(v, f'{path}.{i}')


def _load(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / name))


def test_the_configs_are_found():
    assert len(LEAVES) >= 20 and any(p.startswith('_base_/') for p in ALL)
    assert {'yolo11/yolo11l_35e_vindr-640.py', 'ablation/yolo11n_a0_baseline_vindr-640.py',
            'classifiers/ensemble_vindr-384.py', 'ensembles/wbf_vindr-640.py'} <= set(LEAVES)


@pytest.mark.parametrize('name', ALL)
def test_config_loads(name):
    cfg = _load(name)
    assert cfg.filename.endswith(name)


@pytest.mark.parametrize('name', LEAVES)
def test_config_downloads_nothing_and_imports_only_spinexr(name):
    cfg = _load(name)
    urls = [(path, value) for path, value in _strings(cfg.to_dict()) if DOWNLOAD.match(value)]
    assert not urls, f'{name} would download: {urls}'
    imports = cfg.get('custom_imports', {}).get('imports', [])
    # what the registry contract test imports and covers
    assert all(m == 'spinexr' or m.startswith('spinexr.') for m in imports), imports
    if 'model' in cfg:
        assert imports and cfg.get('default_scope') in ('mmdet', 'mmpretrain')


@pytest.mark.slow
@pytest.mark.parametrize('name', LEAVES)
def test_config_builds_its_model(name):
    cfg = _load(name)
    if 'model' not in cfg and 'ensemble' not in cfg:
        pytest.fail(f'{name} has neither a model nor an ensemble to build')
    if 'model' in cfg:
        import_modules_from_strings(**cfg.custom_imports)
    else:  # a detector ensemble's config: tools/fuse_detections.py builds it in mmdet's TASK_UTILS
        import spinexr.apis.detector_ensemble  # noqa: F401  (registration)
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmdet':
        from mmdet.registry import MODELS, TASK_UTILS
    else:
        from mmpretrain.registry import MODELS, TASK_UTILS
    with DefaultScope.overwrite_default_scope(scope):
        if 'model' in cfg:
            model = MODELS.build(cfg.model)  # no init_weights: nothing is loaded
            assert sum(p.numel() for p in model.parameters()) > 0
            assert type(model).__name__ == cfg.model.type.split('.')[-1]
        if 'ensemble' in cfg:
            ensemble = TASK_UTILS.build(cfg.ensemble)
            assert ensemble.names == [m['name'] for m in cfg.ensemble.members]
