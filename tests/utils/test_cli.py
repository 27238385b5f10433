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


@pytest.mark.parametrize('config,base', [
    ('configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py', 2),  # enable=False in the config
    ('configs/classifiers/resnet50_60e_vindr-384.py', 32),  # no enable key in the config
])
def test_auto_scale_lr_flag_enables_the_configs_scaling(config, base):
    from spinexr.cli.train import parse_args
    from spinexr.utils.cli import apply_train_args
    for flag, enabled in (([], False), (['--auto-scale-lr'], True)):
        args = parse_args([config, *flag])
        assert args.auto_scale_lr is enabled
        cfg = apply_train_args(load_config(args), auto_scale_lr=args.auto_scale_lr)
        assert cfg.auto_scale_lr.get('enable', False) is enabled
        assert cfg.auto_scale_lr.base_batch_size == base


def test_auto_scale_lr_refused_without_a_base_batch_size():
    from mmengine.config import Config

    from spinexr.utils.cli import apply_train_args
    cfg = Config.fromfile('configs/yolo11/yolo11n_35e_vindr-640.py')
    assert 'auto_scale_lr' not in cfg
    assert 'auto_scale_lr' not in apply_train_args(cfg)  # without the flag nothing changes
    with pytest.raises(ValueError, match='--auto-scale-lr needs auto_scale_lr'):
        apply_train_args(cfg, auto_scale_lr=True)


def test_runner_scales_the_lr_once_enabled(tmp_path):
    """What the flag switches on: mmengine's Runner multiplies the lr by batch / base batch."""
    import torch
    from mmengine.config import Config

    from spinexr.engine import SpinexrRunner
    from spinexr.utils.cli import apply_train_args
    lrs = []
    for flag in (False, True):
        cfg = Config(dict(auto_scale_lr=dict(enable=False, base_batch_size=2)))
        apply_train_args(cfg, auto_scale_lr=flag)
        runner = SpinexrRunner(
            model=torch.nn.Linear(2, 1), work_dir=str(tmp_path), default_scope='mmdet',
            experiment_name=f'auto_scale_lr_{flag}',
            train_dataloader=dict(dataset=[torch.zeros(2)] * 8, batch_size=4,
                                  sampler=dict(type='DefaultSampler', shuffle=False)),
            train_cfg=dict(by_epoch=False, max_iters=1),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            auto_scale_lr=cfg.auto_scale_lr)
        wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        runner.scale_lr(wrapper, runner.auto_scale_lr)
        lrs.append(wrapper.param_groups[0]['lr'])
    assert lrs == [pytest.approx(0.1), pytest.approx(0.2)]  # batch 4 x 1 process / base 2


def test_a_shipped_config_name_loads_from_any_folder(tmp_path, monkeypatch):
    """tools/train.py / test.py accept a shipped config name, found through the package."""
    monkeypatch.chdir(tmp_path)  # no configs/ here
    args = argparse.Namespace(config='configs/yolo11/yolo11n_35e_vindr-640.py', cfg_options=None,
                              launcher='none', work_dir=None, local_rank=0)
    cfg = load_config(args)
    assert cfg.model.type == 'YOLO11Detector'
    args.config = 'configs/yolo11/no_such.py'
    with pytest.raises(FileNotFoundError, match='config file not found'):
        load_config(args)
