"""The process-group teardown shared by tools/train.py and tools/test.py."""
import pytest
import torch.distributed as torch_dist

from spinexr.utils.cli import closing_process_group


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
