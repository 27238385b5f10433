"""What ``tools/train.py`` and ``tools/test.py`` do with their arguments, kept out of the scripts.

Both tools follow MMDetection's: load the config, merge ``--cfg-options``, decide the work dir,
switch AMP / resume / checkpoint, then build the runner named by ``runner_type`` (or mmengine's
default Runner) and call ``train()`` / ``test()``. The functions here work for detection (mmdet
scope) and classification (mmpretrain scope) configs alike.
"""
import argparse
import contextlib
import gc
import os
import os.path as osp
from typing import Iterator, Optional

import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from spinexr.utils.data_root import set_data_root
from spinexr.utils.paths import config_path

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by the train and test tools."""
    parser.add_argument('config', help='config file path, or a shipped config name')
    parser.add_argument('--work-dir', help='directory for logs, checkpoints and results')
    parser.add_argument(
        '--data-root', metavar='DIR',
        help="dataset root: becomes the config's data_root, which every '{data_root}' path "
        '(datasets, evaluators, transforms) follows when the runner is built; the same as '
        '--cfg-options data_root=DIR')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_dataloader.batch_size=4 model.bbox_head.num_classes=7 key="[a,b]"')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='unpickle an Ultralytics .pt given as load_from / model.pretrained in full with '
        "Ultralytics' loader, which runs any code the file holds: only for files you trust. "
        'Without it such a file is read with an allow-list and refused if it holds anything else')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply ``--cfg-options``, ``--launcher``, ``--work-dir`` and
    ``--data-root``.

    ``args.config`` is a file or a shipped config name (``configs/x/y.py``, ``x/y.py``,
    ``spinexr::x/y.py``: :func:`spinexr.utils.paths.config_path`), so the commands work from any
    folder after ``pip install .``. The work dir is, in order of priority: ``--work-dir``,
    ``work_dir`` in the config, ``./work_dirs/<config name>``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    try:
        config = config_path(args.config)
    except FileNotFoundError:
        raise FileNotFoundError(f'config file not found: {args.config} (neither a file nor a '
                                'shipped config name)') from None
    cfg = Config.fromfile(config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'trust_checkpoint', False):
        trust_checkpoints(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if getattr(args, 'data_root', None) is not None:  # after --cfg-options: --data-root wins
        set_data_root(cfg, args.data_root)  # resolved by SpinexrRunner.from_cfg
    return cfg


def trust_checkpoints(cfg: Config) -> Config:
    """Opt in to unpickling checkpoints in full, as ``--trust-checkpoint`` asks.

    Sets ``trust_checkpoint = True`` at the top level (read by ``SpinexrRunner`` for an
    Ultralytics ``.pt`` given as ``load_from``) and in a ``YOLO11Detector`` model config (for its
    ``pretrained`` file). spinexr/mmengine checkpoints never need it: they load with
    ``weights_only=True`` and an allow-list (:mod:`spinexr.engine.checkpoint`).

    Args:
        cfg (Config): The loaded config.

    Returns:
        Config: The same config, changed in place.
    """
    cfg.trust_checkpoint = True
    model = cfg.get('model')
    if isinstance(model, dict) and model.get('type') in _ULTRALYTICS_DETECTORS:
        model['trust_checkpoint'] = True
    return cfg


#: Detector types wrapping an Ultralytics network, whose ``pretrained`` file may be an Ultralytics
#: ``.pt`` (read with an allow-list unless ``trust_checkpoint``).
_ULTRALYTICS_DETECTORS = ('YOLO11Detector', 'mmdet.YOLO11Detector', 'RTDETRDetector',
                          'mmdet.RTDETRDetector')


#: The AMP variant of each optimizer wrapper ``--amp`` can switch (an AMP wrapper stays).
_AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'YOLOOptimWrapper': 'YOLOAmpOptimWrapper',
    'YOLOAmpOptimWrapper': 'YOLOAmpOptimWrapper',
}


def apply_train_args(cfg: Config, amp: bool = False, resume: Optional[str] = None,
                     auto_scale_lr: bool = False) -> Config:
    """Switch on AMP, resuming and lr scaling as ``tools/train.py --amp --resume [CKPT]
    --auto-scale-lr`` asks.

    Args:
        cfg (Config): The loaded config.
        amp (bool): Use ``AmpOptimWrapper`` (``YOLOAmpOptimWrapper`` for a ``YOLOOptimWrapper``)
            with dynamic loss scaling.
        resume (str, optional): ``'auto'`` resumes from the latest checkpoint of the work dir, a
            path resumes from that checkpoint, ``None`` does not resume.
        auto_scale_lr (bool): Set ``auto_scale_lr.enable = True``: mmengine's Runner then
            multiplies the lr by (batch size x number of processes) / ``auto_scale_lr.
            base_batch_size``, the config's value.

    Returns:
        Config: The same config, changed in place.

    Raises:
        ValueError: ``amp`` with an optimizer wrapper that has no AMP variant, or
            ``auto_scale_lr`` with a config that has no ``auto_scale_lr.base_batch_size``.
    """
    if auto_scale_lr:
        scaling = cfg.get('auto_scale_lr', None)
        if not isinstance(scaling, dict) or 'base_batch_size' not in scaling:
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N) in the config (the '
                'total batch size its lr was set for); '
                f'{getattr(cfg, "filename", None) or "this config"} has none')
        scaling['enable'] = True
    if amp:
        kind = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if kind not in _AMP_WRAPPERS:
            raise ValueError(f'--amp works with optim_wrapper types {sorted(_AMP_WRAPPERS)}, '
                             f'not {kind}')
        cfg.optim_wrapper.type = _AMP_WRAPPERS[kind]
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def apply_test_args(cfg: Config, checkpoint: str, out: Optional[str] = None,
                    show_dir: Optional[str] = None) -> Config:
    """Point the config at ``checkpoint`` and wire ``--out`` / ``--show-dir``.

    Args:
        cfg (Config): The loaded config.
        checkpoint (str): Checkpoint to evaluate.
        out (str, optional): Pickle file for the raw predictions (``.pkl``).
        show_dir (str, optional): Folder (under the run's log dir) for drawn predictions.

    Returns:
        Config: The same config, changed in place.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg.load_from = checkpoint
    cfg.resume = False
    if show_dir:
        hooks = cfg.setdefault('default_hooks', ConfigDict())
        if 'visualization' not in hooks:
            raise KeyError('--show-dir needs default_hooks.visualization in the config')
        hooks.visualization.draw = True
        hooks.visualization.enable = True
        hooks.visualization.test_out_dir = show_dir  # mmdet
        hooks.visualization.out_dir = show_dir  # mmpretrain
        if cfg.get('default_scope') == 'mmdet':
            hooks.visualization.pop('enable')
            hooks.visualization.pop('out_dir')
        else:
            hooks.visualization.pop('draw')
            hooks.visualization.pop('test_out_dir')
    if out is not None and not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out}')
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the runner named by ``cfg.runner_type``, or mmengine's default Runner."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def add_dump_metric(runner: Runner, cfg: Config, out: str) -> None:
    """Append a metric that dumps raw predictions to ``out`` (mmdet's format for detectors)."""
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    else:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))


@contextlib.contextmanager
def closing_process_group() -> Iterator[None]:
    """Close the distributed process group, if one was started, when the wrapped work succeeds.

    mmengine's Runner starts the process group (``--launcher pytorch``) but never destroys it, so
    the group (owned by the DDP wrapper of the runner's model) used to be freed during interpreter
    shutdown. With gloo on CPU that aborted the process in C++ (``terminate called without an
    active exception``, SIGABRT) in about 1 of 5 two-process runs under load, after training and
    checkpoints were complete. Here the ranks meet at a barrier, destroy the group and free its
    owners while Python is still running. Keep no reference to the runner past the ``with`` block.
    On an exception nothing is done, so the error is not hidden behind a barrier that the other
    ranks would never reach.
    """
    yield
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        # The group's C++ threads stop only when its last owner (the DDP wrapper of the runner's
        # model, kept alive by reference cycles) is freed; free it now, not at interpreter exit.
        gc.collect()
