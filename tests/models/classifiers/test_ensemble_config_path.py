"""Ensemble members name shipped configs, found through the installed package (config_path)."""
import shutil

import pytest

import spinexr.models  # noqa: F401  (registration)
import spinexr.utils.paths as paths
from spinexr.models.classifiers.ensemble import build_member


def test_member_config_found_in_the_installed_package(tmp_path, monkeypatch):
    """A member named ``configs/x/y.py`` resolves inside the package's configs, from any folder
    and wherever the package is installed (not relative to a checkout)."""
    shipped = tmp_path / 'site' / 'configs'
    shutil.copytree(paths.config_dir(), shipped)
    shutil.copy(shipped / 'classifiers' / 'resnet50_60e_vindr-384.py',
                shipped / 'classifiers' / 'only_in_the_package.py')
    monkeypatch.setattr(paths, 'config_dir', lambda: shipped)
    monkeypatch.chdir(tmp_path)
    model = build_member(dict(config='configs/classifiers/only_in_the_package.py'))
    assert type(model).__name__ == 'ImageClassifier'
    # a user's own file wins; a name that is neither is reported with the name as given
    (tmp_path / 'configs' / 'classifiers').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='configs/classifiers/missing.py'):
        build_member(dict(config='configs/classifiers/missing.py'))
