"""scripts/check_wheel.sh: a regular (not editable) install carries every shipped config.

The script builds a wheel from a copy of the source tree, pip-installs it into a fresh venv and, from
a temp folder, imports that copy and loads every shipped config by name. Here it runs in its quick
mode (no model builds, no model table) on this checkout, and on copies whose ``setup.py`` ships
no configs or only part of them (as before the configs were package data): those must fail.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'scripts' / 'check_wheel.sh'
PACKAGE_DATA = "package_data={'spinexr': ['.mim/configs/**/*.py']},"

pytestmark = pytest.mark.slow


def _check_wheel(source: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPINEXR_PYTHON=sys.executable, SPINEXR_WHEEL_QUICK='1')
    env.pop('PYTHONPATH', None)  # the script sets its own: the installed copy only
    return subprocess.run(['bash', str(SCRIPT), str(source)], env=env, capture_output=True,
                          text=True, timeout=900)


def _source_copy(dst: Path, package_data: str) -> Path:
    """Copy the files git tracks (links kept as links), with another ``package_data`` line."""
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, files):
        src = REPO / name
        if not (src.exists() or src.is_symlink()):
            continue
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst / name)
        else:
            shutil.copy2(src, dst / name)
    setup = dst / 'setup.py'
    text = setup.read_text()
    assert PACKAGE_DATA in text
    setup.write_text(text.replace(PACKAGE_DATA, package_data))
    return dst


def test_wheel_holds_every_shipped_config():
    run = _check_wheel(REPO)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert '[wheel] PASSED' in out
    assert 'site-packages/spinexr;' in out and 'configs in' in out  # the installed copy was imported


@pytest.mark.parametrize('package_data,message', [
    ('', '.mim/configs: missing or a link'),  # as before the configs were package data
    ("package_data={'spinexr': ['.mim/configs/*/*.py']},", 'configs missing from the wheel'),
])
def test_wheel_check_fails_when_configs_are_missing(tmp_path, package_data, message):
    run = _check_wheel(_source_copy(tmp_path / 'src', package_data))
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert '[wheel] FAILED' in out and message in out, out[-3000:]
