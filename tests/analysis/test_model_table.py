"""The comparison table: a tiny trained RetinaNet through tools/analysis_tools/model_table.py."""
import importlib.util
import json
from pathlib import Path

import pytest
from mmengine.config import Config

from spinexr.analysis.cost import model_complexity
from spinexr.experiments.detector_configs import ModelEntry, derive_config
from spinexr.apis.inference import build_detector

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'model_table_tool', str(REPO_ROOT / 'tools' / 'analysis_tools' / 'model_table.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    model, _, _ = build_detector(Config.fromfile(cfg_file), None, prepare=False)
    params_m, gflops, note = model_complexity(model, img_size=128)
    assert 5 < params_m < 40 and gflops is not None and gflops > 0.1, note
