"""VinDrDetMetric: registered, fed like the Runner feeds it, same numbers as det_summary."""
import json

import numpy as np
import pytest
import torch

from mmdet.registry import METRICS
from spinexr.evaluation.coco_ap import ImagePred, load_coco_gt
from spinexr.evaluation.det_summary import summarize_detections
from spinexr.testing import make_tiny_coco


def _samples(gts, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for g in gts:
        boxes = g.bboxes + rng.normal(0, 2, g.bboxes.shape)
        extra = np.array([[1.0, 1.0, 30.0, 30.0]])
        boxes = np.vstack([boxes, extra])
        labels = np.concatenate([g.labels, [0]])
        scores = rng.uniform(0.05, 1.0, len(boxes))
        out.append(dict(img_id=g.img_id, pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            scores=torch.tensor(scores, dtype=torch.float32),
            labels=torch.tensor(labels))))
    return out


@pytest.fixture()
def tiny(tmp_path):
    ann = make_tiny_coco(str(tmp_path), split='test', num_images=12, seed=4)
    return ann, *load_coco_gt(ann)


def test_metric_matches_summary(tiny, tmp_path):
    ann, gts, names = tiny
    metric = METRICS.build(dict(type='VinDrDetMetric', ann_file=ann, n_bootstrap=100,
                                outfile=str(tmp_path / 'res.json')))
    metric.dataset_meta = dict(classes=tuple(names))
    samples = _samples(gts)
    metric.process({}, samples[:5])
    metric.process({}, samples[5:])
    res = metric.evaluate(len(samples))
    preds = [ImagePred(s['img_id'], s['pred_instances']['bboxes'].double().numpy(),
                       s['pred_instances']['scores'].double().numpy(),
                       s['pred_instances']['labels'].numpy()) for s in samples]
    ref = summarize_detections(gts, preds, names, n_bootstrap=100)
    for k, v in ref.items():
        assert res[f'vindr/{k}'] == pytest.approx(v, nan_ok=True, abs=1e-6), k
    assert res['vindr/mAP_50_ci_low'] <= res['vindr/mAP_50'] <= res['vindr/mAP_50_ci_high']
    # the interval resamples the 6 studies of the file (two views each), not its 12 images
    assert res['vindr/mAP_50_ci_units'] == 6
    dumped = json.loads((tmp_path / 'res.json').read_text())
    assert len(dumped) == sum(len(s['pred_instances']['scores']) for s in samples)


def test_metric_without_study_ids_resamples_images(tiny, tmp_path):
    ann, gts, names = tiny
    coco = json.loads(open(ann).read())
    for im in coco['images']:
        del im['study_id']
    bare = tmp_path / 'no_study.json'
    bare.write_text(json.dumps(coco))
    results = {}
    for key, path in (('study', ann), ('image', str(bare))):
        metric = METRICS.build(dict(type='VinDrDetMetric', ann_file=path, n_bootstrap=200))
        metric.process({}, _samples(gts))
        results[key] = metric.evaluate(len(gts))
    assert results['image']['vindr/mAP_50_ci_units'] == 12
    assert results['study']['vindr/mAP_50_ci_units'] == 6
    assert results['image']['vindr/mAP_50'] == results['study']['vindr/mAP_50']
    keys = ('vindr/mAP_50_ci_low', 'vindr/mAP_50_ci_high', 'vindr/mAP_50_ci_dropped')
    assert [results['image'][k] for k in keys] != [results['study'][k] for k in keys]


