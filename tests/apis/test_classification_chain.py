"""The classifier chain of the main job: its options and checkpoint choice (the tools it calls
are tested end to end in tests/tools/test_classification_tools.py)."""
import argparse

import pytest
from mmengine.config import Config, DictAction

from spinexr.apis.classification_chain import (ENSEMBLE_CONFIG, MEMBERS, _loader_options,
                                               _member_checkpoint)
from spinexr.testing.runs import REPO


def test_loader_options_reach_the_member_pipelines():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', *_loader_options('/data/x/', 64, 8)])
    cfg = Config.fromfile(str(REPO / MEMBERS[0][1]))
    cfg.merge_from_dict(options.cfg_options)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        assert loader.dataset.data_root == '/data/x/' and loader.batch_size == 8
        resize = loader.dataset.pipeline[1]
        assert resize.type == 'Resize' and tuple(resize.scale) == (64, 64)
    ens = Config.fromfile(str(REPO / ENSEMBLE_CONFIG))
    assert [m.name for m in ens.model.members] == [n for n, _ in MEMBERS]


def test_member_checkpoint_prefers_best(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert _member_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    best = tmp_path / 'best_binary_auroc_epoch_1.pth'
    best.write_bytes(b'')
    assert _member_checkpoint(str(tmp_path)) == str(best)
    with pytest.raises(FileNotFoundError):
        _member_checkpoint(str(tmp_path / 'missing'))
