"""The table files: Markdown, CSV, JSON, the per-class AP chart and the FROC curves."""
import csv
import os.path as osp

from spinexr.analysis.report import CLASSIFIER_COLUMNS, write_comparison


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
