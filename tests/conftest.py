"""Shared fixtures: tiny generated datasets; ``tests/`` on ``sys.path`` for ``_tools``."""
import sys
from pathlib import Path

import pytest

from spinexr.testing import make_tiny_coco

# checkout-only helpers (REPO, run_tool) are imported as ``_tools`` by the tests; with
# --import-mode=importlib pytest puts no test folder on sys.path itself
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> Path:
    """A tiny converted-layout dataset: 8 train and 4 test images of 96x128."""
    root = tmp_path_factory.mktemp('tiny_coco')
    make_tiny_coco(str(root), split='train', num_images=8, seed=0)
    make_tiny_coco(str(root), split='test', num_images=4, seed=1)
    return root


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """Forget the mmengine default scopes a test created (a Runner or ``init_default_scope``
    sets one process-wide), so that the next test builds in the scope it asks for."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name, None)
