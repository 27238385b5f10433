"""``tools/infer.py`` (``run_inference``) gives the boxes ``tools/test.py`` gives (the Runner's test
loop: the config's mmdet test pipeline, ``yolo_collate``, ``model.predict``) on the same images
and checkpoint.

Where the two can differ, and the tolerance this test states:

* the resize: the test pipeline resizes each image with OpenCV (``cv2.resize`` INTER_LINEAR on
  uint8, fixed-point weights), the inference path with ``F.interpolate`` (bilinear, float weights,
  rounded) on the device; about a quarter of the resized pixels differ by one grey level
  (1/255 of the network input). Images already at the network size are not resized at all;
* the network: infer fuses Conv+BN and runs channels-last (as Ultralytics' predictor), the test
  loop runs the unfused float32 network: ~1e-6 relative differences.

Tolerance: without a resize, every box above the score threshold matches (same class) within
0.01 px and 1e-4 in score (the findings are written rounded to 0.01 px and 1e-5). With a resize
(200 x 150 -> 128 x 96), matched boxes lie within 0.5 px (original pixels) and 0.005 in score,
and at least 98 % of the boxes of each side find a match (boxes with nearly equal scores may swap
in NMS when the input moves by a grey level). Measured here (x86, 4 images, ~250 boxes each of a
random YOLO11-n with zeroed class biases): every box matched within 0.01 px and 1e-4 in both
cases.
"""
import importlib.util
import pickle
import re

import numpy as np
import pytest
import torch

from spinexr.testing import make_tiny_coco
from _tools import REPO

SCALE = 128
SCORE_THR = 0.3


def _config(path, data_root):
    path.write_text(
        f"_base_ = '{REPO}/configs/yolo11/yolo11n_35e_vindr-640.py'\n"
        f"data_root = '{data_root}/'\n"
        f"model = dict(test_cfg=dict(conf_thr={SCORE_THR}))\n"
        "_pipeline = [\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        f"    dict(type='Resize', scale=({SCALE}, {SCALE}), keep_ratio=True),\n"
        "    dict(type='LoadAnnotations', with_bbox=True),\n"
        "    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',\n"
        "         'img_shape', 'scale_factor'))]\n"
        "test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,\n"
        "                       dataset=dict(pipeline=_pipeline))\n"
        "val_dataloader = test_dataloader\n")
    return path


def _checkpoint(cfg_file, path):
    """Random YOLO11-n weights with the class-logit biases at 0 (scores around 0.5)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import spinexr.models  # noqa: F401
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(str(cfg_file)).model)
    state = model.state_dict()
    for k in state:
        if re.search(r'model\.23\.cv3\.\d\.2\.bias$', k):
            state[k].zero_()
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


def _match(a, b, box_tol, score_tol):
    """Indices of rows of ``a`` with a same-class row of ``b`` within the tolerances."""
    hits = []
    for i in range(len(a['scores'])):
        same = np.nonzero(b['labels'] == a['labels'][i])[0]
        if not len(same):
            continue
        err = np.abs(b['bboxes'][same] - a['bboxes'][i]).max(axis=1)
        ok = (err <= box_tol) & (np.abs(b['scores'][same] - a['scores'][i]) <= score_tol)
        if ok.any():
            hits.append(i)
    return hits


@pytest.mark.slow
@pytest.mark.parametrize('img_size', [(96, 128), (150, 200)], ids=['no-resize', 'resize'])
def test_infer_boxes_equal_test_loop_boxes(tmp_path, img_size):
    root = tmp_path / 'data'
    make_tiny_coco(str(root), split='test', num_images=4, img_size=img_size, seed=3)
    cfg = _config(tmp_path / 'cfg.py', root)
    ckpt = _checkpoint(cfg, tmp_path / 'ckpt.pth')
    spec = importlib.util.spec_from_file_location('spinexr_test_tool', REPO / 'tools' / 'test.py')
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    dump = tmp_path / 'preds.pkl'
    test_tool.main([str(cfg), str(ckpt), '--work-dir', str(tmp_path / 'eval'),
                    '--out', str(dump)])
    with open(dump, 'rb') as f:
        ref = {r['img_path']: {k: np.asarray(v.numpy() if hasattr(v, 'numpy') else v)
                               for k, v in r['pred_instances'].items()} for r in pickle.load(f)}

    from spinexr.apis.inference import run_inference
    res = run_inference(sorted(ref), str(cfg), str(ckpt), batch_size=2, workers=0,
                        score_thr=SCORE_THR, progress=False)
    ours = {r['image_path']: dict(
        bboxes=np.array([f['box'] for f in r['findings']], np.float64).reshape(-1, 4),
        scores=np.array([f['score'] for f in r['findings']]),
        labels=np.array([f['class_id'] for f in r['findings']])) for r in res['images']}
    assert sorted(ours) == sorted(ref)
    n_boxes = 0
    for path, mine in ours.items():
        theirs = ref[path]
        keep = theirs['scores'] > SCORE_THR
        theirs = {k: v[keep] for k, v in theirs.items()}
        n_boxes += len(theirs['scores'])
        if img_size == (96, 128):  # no resize: the same input, the same boxes
            # written findings are rounded to 0.01 px / 1e-5 in score
            assert len(mine['scores']) == len(theirs['scores'])
            assert len(_match(mine, theirs, 0.01, 1e-4)) == len(mine['scores'])
            assert len(_match(theirs, mine, 0.01, 1e-4)) == len(theirs['scores'])
        else:
            for a, b in ((mine, theirs), (theirs, mine)):
                assert len(_match(a, b, 0.5, 0.005)) >= 0.98 * len(a['scores']), path
    assert n_boxes > 0
