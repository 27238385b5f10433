"""benchmarks/profile_yolo_step.py: the counting rules on a hand-made step, and a tiny end-to-end
run of both trainers (adapter Runner and Ultralytics' DetectionTrainer) writing its JSON."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

BENCH = Path(__file__).resolve().parents[2] / 'benchmarks'


def _phases():
    spec = importlib.util.spec_from_file_location('profile_yolo_phases',
                                                  BENCH / 'profile_yolo_phases.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ul_log(x):
    return float(x.sum())  # item -> _local_scalar_dense: one would-be sync


def _ul_preprocess(x):
    return torch.nonzero(x > 0), torch.unique(x)  # two data-dependent sizes


def tiny_step(x):
    y = _ul_preprocess(x)
    return _ul_log(x), y


def test_counting_rules_on_a_hand_made_step():
    phases = _phases()
    x = torch.arange(-3.0, 3.0)
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        tiny_step(x)
    r = phases.analyse_events(prof.events(), 'tiny_step')
    assert r['syncs'] == 3  # item (not also its _local_scalar_dense), nonzero, unique
    assert r['phases']['preprocess']['syncs'] == 2
    assert r['phases']['hooks+log']['syncs'] == 1
    assert r['aten_ops'] >= r['top_level_ops'] >= 4
    assert sum(p['ms'] for p in r['phases'].values()) == pytest.approx(r['profiled_ms'])
    assert any(site.startswith('aten::item @') and '_ul_log' in site for site in r['sync_sites'])
    with pytest.raises(RuntimeError, match='no profiler event'):
        phases.analyse_events(prof.events(), 'not_called')


@pytest.mark.slow
def test_profile_runs_both_trainers(tmp_path):
    out = tmp_path / 'profile.json'
    cmd = [sys.executable, str(BENCH / 'profile_yolo_step.py'), '--iters', '2', '--warmup', '1',
           '--samples', '8', '--pipeline-warmup', '4', '--imgsz', '160', '--train-images', '24',
           '--work-dir', str(tmp_path / 'work'), '--out', str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'would-be syncs' in res.stdout
    r = json.loads(out.read_text())
    for side in ('adapter', 'ultralytics'):
        step = r['step'][side]
        for key in ('wall_ms_median', 'profiled_ms', 'aten_ops', 'top_level_ops'):
            assert step[key] > 0, (side, key)
        assert step['phases']['forward']['ops'] > 0 and step['phases']['backward']['ms'] > 0
        assert len(step['top_ops']) == 12
        for stage in ('mosaic', 'no_mosaic'):
            pipe = r['pipeline'][stage][side]
            assert pipe['samples_per_s'] > 0 and pipe['transforms_ms']
    assert r['step']['ratio_wall'] > 0 and r['pipeline']['mosaic']['ratio'] > 0
