"""The comparison table: a tiny trained RetinaNet through tools/analysis_tools/compare.py."""
import csv
import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

from _tools import REPO as REPO_ROOT
from spinexr.experiments.detector_configs import ModelEntry, derive_config
from spinexr.evaluation.compare import (CLASSIFIER_COLUMNS, build_detector, model_complexity,
                                        training_time_s, write_comparison)


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'compare_tool', osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'compare.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_write_comparison_with_classifier_rows(tmp_path):
    names = ['Osteophytes', 'Surgical implant']
    det = dict(model='det', class_names=names, mAP_50=0.5, mAP_50_ci_low=0.4,
               mAP_50_ci_high=0.6, mAP=0.2, voc101_mAP=0.45, AP50_Osteophytes=0.7,
               AP50_Surgical_implant=float('nan'), precision=0.3, recall=0.6, params_M=12.3,
               GFLOPs_640=None, images_per_s=3.2, train_time_min=1.5, device='CPU x',
               num_test_images=10, notes='GFLOPs n/a: reason')
    cls = dict(model='densenet121', AUROC=0.88, sensitivity=0.8, specificity=0.79, F1=0.81)
    paths = write_comparison([det], str(tmp_path), extra_rows=[cls])
    md = open(paths['markdown']).read()
    assert '| det | 50.0 | 40.0-60.0 | 20.0 | 45.0 | 70.0 | n/a |' in md
    assert 'AUROC' in md and '| densenet121 | - |' in md and '88.0' in md
    rows = list(csv.DictReader(open(paths['csv'])))
    assert rows[0]['mAP_50'] == '0.5' and rows[1]['AUROC'] == '0.88'
    assert set(CLASSIFIER_COLUMNS) <= set(rows[0])
    assert osp.getsize(paths['png']) > 1000


def test_training_time_from_log(tmp_path):
    log = tmp_path / '20260101_000000' / '20260101_000000.log'
    log.parent.mkdir()
    log.write_text('2026/01/01 10:00:00 - mmengine - INFO - start\n'
                   '2026/01/01 10:02:30 - mmengine - INFO - Iter(train) [1/1] loss: 1\n')
    assert training_time_s(str(tmp_path)) == 150.0
    (tmp_path / 'train_time.json').write_text(json.dumps(dict(seconds=12.5)))
    assert training_time_s(str(tmp_path)) == 12.5
    assert training_time_s(None) is None


@pytest.mark.slow
def test_compare_tool_on_tiny_run(tiny_coco, tmp_path):
    from mmengine.registry import RUNNERS
    entry = ModelEntry('retina', 'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
                       demo_options={'model.backbone.depth': 18,
                                     'model.neck.in_channels': [64, 128, 256, 512]})
    cfg_file = derive_config(entry, dict(img_size=128, iters=2, batch_size=2, demo=True,
                                         workers=0), str(tiny_coco), str(tmp_path / 'r.py'))
    cfg = Config.fromfile(cfg_file)
    cfg.work_dir = str(tmp_path / 'work')
    RUNNERS.build(cfg).train()
    out = tmp_path / 'table'
    _load_tool().main(['--work-dirs', cfg.work_dir, '--data-root', str(tiny_coco),
                       '--out-dir', str(out), '--n-bootstrap', '50', '--no-flops'])
    rows = json.loads((out / 'comparison.json').read_text())
    assert rows[0]['model'] == 'work' and rows[0]['num_test_images'] == 4
    assert 0.0 <= rows[0]['mAP_50'] <= 1.0 and rows[0]['images_per_s'] > 0
    assert rows[0]['mAP_50_ci_low'] <= rows[0]['mAP_50_ci_high']
    assert rows[0]['train_time_min'] is not None
    assert (out / 'per_class_ap.png').is_file() and (out / 'comparison.csv').is_file()
    # FROC: keys with a study-bootstrap interval, the curve's corners and its PNG
    assert rows[0]['FROC_mean_ci_low'] <= rows[0]['FROC_mean_ci_high']
    assert rows[0]['froc_curve_fps'][0] == 0.0 and (out / 'froc.png').is_file()
    # parameters and GFLOPs of the same model at a small size
    model = build_detector(Config.fromfile(cfg_file), None)
    params_m, gflops, note = model_complexity(model, img_size=128)
    assert 5 < params_m < 40 and gflops is not None and gflops > 0.1, note


@pytest.mark.parametrize('config', [
    'configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
    'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
    'configs/sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
    'configs/dino/dino-4scale_r50_12e_vindr-640.py',
])
def test_every_baseline_gets_a_flop_count(config):
    """No baseline prints 'GFLOPs n/a' (Sparse R-CNN's tensor-mode forward needs a GT box)."""
    model = build_detector(Config.fromfile(osp.join(REPO_ROOT, config)), None)
    model.init_weights()  # as the Runner does before training
    _, gflops, note = model_complexity(model, img_size=320)  # DINO's 900 queries need >900 tokens
    # the R50 backbone alone is ~8 GFLOPs (multiply-adds) at 320x320
    assert gflops is not None and gflops > 8.0, note
    if 'sparse' in config:
        assert 'matching' in note


def test_write_comparison_froc_columns_and_curve(tmp_path):
    """FROC mean with its study-bootstrap CI and sensitivity at 1 FP/image in the Markdown and
    the CSV, and the FROC curve PNG beside the per-class AP chart."""
    names = ['Osteophytes']
    det = dict(model='det', class_names=names, mAP_50=0.5, AP50_Osteophytes=0.5,
               FROC_mean=0.62, FROC_mean_ci_low=0.5, FROC_mean_ci_high=0.7, FROC_fp_1=0.6,
               FROC_fp_1_ci_low=0.4, FROC_fp_1_ci_high=0.8,
               **{f'FROC_fp_{r}': 0.1 * i for i, r in enumerate(
                   ('0.125', '0.25', '0.5', '2', '4', '8'))},
               froc_curve_fps=[0.0, 0.1, 0.9, 3.0], froc_curve_sens=[0.0, 0.3, 0.6, 0.7])
    paths = write_comparison([det, dict(det, model='other', froc_curve_sens=[0, .1, .2, .9])],
                             str(tmp_path))
    md = open(paths['markdown']).read()
    header = md.splitlines()[2]
    assert '| FROC mean | FROC 95% CI | sens@1FP |' in header
    assert '| 62.0 | 50.0-70.0 | 60.0 |' in md
    assert 'false positives per image' in md  # the footnote states the rule
    row = list(csv.DictReader(open(paths['csv'])))[0]
    assert row['FROC_mean'] == '0.62' and row['FROC_mean_ci_low'] == '0.5'
    assert row['FROC_fp_0.125'] == '0.0' and row['FROC_fp_8'] == '0.5'
    assert 'froc_curve_fps' not in row
    assert paths['froc_png'] == str(tmp_path / 'froc.png')
    assert osp.getsize(paths['froc_png']) > 1000
