"""Detector ensemble from saved predictions: test-label guards, search, fusion, the tool."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from spinexr.apis.detector_ensemble import (DetectionEnsemble, fuse_members, load_member,
                                            read_images, run_search, search_fusion)
from spinexr.evaluation.coco_ap import load_coco_gt
from spinexr.evaluation.det_summary import summarize_detections
from spinexr.testing import make_tiny_coco
from _tools import run_tool
from spinexr.utils.safe_pickle import load_predictions


def _dump(ann_file: str, out: Path, kind: str, seed: int = 0) -> str:
    """Write DumpDetResults-like predictions for the images of ``ann_file``.

    ``good``: every lesion found (1 px off) with a moderate score, no false positives.
    ``bad``: a confident false positive per image and no lesion found.
    """
    rng = np.random.default_rng(seed)
    data = json.loads(Path(ann_file).read_text())
    dump = []
    for im in data['images']:
        anns = [a for a in data['annotations'] if a['image_id'] == im['id']]
        if kind == 'good':
            boxes = [[a['bbox'][0] + 1, a['bbox'][1], a['bbox'][0] + a['bbox'][2] + 1,
                      a['bbox'][1] + a['bbox'][3]] for a in anns]
            scores = list(0.55 + 0.1 * rng.random(len(anns)))
            labels = [a['category_id'] - 1 for a in anns]
        else:
            x, y = rng.uniform(0, im['width'] / 2), rng.uniform(0, im['height'] / 2)
            boxes = [[x, y, x + 5, y + 5]]
            scores = [0.9 + 0.09 * rng.random()]
            labels = [int(rng.integers(0, 7))]
        dump.append(dict(img_id=im['id'], img_path=f'/data/{im["file_name"]}',
                         ori_shape=(im['height'], im['width']),
                         pred_instances=dict(bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                                             scores=np.asarray(scores, np.float32),
                                             labels=np.asarray(labels, np.int64))))
    with open(out, 'wb') as f:
        pickle.dump(dump, f)
    return str(out)


@pytest.fixture()
def splits(tmp_path):
    # different seeds: different image ids (the converter's 32-hex ids) in hold-out and test
    hold = make_tiny_coco(str(tmp_path / 'data'), split='val_split', num_images=8, seed=1,
                          img_size=(96, 160))
    test = make_tiny_coco(str(tmp_path / 'data'), split='test', num_images=8, seed=2,
                          img_size=(96, 160))
    preds = {}
    for split, ann in (('holdout', hold), ('test', test)):
        for kind in ('good', 'bad'):
            preds[kind, split] = _dump(ann, tmp_path / f'{kind}_{split}.pkl', kind)
    return tmp_path, hold, test, preds


def test_search_refuses_test_images(splits):
    tmp, hold, test, preds = splits
    first_test_image = json.loads(Path(test).read_text())['images'][0]['image_id']
    # the search pointed at the test set itself (labels and predictions consistent)
    with pytest.raises(ValueError, match=f'image {first_test_image} belongs to the test set'):
        run_search({'good': preds['good', 'test'], 'bad': preds['bad', 'test']}, test,
                   str(tmp / 'p.json'), test_ann_file=test)
    # one member's file holds test images
    with pytest.raises(ValueError, match=first_test_image):
        run_search({'good': preds['good', 'holdout'], 'bad': preds['bad', 'test']}, hold,
                   str(tmp / 'p.json'), test_ann_file=test)
    with pytest.raises(ValueError, match='never chosen on test'):
        run_search({'good': preds['good', 'holdout'], 'bad': preds['bad', 'holdout']}, hold,
                   str(tmp / 'p.json'), test_ann_file=test, split='test')
    assert not (tmp / 'p.json').exists()


def test_member_of_another_split_is_refused(splits):
    tmp, hold, test, preds = splits
    with pytest.raises(ValueError, match='annotation file says'):
        load_member(preds['good', 'test'], read_images(hold))


def test_search_prefers_the_better_member(splits):
    tmp, hold, test, preds = splits
    images = read_images(hold)
    gts, names = load_coco_gt(hold)
    members = [load_member(preds[k, 'holdout'], images) for k in ('good', 'bad')]
    equal = summarize_detections(gts, fuse_members(members, images, weights=[1, 1]), names,
                                 voc101=False, froc=False)['mAP_50']
    best = search_fusion(gts, members, images, names, weight_levels=(1.0, 3.0),
                         iou_thrs=(0.5,), skip_box_thrs=(0.0,))
    assert best['n_candidates'] == 3
    assert best['weights'][0] > best['weights'][1]
    assert best['mAP_50'] > equal + 0.05
    out = run_search({'good': preds['good', 'holdout'], 'bad': preds['bad', 'holdout']}, hold,
                     str(tmp / 'p.json'), test_ann_file=test, weight_levels=(1.0, 3.0),
                     iou_thrs=(0.5,), skip_box_thrs=(0.0,))
    saved = json.loads((tmp / 'p.json').read_text())
    assert saved['weights'] == out['weights'] and saved['weights']['good'] == 0.75
    assert saved['source']['split'] == 'train' and saved['source']['kind'] == 'hold-out'


def test_params_file_chosen_on_test_is_refused(tmp_path):
    p = tmp_path / 'p.json'
    p.write_text(json.dumps(dict(method='wbf', weights=dict(a=1.0), iou_thr=0.5,
                                 skip_box_thr=0.0, source=dict(split='test'))))
    with pytest.raises(ValueError, match='test split'):
        DetectionEnsemble(members=[dict(name='a')], params_file=str(p))
    p.write_text(json.dumps(dict(method='nms', weights=dict(a=1.0), iou_thr=0.5,
                                 skip_box_thr=0.0, source=dict(split='train'))))
    with pytest.raises(ValueError, match="method='wbf'"):
        DetectionEnsemble(members=[dict(name='a')], params_file=str(p))


def test_tool_end_to_end(splits):
    tmp, hold, test, preds = splits
    cfg = tmp / 'ens.py'
    cfg.write_text(f"""
