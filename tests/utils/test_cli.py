"""What tools/train.py and tools/test.py share: the process-group teardown, --trust-checkpoint."""
import argparse

import pytest
import torch.distributed as torch_dist

from spinexr.utils.cli import add_common_args, closing_process_group, load_config


@pytest.fixture
def gloo_group(tmp_path):
    """A one-process gloo group; destroyed afterwards if the test left it open."""
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}',
                                  rank=0, world_size=1)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_group_destroyed_after_success(gloo_group):
    with closing_process_group():
        assert torch_dist.is_initialized()
    assert not torch_dist.is_initialized()


def test_group_kept_and_error_raised_on_failure(gloo_group):
    with pytest.raises(RuntimeError, match='boom'):
        with closing_process_group():
            raise RuntimeError('boom')
    assert torch_dist.is_initialized()  # no barrier the other ranks would never reach


def test_nothing_to_close_without_group():
    with closing_process_group():
        pass
    assert not torch_dist.is_initialized()


@pytest.mark.parametrize('flag', [False, True])
def test_trust_checkpoint_flag_sets_both_config_keys(tmp_path, flag):
    """--trust-checkpoint is the one opt-in: load_from (runner) and model.pretrained (YOLO11)."""
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("model = dict(type='YOLO11Detector', pretrained='yolo11n.pt')\n"
                        "load_from = 'yolo11n.pt'\n")
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    args = parser.parse_args([str(cfg_file), '--work-dir', str(tmp_path / 'w')]
                             + (['--trust-checkpoint'] if flag else []))
    cfg = load_config(args)
    assert cfg.get('trust_checkpoint', False) is flag
    assert cfg.model.get('trust_checkpoint', False) is flag
