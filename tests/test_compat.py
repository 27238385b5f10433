"""spinexr imports and builds mmpretrain models beside whatever transformers is installed.

In the verified stack transformers is absent and these tests check that nothing changes there;
``scripts/compat_check.sh`` runs them again beside the real transformers 5 from PyPI.
"""
import json
import subprocess
import sys

import pytest

from spinexr._compat import installed_version, multimodal_breaks

TRANSFORMERS = installed_version('transformers')
NEEDS_BREAKING_TRANSFORMERS = pytest.mark.skipif(
    not multimodal_breaks(TRANSFORMERS),
    reason=f'needs transformers >= 4.52 (installed: {TRANSFORMERS}); scripts/compat_check.sh runs it')

# A fresh process, as `python tools/train.py <classification config>` is: spinexr first, then an
# mmpretrain classifier built through mmpretrain's registry (which imports mmpretrain.models).
_BUILD = r'''
import json
import spinexr  # noqa: F401
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.utils import dependency
with DefaultScope.overwrite_default_scope('mmpretrain'):
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='ResNet', depth=18),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='BinaryClsHead', in_channels=512)))
own = all(dependency.satisfy_requirement(d) for d in ('pycocotools', 'transformers>=4.28.0'))
print(json.dumps(dict(model=type(model).__name__, with_multimodal=dependency.WITH_MULTIMODAL,
                      mmpretrain_own_decision=own)))
'''


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600)


# Found by trying releases beside mmpretrain 1.2.0: 4.51.3 imports, 4.52.1 to 5.24.0 fail.
@pytest.mark.parametrize('version,breaks', [
    (None, False), ('4.28.0', False), ('4.51.3', False), ('4.52.0rc1', True), ('4.52.1', True),
    ('4.57.6', True), ('5.0.0', True), ('5.17.0', True), ('6', True), ('not-a-version', False)])
def test_multimodal_breaks_from_transformers_4_52(version, breaks):
    assert multimodal_breaks(version) is breaks


def test_import_spinexr_then_build_an_mmpretrain_classifier():
    proc = _run(_BUILD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res['model'] == 'ImageClassifier'
    if multimodal_breaks(TRANSFORMERS):
        assert res['with_multimodal'] is False  # skipped: they cannot import beside it
    else:  # mmpretrain's own decision stands in the verified stack and beside transformers < 4.52
        assert res['with_multimodal'] is res['mmpretrain_own_decision']


def test_multimodal_placeholder_says_what_is_missing():
    """A multimodal model asked for beside transformers >= 4.52 raises ImportError when built."""
    code = _BUILD.split('with DefaultScope')[0] + r'''
import mmpretrain.models  # noqa: F401
error = None
if not dependency.WITH_MULTIMODAL:  # otherwise the real BlipCaption is registered
    try:
        MODELS.build(dict(type='mmpretrain.BlipCaption'))
    except ImportError as err:
        error = str(err)
print(json.dumps(dict(error=error, with_multimodal=dependency.WITH_MULTIMODAL)))
'''
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if not res['with_multimodal']:
        # mmpretrain 1.2's placeholder names the last registered model whichever was asked for
        assert 'requires extra multi-modal dependencies' in res['error']


@NEEDS_BREAKING_TRANSFORMERS
def test_guard_still_needed_without_spinexr():
    """Canary: mmpretrain 1.2 alone still fails beside this transformers. When this test fails, a
    transformers release made mmpretrain's multimodal models importable again and
    ``spinexr._compat.FIRST_BREAKING_TRANSFORMERS`` should move up."""
    proc = _run('import mmpretrain.models')
    assert proc.returncode != 0, 'mmpretrain.models imports beside this transformers: drop the guard?'
    # 4.52-4.55: OFA's ImportError (GenerationMixin); 4.56 on: BLIP's TypeError (spinexr/_compat.py)
    assert 'mmpretrain/models/multimodal' in proc.stderr, proc.stderr[-3000:]
