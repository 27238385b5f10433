"""COCO-style AP of spinexr.evaluation.coco_ap / det_summary against pycocotools' COCOeval."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from spinexr.evaluation.coco_ap import (ImagePred, ap_per_class, load_coco_gt, match_coco,
                                        precision_recall_at)
from spinexr.evaluation.det_summary import class_key, summarize_detections
from spinexr.testing import make_tiny_coco


def random_predictions(gts, num_classes, seed=0):
    """Jittered copies of the ground truth (sometimes with the wrong class) plus random boxes."""
    rng = np.random.default_rng(seed)
    preds = []
    for g in gts:
        boxes, scores, labels = [], [], []
        for box, lab in zip(g.bboxes, g.labels):
            for _ in range(int(rng.integers(0, 3))):
                w, h = box[2] - box[0], box[3] - box[1]
                jit = rng.normal(0, 0.12, 4) * np.array([w, h, w, h])
                boxes.append(box + jit)
                labels.append(lab if rng.random() < 0.8 else rng.integers(0, num_classes))
                scores.append(rng.random())
        for _ in range(int(rng.integers(0, 5))):
            x, y = rng.uniform(0, 100, 2)
            boxes.append([x, y, x + rng.uniform(5, 40), y + rng.uniform(5, 40)])
            labels.append(rng.integers(0, num_classes))
            scores.append(rng.random())
        preds.append(ImagePred(img_id=g.img_id, bboxes=np.array(boxes).reshape(-1, 4),
                               scores=np.array(scores), labels=np.array(labels, dtype=np.int64)))
    return preds


def coco_results(preds):
    rows = []
    for p in preds:
        for b, s, lab in zip(p.bboxes, p.scores, p.labels):
            rows.append(dict(image_id=p.img_id, category_id=int(lab) + 1,
                             bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]], score=float(s)))
    return rows


def run_cocoeval(ann_file, preds):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dt = gt.loadRes(coco_results(preds))
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    ann = make_tiny_coco(str(root), split='test', num_images=40, img_size=(96, 128), seed=3)
    # add a crowd box to exercise COCO's ignore rule
    data = json.loads(open(ann).read())
    data['annotations'].append(dict(id=10_000, image_id=2, category_id=1, bbox=[5, 5, 30, 30],
                                    area=900.0, iscrowd=1))
    open(ann, 'w').write(json.dumps(data))
    gts, names = load_coco_gt(ann)
    return ann, gts, names


@pytest.mark.parametrize('seed', [0, 1])
def test_matches_pycocotools(tiny, seed):
    ann, gts, names = tiny
    preds = random_predictions(gts, len(names), seed)
    ev = run_cocoeval(ann, preds)
    ours = summarize_detections(gts, preds, names, voc101=False)
    assert ours['mAP'] == pytest.approx(ev.stats[0], abs=1e-9)
    assert ours['mAP_50'] == pytest.approx(ev.stats[1], abs=1e-9)
    assert ours['mAP_75'] == pytest.approx(ev.stats[2], abs=1e-9)
    assert 0.05 < ours['mAP_50'] < 0.95  # a non-trivial case
    prec = ev.eval['precision']  # T, R, K, A, M
    for k, name in enumerate(names):
        p = prec[0, :, k, 0, 2]
        expected = p.mean() if (p > -1).any() else np.nan
        got = ours[f'AP50_{class_key(name)}']
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-9)


def test_precision_recall_at_threshold_matches_pycocotools(tiny):
    ann, gts, names = tiny
    preds = random_predictions(gts, len(names), seed=5)
    thr = 0.5
    kept = [ImagePred(p.img_id, p.bboxes[p.scores >= thr], p.scores[p.scores >= thr],
                      p.labels[p.scores >= thr]) for p in preds]
    ev = run_cocoeval(ann, kept)
    match = match_coco(gts, preds, len(names))
    prec, rec = precision_recall_at(match, thr)
    match_kept = match_coco(gts, kept, len(names))
    for k in range(len(names)):
        r = ev.eval['recall'][0, k, 0, 2]
        if r < 0:
            assert np.isnan(rec[k])
            continue
        assert rec[k] == pytest.approx(r, abs=1e-12)
        ndet = int((~match_kept.ignore[k][0]).sum())
        ntp = r * match.npos[k].sum()
        assert prec[k] == pytest.approx(ntp / ndet if ndet else 0.0, abs=1e-9)


def test_perfect_and_empty_predictions(tiny):
    _, gts, names = tiny
    perfect = [ImagePred(g.img_id, g.bboxes[~g.iscrowd], np.ones((~g.iscrowd).sum()),
                         g.labels[~g.iscrowd]) for g in gts]
    out = summarize_detections(gts, perfect, names)
    assert out['mAP'] == pytest.approx(1.0)
    assert out['voc101_mAP'] == pytest.approx(1.0)
    assert out['precision'] == pytest.approx(1.0) and out['recall'] == pytest.approx(1.0)
    empty = summarize_detections(gts, [], names)
    assert empty['mAP_50'] == 0.0 and empty['recall'] == 0.0


def test_ap_per_class_shape(tiny):
    _, gts, names = tiny
    match = match_coco(gts, random_predictions(gts, len(names)), len(names))
    assert ap_per_class(match).shape == (10, len(names))


def test_bad_annotation_file_names_the_row(tmp_path):
    bad = dict(images=[dict(id=1, file_name='a.png', width=10, height=10)],
               annotations=[dict(id=7, image_id=2, category_id=1, bbox=[0, 0, 1, 1])],
               categories=[dict(id=1, name='x')])
    f = tmp_path / 'bad.json'
    f.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match='annotation id 7'):
        load_coco_gt(str(f))
