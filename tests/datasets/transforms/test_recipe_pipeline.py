"""The YOLO11 recipe's training pipelines compute what mmdet's own transforms compute.

``configs/yolo11/yolo11l_35e_vindr-640.py`` uses spinexr's faster equivalents of mmdet transforms
(``YOLOCachedMosaic`` for ``CachedMosaic``, ``FitMosaicCanvas`` for ``Resize`` + ``Pad``) in its
mosaic stage. That stage is run here on tiny generated data (images larger than the scaled tile, so the mosaic
cache shrinks them) next to the same pipeline spelt with mmdet's transforms, under the same seed:
the same images, boxes and labels. (``YOLORandomAffine`` is Ultralytics' affine, not an equivalent
of mmdet's ``RandomAffine``, and stays on both sides; tests/datasets/transforms/test_affine.py
compares it with Ultralytics' ``RandomPerspective``.)
"""
import copy
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from spinexr.experiments.profiles import scale_pipeline_sizes
from spinexr.testing import make_tiny_coco
from _tools import REPO

CONFIG = REPO / 'configs' / 'yolo11' / 'yolo11l_35e_vindr-640.py'
FACTOR = 64 / 640  # tile 64 px; the generated images are 96 x 128


def _as_mmdet(pipeline: list) -> list:
    """The same pipeline with mmdet's transforms in place of spinexr's equivalents."""
    out = []
    for t in copy.deepcopy(pipeline):
        kind = t['type']
        if kind == 'YOLOCachedMosaic':
            out.append(dict(t, type='CachedMosaic'))
        elif kind == 'FitMosaicCanvas':
            out += [dict(type='Resize', scale=t['scale'], keep_ratio=True),
                    dict(type='Pad', size=t['scale'], pad_val=dict(img=t['pad_val']))]
        else:
            out.append(t)
    return out


def _dataset(cfg: Config, root: str, pipeline: list):
    from mmdet.registry import DATASETS
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=root, pipeline=pipeline)
    return DATASETS.build(ds_cfg)


def _run(dataset, n: int, seed: int) -> list:
    np.random.seed(seed)
    random.seed(seed)  # YOLORandomAffine draws from Python's stream, as Ultralytics does
    return [dataset[i % len(dataset)] for i in range(n)]


@pytest.mark.parametrize('stage', ['mosaic'])  # the no-mosaic stage has no such equivalents
def test_recipe_pipeline_equals_mmdet_transforms(tmp_path, stage):
    import spinexr.datasets  # noqa: F401  (registers spinexr's transforms)
    init_default_scope('mmdet')
    root = str(tmp_path) + '/'
    make_tiny_coco(root, split='train', num_images=16, img_size=(96, 128), seed=0)
    cfg = Config.fromfile(str(CONFIG))
    if stage == 'mosaic':
        pipeline = cfg.train_pipeline
    else:
        pipeline = [h for h in cfg.custom_hooks
                    if h['type'] == 'CloseMosaicHook'][0]['switch_pipeline']
    pipeline = scale_pipeline_sizes(Config({'p': pipeline}).to_dict()['p'], FACTOR)
    for t in pipeline:
        if t['type'] == 'CachedMixUp':
            t['prob'] = 0.5  # let mixup fire often
    assert _as_mmdet(pipeline) != pipeline  # the recipe does use spinexr's transforms
    ours = _run(_dataset(cfg, root, pipeline), 40, 0)
    ref = _run(_dataset(cfg, root, _as_mmdet(pipeline)), 40, 0)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert torch.equal(a['inputs'], b['inputs']), i
        ga, gb = a['data_samples'].gt_instances, b['data_samples'].gt_instances
        assert torch.equal(ga.bboxes.tensor, gb.bboxes.tensor), i
        assert torch.equal(ga.labels, gb.labels), i
