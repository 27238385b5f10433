"""The ablation's scorer (spinexr.evaluation.coco_ap) gives pycocotools' numbers."""
import contextlib
import io
import json
import math
import pickle

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from spinexr.datasets.metainfo import CLASSES
from spinexr.experiments.ablation_report import evaluate_predictions
from spinexr.testing import make_tiny_coco


def _pycocotools(preds, ann_file):
    """The ablation's former scorer: COCOeval bbox, AP@0.5 per class and stats[1]."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
    name2cat = {c['name']: c['id'] for c in gt.loadCats(gt.getCatIds())}
    dets = [dict(image_id=int(p['img_id']), category_id=name2cat[CLASSES[int(lab)]],
                 bbox=[x1, y1, x2 - x1, y2 - y1], score=float(s))
            for p in preds
            for (x1, y1, x2, y2), s, lab in zip(p['pred_instances']['bboxes'].tolist(),
                                                p['pred_instances']['scores'].tolist(),
                                                p['pred_instances']['labels'].tolist())]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cat_ids = list(ev.params.catIds)
    out = {'mAP_50': float(max(ev.stats[1], 0.0))}
    for n in CLASSES:
        prec = ev.eval['precision'][0, :, cat_ids.index(name2cat[n]), 0, -1]
        out[f'AP50/{n}'] = float(prec[prec > -1].mean()) if (prec > -1).any() else float('nan')
    return out


def _noisy_predictions(coco, seed):
    """Jittered ground-truth boxes (some with a wrong label) plus random false positives."""
    rng = np.random.default_rng(seed)
    preds = []
    for im in coco['images']:
        boxes, labels = [], []
        for a in coco['annotations']:
            if a['image_id'] != im['id'] or rng.random() < 0.2:
                continue
            x, y, w, h = a['bbox']
            j = rng.normal(0, 0.15, 4) * [w, h, w, h]
            boxes.append([x + j[0], y + j[1], x + w + j[2], y + h + j[3]])
            labels.append(a['category_id'] - 1 if rng.random() < 0.8 else int(rng.integers(7)))
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 100), rng.uniform(0, 70)
            boxes.append([x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 25)])
            labels.append(int(rng.integers(7)))
        preds.append(dict(img_id=im['id'], pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor(rng.random(len(boxes)), dtype=torch.float32),
            labels=torch.tensor(labels, dtype=torch.long))))
    return preds


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('shuffled_ids', [False, True])
def test_scorer_equals_pycocotools(tmp_path, seed, shuffled_ids):
    ann = make_tiny_coco(str(tmp_path), num_images=10, seed=seed)
    coco = json.loads(open(ann).read())
    if shuffled_ids:  # category ids not in CLASSES order: labels are matched by class name
        new_id = {c['id']: 8 - c['id'] for c in coco['categories']}
        for c in coco['categories']:
            c['id'] = new_id[c['id']]
        for a in coco['annotations']:
            a['category_id'] = new_id[a['category_id']]
        with open(ann, 'w') as f:
            json.dump(coco, f)
        coco['annotations'] = [dict(a, category_id=8 - a['category_id'])
                               for a in coco['annotations']]  # back to label + 1 for the preds
    preds = _noisy_predictions(coco, seed)
    pkl = tmp_path / 'p.pkl'
    pkl.write_bytes(pickle.dumps(preds))
    got, want = evaluate_predictions(str(pkl), ann), _pycocotools(preds, ann)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, abs=1e-12), key
    assert 0 < got['mAP_50'] < 1


def test_no_detections_and_missing_category(tmp_path):
    ann = make_tiny_coco(str(tmp_path), num_images=4, seed=1)
    coco = json.loads(open(ann).read())
    present = {CLASSES[a['category_id'] - 1] for a in coco['annotations']}
    pkl = tmp_path / 'p.pkl'
    pkl.write_bytes(pickle.dumps([dict(img_id=im['id'], pred_instances=dict(
        bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long)))
        for im in coco['images']]))
    m = evaluate_predictions(str(pkl), ann)
    assert m['mAP_50'] == 0.0
    for n in CLASSES:
        assert m[f'AP50/{n}'] == 0.0 if n in present else math.isnan(m[f'AP50/{n}'])
    coco['categories'] = coco['categories'][:-1]
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] <= 6]
    with open(ann, 'w') as f:
        json.dump(coco, f)
    with pytest.raises(ValueError, match='missing'):
        evaluate_predictions(str(pkl), ann)
