"""benchmarks/gpu_check.sh parses, refuses a missing output folder, and its summary computes the
ratios (steady = epoch 2 onwards) from the benchmarks' JSON files. The CPU smoke run of the whole
script (``GPU_CHECK_SMOKE=1``, a few minutes) is not part of the suite; docs/gpu.md says how."""
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / 'benchmarks'
SCRIPT = BENCH / 'gpu_check.sh'


def _summary_module():
    spec = importlib.util.spec_from_file_location('gpu_check_summary',
                                                  BENCH / 'gpu_check_summary.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_syntax():
    res = subprocess.run(['bash', '-n', str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_script_needs_output_folder():
    res = subprocess.run(['bash', str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert 'usage' in res.stderr


def _write_run(out: Path, data_root: Path) -> None:
    (data_root / 'annotations').mkdir(parents=True)
    (data_root / 'annotations' / 'train.json').write_text(
        json.dumps(dict(images=[dict(id=i) for i in range(8)], annotations=[], categories=[])))
    parity = dict(
        args=dict(size='l', imgsz=640, batch=32, amp=True, epochs=3, device='0',
                  data_root=str(data_root)),
        adapter=dict(epoch_s=[10.0, 4.0, 4.0], images_per_s=8 * 3 / 18.0, map50=1.0, map=0.5),
        ultralytics=dict(epoch_s=[5.0, 2.0, 2.0], images_per_s=8 * 3 / 9.0, map50=2.0, map=1.0),
        ratios=dict(throughput_ratio=0.5, map50_diff_points=-1.0))
    (out / 'parity.json').write_text(json.dumps(parity))
    (out / 'infer.json').write_text(json.dumps(dict(
        model='yolo11l', imgsz=640, batch=32, fp16=True, images=2304, weights='random init',
        images_per_s=dict(spinexr=300.0, ultralytics=350.0, bare_forward=2300.0),
        spinexr_vs_ultralytics=0.86)))
    (out / 'machine.json').write_text(json.dumps(dict(gpu='NVIDIA H200', torch='2.11.0',
                                                      cuda='13.0', mode='gpu')))
    (out / 'steps.tsv').write_text('setup\tok\t0\t12\t90\nparity\ttimeout\t124\t200\t200\n')


def test_summary_ratios_and_markdown(tmp_path):
    mod = _summary_module()
    out = tmp_path / 'out'
    out.mkdir()
    _write_run(out, tmp_path / 'data')
    assert mod.main([str(out)]) == 0
    s = json.loads((out / 'summary.json').read_text())
    p = s['parity']
    assert p['train_images'] == 8
    assert p['adapter']['steady_images_per_s'] == pytest.approx(8 * 2 / 8.0)
    assert p['ultralytics']['steady_images_per_s'] == pytest.approx(8 * 2 / 4.0)
    assert p['ratio_steady'] == pytest.approx(0.5)
    assert p['ratio_all_epochs'] == pytest.approx(0.5)
    assert p['first_epoch_ratio_adapter_over_ultralytics'] == pytest.approx(2.0)
    assert p['goal_met_steady_ge_1'] is False
    assert s['infer']['spinexr_vs_ultralytics'] == 0.86
    assert [r['status'] for r in s['steps']] == ['ok', 'timeout']
    md = (out / 'summary.md').read_text()
    assert '0.50x' in md and 'NVIDIA H200' in md and '| parity | timeout | 124 |' in md


def test_summary_without_results_and_without_data_root(tmp_path):
    mod = _summary_module()
    assert mod.main([str(tmp_path)]) == 0  # every step failed: nothing but the summary
    s = json.loads((tmp_path / 'summary.json').read_text())
    assert s['parity'] is None and s['infer'] is None
    assert 'no result' in (tmp_path / 'summary.md').read_text()
    # no train.json to read: images per epoch come from images_per_s x time / epochs
    side = dict(epoch_s=[3.0, 1.0, 1.0], images_per_s=10 * 3 / 5.0)
    assert mod.side_rates(side, None)['steady_images_per_s'] == pytest.approx(10.0)
    assert mod.side_rates(dict(epoch_s=[3.0], images_per_s=1.0), 3)['steady_images_per_s'] is None


def test_summary_names_bad_steps_row(tmp_path):
    mod = _summary_module()
    (tmp_path / 'steps.tsv').write_text('setup\tok\t0\t12\t90\nbroken row\n')
    with pytest.raises(ValueError, match=r'steps.tsv: line 2 has 1 tab-separated cells'):
        mod.summarise(tmp_path)