def test_metric_fusion_option(tiny, tmp_path):
    ann, gts, names = tiny
    probs = tmp_path / 'probs.json'
    probs.write_text(json.dumps({g.image_id: 0.0 for g in gts}))  # every image "normal"
    metric = METRICS.build(dict(type='VinDrDetMetric', ann_file=ann,
                                fusion_probs_file=str(probs), fusion_operating_point=0.5,
                                outfile=str(tmp_path / 'gated.json')))
    samples = _samples(gts)
    metric.process({}, samples)
    metric.evaluate(len(samples))
    dumped = json.loads((tmp_path / 'gated.json').read_text())
    assert dumped and all(d['score'] > 0.5 for d in dumped)
    with pytest.raises(ValueError, match='operating'):
        METRICS.build(dict(type='VinDrDetMetric', ann_file=ann, fusion_probs_file='x.json'))


def test_metric_rejects_other_classes(tiny):
    ann, gts, names = tiny
    metric = METRICS.build(dict(type='VinDrDetMetric', ann_file=ann))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, _samples(gts)[:1])
    with pytest.raises(ValueError, match='differ'):
        metric.evaluate(1)


def _hand_case_files(tmp_path):
    """The hand-computed FROC case of tests/evaluation/test_froc.py as a COCO file + samples."""
    def box(b):
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]
    A, B, C, far = [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [50, 50, 60, 60]
    lesions = [(0, A, 1), (0, B, 1), (1, C, 2)]  # (image, box, category id)
    coco = dict(images=[dict(id=i, file_name=f'{i}.png', width=64, height=64,
                             study_id=f's{i // 2}') for i in range(4)],
                annotations=[dict(id=k + 1, image_id=i, category_id=c, bbox=box(b), area=100.0,
                                  iscrowd=0) for k, (i, b, c) in enumerate(lesions)],
                categories=[dict(id=1, name='a'), dict(id=2, name='b')])
    ann = tmp_path / 'hand.json'
    ann.write_text(json.dumps(coco))
    dets = {0: [(A, 0.9, 0), ([1, 1, 11, 11], 0.8, 0), (B, 0.5, 0)],
            1: [(C, 0.6, 1), (C, 0.3, 0)], 2: [(far, 0.7, 0)], 3: [(far, 0.4, 1)]}
    samples = [dict(img_id=i, pred_instances=dict(
        bboxes=torch.tensor([d[0] for d in ds], dtype=torch.float32),
        scores=torch.tensor([d[1] for d in ds], dtype=torch.float32),
        labels=torch.tensor([d[2] for d in ds]))) for i, ds in dets.items()]
    return str(ann), samples


@pytest.mark.parametrize('max_dets', [100, 1])
def test_metric_froc_hand_computed(tmp_path, max_dets):
    """FROC keys equal the hand-computed case, over all 4 images (2 normal), with every detection
    even when the COCO cap (``max_dets``) would cut some."""
    ann, samples = _hand_case_files(tmp_path)
    metric = METRICS.build(dict(type='VinDrDetMetric', ann_file=ann, max_dets=max_dets,
                                n_bootstrap=200))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    overall = [1 / 3, 1 / 3, 1, 1, 1, 1, 1]
    for r, v in zip(('0.125', '0.25', '0.5', '1', '2', '4', '8'), overall):
        assert res[f'vindr/FROC_fp_{r}'] == pytest.approx(v), r
    assert res['vindr/FROC_mean'] == pytest.approx((2 / 3 + 5) / 7)
    assert res['vindr/FROC_fp_0.125_a'] == pytest.approx(0.5)
    assert res['vindr/FROC_mean_a'] == pytest.approx(6 / 7)
    assert res['vindr/FROC_mean_b'] == pytest.approx(1.0)
    assert res['vindr/FROC_mean_ci_low'] <= res['vindr/FROC_mean'] <= \
        res['vindr/FROC_mean_ci_high']
    assert res['vindr/FROC_fp_1_ci_low'] <= res['vindr/FROC_fp_1_ci_high']
    assert res['vindr/FROC_ci_units'] == 2  # studies s0 (images 0, 1) and s1 (images 2, 3)
    if max_dets == 1:  # the cap does cut mAP: image 0's class-0 box B (a hit) is gone
        assert res['vindr/recall_a'] < 1.0
