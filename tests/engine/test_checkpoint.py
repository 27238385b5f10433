"""Checkpoints under torch >= 2.6: mmengine's own files load with weights_only kept on."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from spinexr.engine.checkpoint import ALLOWED_GLOBALS, load_checkpoint, load_checkpoint_dict
from _tools import run_tool
from spinexr.testing.runs import write_det_config


class _Payload:
    """An arbitrary object; unpickling it would run ``__reduce__``'s callable."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_allow_list_is_explicit_and_small():
    assert HistoryBuffer in ALLOWED_GLOBALS
    assert np.ndarray in ALLOWED_GLOBALS
    # Only numpy and mmengine types: nothing that can call into arbitrary code.
    objs = [g[0] if isinstance(g, tuple) else g for g in ALLOWED_GLOBALS]
    modules = {getattr(g, '__module__', '') for g in objs}
    assert all(m.startswith(('numpy', 'mmengine', 'spinexr')) for m in modules), modules
    # builtins.getattr is mapped to a restricted stand-in, never the real one
    assert getattr not in objs


def test_getattr_stand_in_refuses_other_lookups(tmp_path):
    class _GetattrPayload:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=dict(x=_GetattrPayload())), path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_dict(str(path))


def test_numpy_and_history_buffer_roundtrip(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.25))
    ckpt = dict(meta=dict(epoch=1, lr=np.float64(0.1), arr=np.arange(3, dtype=np.int32)),
                message_hub=dict(log_scalars={'loss': buf}), state_dict={'w': torch.ones(2)})
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch's default (weights_only=True) refuses numpy scalars
    loaded = load_checkpoint_dict(str(path))
    assert loaded['meta']['lr'] == 0.1
    assert loaded['meta']['arr'].tolist() == [0, 1, 2]
    assert loaded['message_hub']['log_scalars']['loss'].current() == 0.25


def test_arbitrary_pickled_object_is_refused(tmp_path):
    marker = tmp_path / 'was_executed'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta=dict(x=_Payload(str(marker)))), path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_dict(str(path))
    assert not marker.exists()
    model = torch.nn.Linear(1, 1)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(model, str(path))
    assert not marker.exists()


@pytest.mark.slow
def test_train_resume_then_load_from(tiny_coco, tmp_path):
    """save -> --resume -> load_from (tools/test.py and train load_from), all through the tools."""
    work = tmp_path / 'work'
    cfg = write_det_config(tmp_path / 'cfg.py', tiny_coco, iters=2, ckpt_interval=1, size=96)
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work)])
    assert (work / 'iter_2.pth').is_file()
    raw = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert any(isinstance(v, HistoryBuffer) for v in raw['message_hub']['log_scalars'].values())

    proc = run_tool(['tools/train.py', str(cfg), '--work-dir', str(work), '--resume',
                     '--cfg-options', 'train_cfg.max_iters=3'])
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower(), log[-3000:]
    ckpt3 = load_checkpoint_dict(str(work / 'iter_3.pth'))
    assert ckpt3['meta']['iter'] == 3

    # --resume with an explicit checkpoint path
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'work_b'), '--resume',
              str(work / 'iter_2.pth'), '--cfg-options', 'train_cfg.max_iters=3'])
    assert (tmp_path / 'work_b' / 'iter_3.pth').is_file()

    # load_from through tools/test.py, and as a training initialisation
    out = tmp_path / 'preds.pkl'
    run_tool(['tools/test.py', str(cfg), str(work / 'iter_3.pth'), '--work-dir',
              str(tmp_path / 'eval'), '--out', str(out)])
    assert out.is_file() and out.stat().st_size > 0
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'work_c'),
              '--cfg-options', f'load_from={work / "iter_3.pth"}', 'train_cfg.max_iters=1'])
    assert (tmp_path / 'work_c' / 'iter_1.pth').is_file()


def test_missing_resume_checkpoint_is_a_clear_error(tiny_coco, tmp_path):
    cfg = write_det_config(tmp_path / 'cfg.py', tiny_coco)
    with pytest.raises(AssertionError, match='--resume checkpoint not found'):
        run_tool(['tools/train.py', str(cfg), '--resume', str(tmp_path / 'nope.pth')])


# --------------------------------------------------------------------------- Ultralytics .pt
@pytest.fixture(scope='module')
def yolo_ckpt():
    """A real Ultralytics-format checkpoint dict of a YOLO11-n (as spinexr's exporter writes it),
    with the extras Ultralytics' trainer adds: numpy scalars, an ``IterableSimpleNamespace`` as
    ``model.args``, a path, an optimizer state."""
    from ultralytics.utils import IterableSimpleNamespace

    from spinexr.models.detectors import YOLO11Detector
    from spinexr.models.detectors.ultralytics_export import detector_to_ultralytics_ckpt
    torch.manual_seed(0)
    det = YOLO11Detector(model_yaml='yolo11n.yaml', num_classes=7)
    ckpt = detector_to_ultralytics_ckpt(det, half=True)
    ckpt['ema'].args = IterableSimpleNamespace(**ckpt['train_args'], save_dir=Path('runs/x'))
    ckpt['best_fitness'] = np.float64(0.25)
    ckpt['optimizer'] = torch.optim.SGD(det.parameters(), lr=0.01, momentum=0.9).state_dict()
    return ckpt


def test_ultralytics_pt_loads_without_running_code(yolo_ckpt, tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    from spinexr.engine.checkpoint import load_ultralytics_checkpoint
    path = tmp_path / 'yolo11n.pt'
    torch.save(yolo_ckpt, path)
    loaded = load_ultralytics_checkpoint(str(path))
    assert type(loaded['ema']) is DetectionModel
    ref = yolo_ckpt['ema'].state_dict()
    got = loaded['ema'].state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    assert loaded['best_fitness'] == 0.25 and loaded['ema'].args.save_dir == Path('runs/x')


def test_crafted_ultralytics_pt_needs_trust_checkpoint(yolo_ckpt, tmp_path):
    """A file that names ultralytics classes plus a payload: refused, nothing runs; with the
    opt-in it is unpickled in full (and the payload runs, which is what trusting means)."""
    from spinexr.engine.checkpoint import is_ultralytics_checkpoint, load_ultralytics_checkpoint
    marker = tmp_path / 'was_executed'
    path = tmp_path / 'crafted.pt'
    torch.save({**yolo_ckpt, 'train_results': _Payload(str(marker))}, path)
    assert is_ultralytics_checkpoint(str(path))
    with pytest.raises(pickle.UnpicklingError, match='--trust-checkpoint'):
        load_ultralytics_checkpoint(str(path))
    assert not marker.exists()
    loaded = load_ultralytics_checkpoint(str(path), trust_checkpoint=True)
    assert marker.exists()
    assert torch.equal(loaded['ema'].state_dict()['model.0.conv.weight'],
                       yolo_ckpt['ema'].state_dict()['model.0.conv.weight'])


def test_allowed_module_classes_are_restored_never_constructed(tmp_path):
    """The allow-listed ultralytics/torch module classes may not be called from a pickle: their
    constructors can read files (a model YAML) or build anything."""
    from ultralytics.nn.tasks import DetectionModel

    from spinexr.engine.checkpoint import load_ultralytics_checkpoint

    class _Construct:
        def __reduce__(self):
            return (DetectionModel, ('yolo11n.yaml', ))

    path = tmp_path / 'construct.pt'
    torch.save({'ema': _Construct()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refusing to call'):
        load_ultralytics_checkpoint(str(path))
