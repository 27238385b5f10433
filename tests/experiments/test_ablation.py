"""Tests of spinexr.experiments.ablation (config preparation, scoring, table); no training here."""
import json
import math
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config

from spinexr.experiments.ablation import DEFAULT_CONFIGS, prepare_config
from spinexr.experiments.ablation_report import (evaluate_predictions, format_table,
                                                 rare_classes_of, summarize)
from spinexr.datasets.metainfo import CLASSES
from spinexr.testing import make_tiny_coco

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _walk(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _walk(v)


def test_ladder_configs_and_cpu_profile():
    cfgs = {osp.basename(c): Config.fromfile(osp.join(ROOT, c)) for c in DEFAULT_CONFIGS}
    assert len(cfgs) == 6
    a0, a3, a5 = (cfgs[osp.basename(DEFAULT_CONFIGS[i])] for i in (0, 3, 5))
    types0 = [t['type'] for t in a0.train_dataloader.dataset.pipeline]
    assert 'YOLOCachedMosaic' not in types0 and 'RandomFlip' not in types0
    types3 = [t['type'] for t in a3.train_dataloader.dataset.pipeline]
    assert types3.index('BoxCopyPaste') == types3.index('LoadAnnotations') + 1
    assert not [h for h in a0.custom_hooks if h['type'] == 'CloseMosaicHook']  # no mosaic stage
    switch = [h for h in a3.custom_hooks if h['type'] == 'CloseMosaicHook'][0]
    assert 'BoxCopyPaste' in [t['type'] for t in switch.switch_pipeline]
    assert a5.train_dataloader.sampler == dict(type='ClassBalancedSampler', exponent=0.5,
                                               reduce='max', normal='class')
    assert a5.model.cls_loss.type == 'focal' and a3.model.cls_loss.type == 'bce'

    cfg = prepare_config(a5, seed=3, data_root='/data/x/', profile='cpu')
    assert cfg.randomness.seed == 3 and cfg.train_cfg.max_epochs == 8
    assert cfg.train_cfg.val_interval > cfg.train_cfg.max_epochs
    assert cfg.train_dataloader.dataset.data_root == '/data/x/'
    assert cfg.test_evaluator.ann_file == '/data/x/annotations/test.json'
    cp = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'BoxCopyPaste'][0]
    assert cp.data_root == '/data/x/'
    values = [v for _, v in _walk(cfg.to_dict())]
    assert not any(isinstance(v, str) and v.startswith('data/vindr_spinexr') for v in values)
    assert not any(isinstance(v, (list, tuple))
                   and tuple(v) in ((640, 640), (-320, -320), (1280, 1280)) for v in values)
    assert cfg.model.data_preprocessor.batch_augments[0].random_size_range == (96, 160)
    assert cfg.train_dataloader.num_workers == 0 and not cfg.train_dataloader.persistent_workers
    assert cfg.optim_wrapper.accumulative_counts == 1 and cfg.model.loss_gain == 1.0
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert hooks['CloseMosaicHook'].close_epochs == 2  # 10 of 35 epochs -> 2 of 8
    assert hooks['YOLOParamSchedulerHook'].warmup_epochs >= 1.0
    with pytest.raises(KeyError, match='unknown profile'):
        prepare_config(a0, seed=0, profile='gpu-huge')


def test_evaluate_predictions_and_table(tmp_path):
    ann = make_tiny_coco(str(tmp_path), num_images=6, seed=3)
    coco = json.loads(open(ann).read())
    present = sorted({a['category_id'] - 1 for a in coco['annotations']})
    preds = []
    for im in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == im['id']]
        boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                  a['bbox'][1] + a['bbox'][3]] for a in anns]
        preds.append(dict(img_id=im['id'], pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.ones(len(anns)),
            labels=torch.tensor([a['category_id'] - 1 for a in anns], dtype=torch.long))))
    pkl = tmp_path / 'p.pkl'
    pkl.write_bytes(pickle.dumps(preds))
    m = evaluate_predictions(str(pkl), ann)
    assert m['mAP_50'] == pytest.approx(1.0)
    for k, name in enumerate(CLASSES):
        if k in present:
            assert m[f'AP50/{name}'] == pytest.approx(1.0)
        else:
            assert math.isnan(m[f'AP50/{name}'])
    # wrong labels -> AP 0
    for p in preds:
        p['pred_instances']['labels'] = (p['pred_instances']['labels'] + 1) % 7
    pkl.write_bytes(pickle.dumps(preds))
    assert evaluate_predictions(str(pkl), ann)['mAP_50'] < 0.5

    rare = rare_classes_of(ann, thr=0.2)
    assert set(rare) <= set(CLASSES)
    runs = {'a': [dict(m, mAP_50=0.2), dict(m, mAP_50=0.4)], 'b': [dict(m, mAP_50=0.5)]}
    rows = summarize(runs, rare=[CLASSES[present[0]]])
    assert rows[0]['mAP_50'] == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert math.isnan(rows[1]['mAP_50'][1])
    table = format_table(rows, rare=[CLASSES[present[0]]])
    assert '30.0 ± 14.1' in table and '| b | 1 | 50.0 |' in table
