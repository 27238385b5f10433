"""One table of run profiles and one size rescaler serve the comparison and the ablation."""
import ast
from pathlib import Path

from mmengine.config import Config

import spinexr
from spinexr.experiments import ablation, comparison, detector_configs, profiles
from spinexr.utils.paths import config_path


def test_both_experiments_read_the_one_table():
    assert set(comparison.PROFILES) | set(ablation.PROFILES) == set(profiles.PROFILES)
    for table in (comparison.PROFILES, ablation.PROFILES):
        for name, entry in table.items():
            assert entry is profiles.PROFILES[name]  # the table's own entry, not a copy
    assert comparison.PROFILES['full'] is ablation.PROFILES['full']


def test_no_other_profile_table_or_rescaler_in_the_package():
    """``PROFILES = {...}`` is written once, and no module defines its own size rescaler."""
    tables, rescalers = [], []
    for path in Path(spinexr.__file__).resolve().parent.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if (isinstance(node, (ast.Assign, ast.AnnAssign))
                    and isinstance(node.value, (ast.Dict, ast.Call))
                    and any(isinstance(t, ast.Name) and t.id == 'PROFILES'
                            for t in (node.targets if isinstance(node, ast.Assign)
                                      else [node.target]))
                    and not (isinstance(node.value, ast.Call)
                             and getattr(node.value.func, 'id', '') == 'profiles_for')):
                tables.append(path.name)
            if isinstance(node, ast.FunctionDef) and node.name in ('_rescale',
                                                                   'scale_pipeline_sizes'):
                rescalers.append(path.name)
    assert tables == ['profiles.py'] and rescalers == ['profiles.py']
    assert (ablation.scale_pipeline_sizes is detector_configs.scale_pipeline_sizes
            is profiles.scale_pipeline_sizes)


def test_the_ablation_rescales_with_the_comparison_rescaler():
    """The ablation's cpu profile gives the pipeline that scale_pipeline_sizes gives."""
    config = config_path(ablation.DEFAULT_CONFIGS[3])
    raw = Config.fromfile(config)
    size = profiles.PROFILES['cpu']['img_size']
    expected = profiles.scale_pipeline_sizes(raw.to_dict()['train_dataloader']['dataset'][
        'pipeline'], size / raw.img_scale[0])
    cfg = ablation.prepare_config(Config.fromfile(config), seed=0, data_root='/d/',
                                  profile='cpu')
    got = cfg.to_dict()['train_dataloader']['dataset']['pipeline']
    strip = ('data_root', 'ann_file')  # BoxCopyPaste's paths follow the data root
    assert [{k: v for k, v in t.items() if k not in strip} for t in got] == [
        {k: v for k, v in t.items() if k not in strip} for t in expected]
    assert cfg.img_scale == (size, size)


def test_profile_lookup():
    prof = profiles.get_profile('cpu-demo', 'comparison', overrides={'iters': 7})
    assert prof['iters'] == 7 and profiles.PROFILES['cpu-demo']['iters'] is None
    for experiment, names in profiles.EXPERIMENT_PROFILES.items():
        assert list(profiles.profiles_for(experiment)) == list(names)
    try:
        profiles.get_profile('cpu', 'comparison')
    except KeyError as err:
        assert 'unknown profile' in str(err)
    else:
        raise AssertionError('cpu is an ablation profile')
