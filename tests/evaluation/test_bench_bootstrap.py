"""benchmarks/bench_bootstrap.py runs, and its naive reference agrees with the weighted bootstrap.

Only a tiny run: the speed itself is printed by the benchmark, never asserted.
"""
import importlib.util
import os.path as osp

import pytest

from spinexr.testing import make_tiny_coco

BENCH = osp.join(osp.dirname(__file__), '..', '..', 'benchmarks', 'bench_bootstrap.py')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_bootstrap', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_mode_naive_equals_weighted(bench, capsys):
    bench.bench_speed(num_images=40, n_resamples=20, n_naive=3, seed=0)
    out = capsys.readouterr().out
    assert 'max |naive - weighted| mAP on the timed resamples: 0.0e+00' in out
    assert 'resamples/s' in out and 'speed-up' in out


def test_widths_mode_on_a_converted_split(bench, capsys, tmp_path):
    ann = make_tiny_coco(str(tmp_path), split='test', num_images=12, seed=1)
    bench.bench_widths(ann, n_resamples=30, seed=0, study_effects=[0.0, 0.5])
    out = capsys.readouterr().out
    assert '12 images, 6 studies (6 with two or more views)' in out
    assert 'width ratio if views were copies: 1.41' in out
    assert out.count('\n| 0.') == 2
