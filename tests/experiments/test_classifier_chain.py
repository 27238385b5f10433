"""The classifier chain of the main job: its options and checkpoint choice (the tools it calls
are tested end to end in tests/tools/test_classification_tools.py)."""
import argparse

import pytest
from mmengine.config import Config, DictAction

from spinexr.experiments.classifier_chain import (ENSEMBLES, MEMBERS, _loader_options,
                                                  _member_checkpoint, _schedule_options)
from spinexr.testing import make_tiny_coco
from _tools import REPO


def _member_cfg(options, member: str = 'resnet50'):
    """A member config with ``--cfg-options`` parsed and merged as the tools do."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(str(REPO / dict(MEMBERS)[member]))
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def test_loader_options_reach_the_member_pipelines():
    for member, _ in MEMBERS:
        cfg = _member_cfg(_loader_options('/data/x/', 64, 8), member=member)
        for split in ('train', 'val', 'test'):
            loader = cfg[f'{split}_dataloader']
            assert loader.dataset.data_root == '/data/x/' and loader.batch_size == 8
            resize = loader.dataset.pipeline[1]
            assert resize.type == 'Resize' and tuple(resize.scale) == (64, 64)


def test_ensembles_match_their_configs():
    """Each ensemble's member list and average are those of its config, and every member of
    an ensemble has a config in MEMBERS (the chain trains it once)."""
    for entry in ENSEMBLES:
        ens = Config.fromfile(str(REPO / entry.config))
        assert [m.name for m in ens.model.members] == list(entry.members)
        assert ens.model.get('average', 'prob') == entry.average
        configs = dict(MEMBERS)
        assert [m.config for m in ens.model.members] == [configs[n] for n in entry.members]


def test_member_checkpoint_prefers_best(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert _member_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    best = tmp_path / 'best_binary_auroc_epoch_1.pth'
    best.write_bytes(b'')
    assert _member_checkpoint(str(tmp_path)) == str(best)
    with pytest.raises(FileNotFoundError):
        _member_checkpoint(str(tmp_path / 'missing'))


def test_schedule_options_fix_the_epochs_and_the_seed():
    cfg = _member_cfg(_schedule_options(3))
    assert cfg.train_cfg.max_epochs == 3 and cfg.param_scheduler[0].T_max == 3
    assert cfg.randomness.seed == 0


@pytest.mark.slow
def test_seeded_member_runs_are_identical(tmp_path):
    """With the chain's options two trainings of a member give the same weights (without the
    seed mmengine draws a new one per run and the AUROCs of two main jobs differed)."""
    import torch
    from mmengine.registry import RUNNERS
    root = str(tmp_path / 'data') + '/'
    make_tiny_coco(root, split='train', num_images=12, img_size=(80, 48), seed=5,
                   normal_share=0.45)
    make_tiny_coco(root, split='test', num_images=4, img_size=(80, 48), seed=6, normal_share=0.45)
    states = []
    for run in ('a', 'b'):
        cfg = _member_cfg([*_loader_options(root, 32, 4), *_schedule_options(1)])
        cfg.model.backbone.update(depth=18, base_channels=16)  # the recipe, on a small ResNet
        cfg.model.head.in_channels = 128
        cfg.work_dir = str(tmp_path / run)
        runner = RUNNERS.build(cfg)
        runner.train()
        states.append({k: v.clone() for k, v in runner.model.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    for key, value in states[0].items():
        torch.testing.assert_close(value, states[1][key], rtol=0, atol=0, msg=key)
