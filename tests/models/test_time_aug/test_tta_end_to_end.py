"""``tools/test.py --tta`` end to end (spinexr.cli.test) on the YOLO11 adapter and an mmdet model.

The YOLO11 case checks the wrapper against the plain test loop: one view (scale 1, no flip) merged
by NMS at IoU 1.0 (nothing suppressed: Ultralytics clips boxes after its NMS, so the plain output
holds same-class boxes made identical by the clipping) must give the plain test's boxes (to 1e-3 px, the fusion works in float64
fractions of the image); the default TTA (3 scales x 2 flips, WBF) must run and give boxes inside
the images.
"""
import pickle
import re

import numpy as np
import pytest
import torch

from spinexr.cli import test as test_cli
from spinexr.testing import make_tiny_coco
from spinexr.testing.runs import write_det_config
from spinexr.utils.paths import config_path

pytestmark = pytest.mark.slow


def _yolo_config(path, data_root):
    path.write_text(
        f"_base_ = '{config_path('yolo11/yolo11n_35e_vindr-640.py')}'\n"
        f"data_root = '{data_root}/'\n"
        "model = dict(test_cfg=dict(conf_thr=0.3))\n"
        "_pipeline = [\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(128, 128), keep_ratio=True),\n"
        "    dict(type='LoadAnnotations', with_bbox=True),\n"
        "    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',\n"
        "         'img_shape', 'scale_factor'))]\n"
        "test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,\n"
        "                       dataset=dict(pipeline=_pipeline))\n"
        "val_dataloader = test_dataloader\n")
    return path


def _random_checkpoint(cfg_file, path, zero_cls_bias=None):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import spinexr.models  # noqa: F401
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(str(cfg_file)).model)
    state = model.state_dict()
    for k in state:
        if zero_cls_bias and re.search(zero_cls_bias, k):
            state[k].zero_()  # class scores around 0.5: many boxes
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


def _run(cfg, ckpt, work, *extra):
    out = work / 'preds.pkl'
    test_cli.main([str(cfg), str(ckpt), '--work-dir', str(work), '--out', str(out), *extra])
    with open(out, 'rb') as f:
        return {r['img_path']: {k: np.asarray(v) for k, v in r['pred_instances'].items()}
                for r in pickle.load(f)}


def test_yolo11_one_view_equals_plain_test_and_full_tta_runs(tmp_path):
    root = tmp_path / 'data'
    make_tiny_coco(str(root), split='test', num_images=4, img_size=(96, 128), seed=3)
    cfg = _yolo_config(tmp_path / 'cfg.py', root)
    ckpt = _random_checkpoint(cfg, tmp_path / 'ckpt.pth', r'model\.23\.cv3\.\d\.2\.bias$')
    plain = _run(cfg, ckpt, tmp_path / 'plain')
    one = _run(cfg, ckpt, tmp_path / 'one', '--tta', '--cfg-options', 'tta.scales=[1.0]',
               'tta.flip=False', 'tta.fusion.method=nms', 'tta.fusion.iou_thr=1.0',
               'tta.max_per_img=1000')
    assert sorted(plain) == sorted(one) and sum(len(p['scores']) for p in plain.values()) > 20
    for key, p in plain.items():
        q = one[key]
        order_p, order_q = (np.lexsort((*r['bboxes'].T, r['scores'], r['labels'])) for r in (p, q))
        np.testing.assert_allclose(q['bboxes'][order_q], p['bboxes'][order_p], atol=1e-3)
        np.testing.assert_allclose(q['scores'][order_q], p['scores'][order_p], atol=1e-5)
        np.testing.assert_array_equal(q['labels'][order_q], p['labels'][order_p])

    full = _run(cfg, ckpt, tmp_path / 'full', '--tta')
    assert sum(len(p['scores']) for p in full.values()) > 0
    for p in full.values():
        b = p['bboxes']
        assert len(b) <= 100
        assert (b[:, 0] >= -1e-3).all() and (b[:, 2] <= 128 + 1e-3).all()
        assert (b[:, 1] >= -1e-3).all() and (b[:, 3] <= 96 + 1e-3).all()


def test_mmdet_detector_tta_runs(tmp_path):
    root = tmp_path / 'data'
    make_tiny_coco(str(root), split='test', num_images=2, img_size=(96, 128), seed=3)
    cfg = write_det_config(tmp_path / 'retina.py', root)
    ckpt = _random_checkpoint(cfg, tmp_path / 'ckpt.pth')
    preds = _run(cfg, ckpt, tmp_path / 'tta', '--tta')
    assert len(preds) == 2
    assert all(p['bboxes'].shape[1:] == (4, ) for p in preds.values())