ensemble = dict(type='DetectionEnsemble', method='wbf', iou_thr=0.55, params_file=None,
    members=[dict(name='good', holdout={preds['good', 'holdout']!r},
                  test={preds['good', 'test']!r}),
             dict(name='bad', holdout={preds['bad', 'holdout']!r}, test={preds['bad', 'test']!r})])
search = dict(ann_file={hold!r}, split='train', out={str(tmp / 'params.json')!r},
              weight_levels=(1.0, 3.0), iou_thrs=(0.5, 0.6), skip_box_thrs=(0.0,))
test_ann_file = {test!r}
out_predictions = {str(tmp / 'fused.pkl')!r}
out_metrics = {str(tmp / 'metrics.json')!r}
n_bootstrap = 20
""")
    run_tool(['tools/fuse_detections.py', str(cfg), '--search'])
    params = json.loads((tmp / 'params.json').read_text())
    assert params['weights']['good'] > params['weights']['bad']
    run_tool(['tools/fuse_detections.py', str(cfg), '--cfg-options',
              f'ensemble.params_file={tmp / "params.json"}'])
    metrics = json.loads((tmp / 'metrics.json').read_text())
    assert metrics['weights'] == params['weights']
    assert metrics['mAP_50_ci_low'] <= metrics['mAP_50_ci_high']  # study bootstrap ran
    assert 'FROC_mean' in metrics
    fused = load_predictions(str(tmp / 'fused.pkl'))
    assert len(fused) == 8 and {p['img_id'] for p in fused} == set(range(1, 9))
    # the fused file scores the same through the evaluator
    gts, names = load_coco_gt(test)
    images = read_images(test)
    again = summarize_detections(gts, list(load_member(str(tmp / 'fused.pkl'), images).values()),
                                 names, voc101=False, froc=False)['mAP_50']
    assert again == pytest.approx(metrics['mAP_50'], abs=1e-6)


def test_shipped_config_builds():
    from mmdet.registry import TASK_UTILS
    from mmengine.config import Config

    from _tools import REPO
    from spinexr.utils.data_root import resolve_data_root
    cfg = resolve_data_root(Config.fromfile(str(REPO / 'configs/ensembles/wbf_vindr-640.py')),
                            '/moved')
    ens = TASK_UTILS.build(cfg.ensemble)
    assert isinstance(ens, DetectionEnsemble) and ens.method == 'wbf'
    assert set(ens.pred_files('holdout')) == set(ens.pred_files('test')) == set(ens.names)
    assert cfg.search.ann_file == '/moved/annotations/val_split.json'
    assert cfg.search.split == 'train'


def test_fused_row_goes_into_the_comparison_table(splits):
    from spinexr.apis.detector_ensemble import fused_row
    from spinexr.analysis.report import write_comparison
    tmp, hold, test, preds = splits
    ens = DetectionEnsemble(members=[dict(name='good'), dict(name='bad')])
    fused = ens.fuse({'good': preds['good', 'test'], 'bad': preds['bad', 'test']}, test)
    row = fused_row(fused, test, 'WBF(good, bad)', n_bootstrap=10, notes='equal weights')
    assert row['mAP_50_ci_low'] <= row['mAP_50_ci_high'] and row['froc_curve_fps']
    paths = write_comparison([], str(tmp / 'table'), extra_rows=[row])
    text = Path(paths['markdown']).read_text()
    assert 'WBF(good, bad)' in text and f'{100 * row["mAP_50"]:.1f}' in text


def test_fused_row_from_members_equals_file_fusion(splits):
    from spinexr.apis.detector_ensemble import fused_row_from_members
    tmp, hold, test, preds = splits
    images = read_images(test)
    by_member = {k: list(load_member(preds[k, 'test'], images).values()) for k in ('good', 'bad')}
    row = fused_row_from_members(by_member, test, n_bootstrap=0)
    ens = DetectionEnsemble(members=[dict(name='good'), dict(name='bad')])
    fused = ens.fuse({'good': preds['good', 'test'], 'bad': preds['bad', 'test']}, test)
    gts, names = load_coco_gt(test)
    assert row['mAP_50'] == pytest.approx(
        summarize_detections(gts, fused, names, froc=False)['mAP_50'])
    assert row['model'] == 'WBF ensemble (good, bad)' and 'not searched' in row['notes']


@pytest.mark.slow
def test_comparison_table_gets_the_fused_row(tiny_coco, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import RUNNERS

    from spinexr.analysis.model_table import ModelSpec, find_checkpoint, run_comparison_table
    from spinexr.experiments.detector_configs import ModelEntry, derive_config
    entry = ModelEntry('retina', 'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
                       demo_options={'model.backbone.depth': 18,
                                     'model.neck.in_channels': [64, 128, 256, 512]})
    cfg_file = derive_config(entry, dict(img_size=128, iters=2, batch_size=2, demo=True,
                                         workers=0), str(tiny_coco), str(tmp_path / 'r.py'))
    cfg = Config.fromfile(cfg_file)
    cfg.model.test_cfg.score_thr = 0.0  # an untrained detector still outputs boxes
    cfg.model.test_cfg.max_per_img = 20
    cfg.dump(cfg_file)
    cfg.work_dir = str(tmp_path / 'work')
    RUNNERS.build(cfg).train()
    ckpt = find_checkpoint(cfg.work_dir)
    # the same detector twice: WBF of two identical members (equal weights) is that member
    specs = [ModelSpec(name=n, config=cfg_file, checkpoint=ckpt) for n in ('a', 'b')]
    rows, paths = run_comparison_table(specs, str(tmp_path / 'table'), data_root=str(tiny_coco),
                                       n_bootstrap=20, count_flops=False,
                                       ensemble=dict(method='wbf'))
    assert [r['model'] for r in rows] == ['a', 'b', 'WBF ensemble (a, b)']
    assert rows[2]['mAP_50'] == pytest.approx(rows[0]['mAP_50'], abs=1e-3)
    assert rows[2]['FROC_mean'] == pytest.approx(rows[0]['FROC_mean'], abs=1e-3)
    assert rows[0]['froc_curve_fps'][-1] > 1  # the member did output boxes
    assert rows[2]['froc_curve_fps'][-1] == pytest.approx(rows[0]['froc_curve_fps'][-1])
    assert 'WBF ensemble (a, b)' in open(paths['markdown']).read()
