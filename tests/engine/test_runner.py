"""SpinexrRunner: load_from accepts an Ultralytics .pt for YOLO11 (read with an allow-list, in
full only with trust_checkpoint), refuses to resume from one; each Runner of a process logs into
its own folder."""
import copy
import os
import pickle

import pytest
import torch

from spinexr.engine import SpinexrRunner
from spinexr.engine.checkpoint import is_ultralytics_checkpoint


def _runner(tmp_path, load_from, resume=False, cfg=None):
    return SpinexrRunner(
        model=dict(type='YOLO11Detector', model_yaml='yolo11n.yaml', num_classes=7,
                   data_preprocessor=dict(type='YOLODetDataPreprocessor')),
        work_dir=str(tmp_path / 'work'), load_from=str(load_from), resume=resume,
        default_scope='mmdet', cfg=cfg)


class _Payload:
    """Unpickling it runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_load_from_ultralytics_pt(tmp_path):
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    src = DetectionModel('yolo11n.yaml', nc=80, verbose=False)
    pt = tmp_path / 'yolo11n.pt'
    torch.save({'model': None, 'ema': copy.deepcopy(src).half(), 'train_args': {}}, pt)
    assert is_ultralytics_checkpoint(str(pt))

    runner = _runner(tmp_path, pt)
    runner.load_or_resume()
    got = runner.model.yolo.state_dict()['model.0.conv.weight']
    torch.testing.assert_close(got, src.half().float().state_dict()['model.0.conv.weight'])

    with pytest.raises(ValueError, match='use load_from'):
        _runner(tmp_path, pt, resume=True).load_or_resume()


def test_ultralytics_pt_reaches_the_ema_model(tmp_path):
    """The recipe's EMA hook swaps its averaged weights into the model for validation and
    testing: an Ultralytics .pt given as load_from must land in the EMA model too (it did not:
    tools/test.py then evaluated the EMA copy of the randomly initialised network)."""
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    src = DetectionModel('yolo11n.yaml', nc=7, verbose=False)
    pt = tmp_path / 'yolo11n.pt'
    torch.save({'model': None, 'ema': copy.deepcopy(src).half(), 'train_args': {}}, pt)
    runner = SpinexrRunner(
        model=dict(type='YOLO11Detector', model_yaml='yolo11n.yaml', num_classes=7,
                   data_preprocessor=dict(type='YOLODetDataPreprocessor')),
        work_dir=str(tmp_path / 'work'), load_from=str(pt), default_scope='mmdet',
        custom_hooks=[dict(type='YOLOEMAHook', ema_type='ExpMomentumEMA', momentum=0.0001,
                           gamma=2000, update_buffers=True, priority=49)])
    runner.call_hook('before_run')  # the EMA copy is made here, before loading (Runner.test)
    runner.load_or_resume()
    ema = next(h for h in runner.hooks if type(h).__name__ == 'YOLOEMAHook').ema_model
    expected = src.half().float().state_dict()['model.0.conv.weight']
    torch.testing.assert_close(ema.module.yolo.state_dict()['model.0.conv.weight'], expected)


def test_load_from_crafted_ultralytics_pt_needs_trust_checkpoint(tmp_path):
    """load_from of a file that names ultralytics classes and carries a payload: refused and
    nothing runs; with ``trust_checkpoint = True`` in the config it is unpickled in full."""
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    src = DetectionModel('yolo11n.yaml', nc=80, verbose=False)
    marker = tmp_path / 'was_executed'
    pt = tmp_path / 'crafted.pt'
    torch.save({'model': None, 'ema': copy.deepcopy(src).half(), 'train_args': {},
                'train_results': _Payload(str(marker))}, pt)
    with pytest.raises(pickle.UnpicklingError, match='--trust-checkpoint'):
        _runner(tmp_path, pt).load_or_resume()
    assert not marker.exists()

    runner = _runner(tmp_path, pt, cfg=dict(trust_checkpoint=True))
    runner.load_or_resume()
    assert marker.exists()
    got = runner.model.yolo.state_dict()['model.0.conv.weight']
    torch.testing.assert_close(got, src.half().float().state_dict()['model.0.conv.weight'])


def test_mmengine_checkpoint_is_not_taken_for_ultralytics(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {}}, path)
    assert not is_ultralytics_checkpoint(str(path))
    assert not is_ultralytics_checkpoint(str(tmp_path / 'missing.pth'))


def test_second_runner_in_a_process_logs_into_its_own_folder(tiny_coco, tmp_path):
    """mmdet's runtime names its visualizer 'visualizer'; mmengine would hand the second Runner
    the first one's instance, so its scalars and config went to the first run's log folder."""
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    from mmengine.visualization import Visualizer

    from spinexr.testing.runs import write_det_config
    cfg_file = write_det_config(tmp_path / 'tiny.py', tiny_coco, iters=1)
    # an earlier test of this process may already hold the name (its runner took it first)
    name_was_free = not Visualizer.check_instance_created('visualizer')
    runs = []
    for name in ('first', 'second'):
        cfg = Config.fromfile(str(cfg_file))
        assert cfg.visualizer.name == 'visualizer'
        cfg.work_dir = str(tmp_path / name)
        runner = RUNNERS.build(cfg)
        runner.train()
        runs.append(runner)
    first, second = runs
    assert first.visualizer is not second.visualizer
    for runner in runs:
        vis = tmp_path / runner.work_dir / runner.timestamp / 'vis_data'
        assert (vis / 'config.py').is_file() and (vis / 'scalars.json').is_file(), vis
    if name_was_free:
        assert first.visualizer.instance_name == 'visualizer'
    assert second.visualizer.instance_name != first.visualizer.instance_name



def test_accumulation_gain_follows_the_built_optim_wrapper(tmp_path):
    """tools/train.py --cfg-options ...: the YOLO11 loss undoes exactly the division of the
    wrapper the run uses; nothing in the config has to be kept equal to accumulative_counts."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from spinexr.cli.train import parse_args
    from spinexr.utils.cli import apply_train_args, load_config

    def config(*options):
        args = parse_args(['configs/yolo11/yolo11n_35e_vindr-640.py', '--work-dir',
                           str(tmp_path), *(['--cfg-options', *options] if options else [])])
        return apply_train_args(load_config(args))

    runner = SpinexrRunner.from_cfg(config())  # one model for every case (building is slow)
    model = runner.model
    assert runner.cfg.model.loss_gain == 1.0  # the config states no accumulation-dependent value
    assert model.accumulation_gain == 1.0  # nothing is derived before the wrapper exists
    cases = [
        ((), 4, 1.0),  # YOLOOptimWrapper sums the accumulated gradients itself
        (('optim_wrapper.accumulative_counts=8', ), 8, 1.0),
        (('optim_wrapper.type=OptimWrapper', ), 4, 4.0),  # mmengine's divides by the config's 4
        (('optim_wrapper.type=OptimWrapper', 'optim_wrapper.accumulative_counts=3'), 3, 3.0),
    ]
    for options, counts, expected in cases:
        model.accumulation_gain = 1.0
        # what Runner.train() does with the (merged) config's optim_wrapper
        wrapper = runner.build_optim_wrapper(config(*options).optim_wrapper)
        assert wrapper._accumulative_counts == counts, options
        assert model.accumulation_gain == expected, options

    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 10., 40., 50.]]),
                                       labels=torch.tensor([1]))
    inputs = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    model.train()
    gained = model.loss(inputs, [sample])  # accumulation_gain 3 from the last case
    model.accumulation_gain = 1.0
    plain = model.loss(inputs, [sample])
    for k in plain:
        torch.testing.assert_close(gained[k], plain[k] * 3)
