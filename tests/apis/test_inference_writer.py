"""The writer thread of tools/infer.py: errors surface, nothing handed over is lost; and the
detector prepares itself for inference (no poking at ``model.yolo`` by the API)."""
import json

import cv2
import numpy as np
import pytest
import torch

from spinexr.apis.inference import BatchInferencer, build_detector, run_inference
from spinexr.apis.inference_writer import ResultWriter, overlay_stems
from _tools import REPO


def _config(tmp_path):
    cfg = tmp_path / 'yolo11n_tiny.py'
    cfg.write_text(
        f"_base_ = '{REPO}/configs/yolo11/yolo11n_35e_vindr-640.py'\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=True),\n"
        "    dict(type='PackDetInputs')]))\n")
    return str(cfg)


def _pngs(tmp_path, n=4):
    rng = np.random.default_rng(1)
    files = []
    for i in range(n):
        files.append(str(tmp_path / f'im{i}.png'))
        cv2.imwrite(files[-1], rng.integers(0, 255, size=(60, 48), dtype=np.uint8))
    return files


def test_writer_error_surfaces_naming_the_file(tmp_path):
    """An overlay that cannot be written stops the run with an error naming it (not lost in a
    thread)."""
    cfg = _config(tmp_path)
    files = _pngs(tmp_path)
    out = tmp_path / 'out'
    (out / 'overlays' / 'im2.png').mkdir(parents=True)  # a folder where the PNG must go
    detector = build_detector(cfg, None)
    with pytest.raises(RuntimeError, match='writing inference outputs failed') as info:
        run_inference(files, cfg, None, out_dir=str(out), batch_size=2, workers=0,
                      progress=False, detector=detector)
    assert 'im2.png' in str(info.value.__cause__)


def test_loop_error_keeps_what_was_done(tmp_path, monkeypatch):
    """An error in the device loop (here: the second batch) propagates after the writer has
    finished the first batch; findings.json holds it, marked incomplete."""
    cfg = _config(tmp_path)
    files = _pngs(tmp_path)
    out = tmp_path / 'out'
    detector = build_detector(cfg, None)
    calls = []
    original = BatchInferencer.run_batch

    def failing(self, batch):
        calls.append(len(batch.items))
        if len(calls) == 2:
            raise MemoryError('device out of memory (injected)')
        return original(self, batch)

    monkeypatch.setattr(BatchInferencer, 'run_batch', failing)
    with pytest.raises(MemoryError, match='injected'):
        run_inference(files, cfg, None, out_dir=str(out), batch_size=2, workers=0,
                      progress=False, detector=detector, score_thr=0.0)
    payload = json.loads((out / 'findings.json').read_text())
    assert [r['image_id'] for r in payload['images']] == ['im0', 'im1']
    assert 'stopped after 2 of 4 images: MemoryError' in payload['meta']['incomplete']
    assert sorted(p.name for p in (out / 'overlays').iterdir()) == ['im0.png', 'im1.png']


def test_writer_queue_is_bounded_and_ordered():
    """Records come back in input order whatever the batch order; put after close refuses."""
    writer = ResultWriter(['a'], max_batches=1)
    det = dict(bboxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
               labels=np.zeros(0, np.int64))
    for idx in ([3, 2], [1, 0]):
        writer.put([dict(index=i, path=f'/x/f{i}.png', orig_shape=(4, 4), size=(4, 4))
                    for i in idx], [det, det])
    assert [r['image_id'] for r in writer.close()] == ['f0', 'f1', 'f2', 'f3']
    with pytest.raises(RuntimeError, match='after close'):
        writer.put([], [])
    assert overlay_stems(['/a/x.png', '/b/x.png', '/c/x.dicom', '/d/y.png']) == \
        ['x', 'x_1', 'x_2', 'y']


@pytest.mark.parametrize('half', [False, True])
def test_detector_prepares_itself_for_inference(tmp_path, half):
    """build_detector asks YOLO11Detector.prepare_for_inference: Conv+BN fused, channels-last
    weights, half on request; it leaves no private flags on the model."""
    cfg = _config(tmp_path)
    model, _, _ = build_detector(cfg, None, channels_last=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model.channels_last is True
    conv = next(m for m in model.yolo.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not [k for k in vars(model) if k.startswith('_spinexr')]
    fresh, _, _ = build_detector(cfg, None, fuse=False)
    fresh.prepare_for_inference(half=half, fuse=False, channels_last=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fresh.modules())
    assert {p.dtype for p in fresh.parameters()} == {torch.float16 if half else torch.float32}
    assert fresh.channels_last is False and not fresh.training


def test_prefetch_thread_order_errors_and_early_stop():
    """workers=0 decodes in a helper thread: items in order, the iterable's error raised in the
    consumer, and a consumer that stops early ends the thread."""
    import threading

    from spinexr.apis.inference_batch import prefetch
    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))

    def broken():
        yield 1
        raise ValueError('collate failed for /x/a.png')

    gen = prefetch(broken())
    assert next(gen) == 1
    with pytest.raises(ValueError, match='a.png'):
        next(gen)
    gen = prefetch(iter(range(100)), depth=1)
    assert next(gen) == 0
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == 'spinexr-infer-decode']
