"""Shipped configs are found through the package (spinexr/.mim/configs), not through a checkout."""
import os.path as osp

import pytest

from spinexr.utils.paths import config_dir, config_path

NAME = 'yolo11/yolo11n_35e_vindr-640.py'


@pytest.mark.parametrize('spelling', [NAME, 'configs/' + NAME, 'spinexr::' + NAME])
def test_shipped_config_spellings_resolve_to_one_file(spelling):
    path = config_path(spelling)
    assert osp.isfile(path)
    assert osp.samefile(path, config_dir() / NAME)


def test_an_existing_file_wins(tmp_path, monkeypatch):
    own = tmp_path / 'configs' / NAME
    own.parent.mkdir(parents=True)
    own.write_text("_base_ = []\n")
    monkeypatch.chdir(tmp_path)
    assert config_path('configs/' + NAME) == 'configs/' + NAME


def test_unknown_name_says_where_it_looked():
    with pytest.raises(FileNotFoundError, match='no_such.py.*no shipped config'):
        config_path('configs/no_such.py')


def test_package_path_of_mmengine_scope_matches():
    """mmengine's ``spinexr::`` scope reads ``<package>/.mim/configs`` like config_dir()."""
    import spinexr
    assert config_dir().parent.name == '.mim'
    assert config_dir().parent.parent.samefile(osp.dirname(spinexr.__file__))
