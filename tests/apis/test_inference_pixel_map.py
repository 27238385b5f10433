"""The detector's data preprocessor applied while the batch is written (``PixelMap``) gives the
network input the preprocessor itself gives, bit for bit, with the same metainfo."""
import cv2
import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample

from spinexr.apis.inference import ImageFileDataset, PreprocessSpec, collate_decoded
from spinexr.apis.inference_batch import preprocess_batch
from spinexr.apis.inference_engine import run_preprocessor
from spinexr.apis.inference_preprocess import PixelMap
from spinexr.models.data_preprocessors import YOLODetDataPreprocessor

_LOAD, _PACK = dict(type='LoadImageFromFile'), dict(type='PackDetInputs')
_PIPELINES = {
    'resize': [_LOAD, dict(type='Resize', scale=(64, 64), keep_ratio=True), _PACK],
    'resize+pad': [_LOAD, dict(type='Resize', scale=(64, 64), keep_ratio=True),
                   dict(type='Pad', size=(70, 70), pad_val=dict(img=(7, 7, 7))), _PACK],
    'no resize': [_LOAD, _PACK],
}
_PREPROCESSORS = {
    'yolo': lambda: YOLODetDataPreprocessor(),
    'mmdet normalise': lambda: DetDataPreprocessor(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
        pad_size_divisor=32),
    'mmdet plain': lambda: DetDataPreprocessor(pad_size_divisor=8, pad_value=3),
}


@pytest.fixture(scope='module')
def batch(tmp_path_factory):
    """Grey and colour files of three sizes in one batch."""
    tmp = tmp_path_factory.mktemp('pixels')
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w, c) in enumerate([(80, 64, 1), (64, 96, 3), (80, 64, 1), (50, 30, 3)]):
        paths.append(str(tmp / f'{i}.png'))
        cv2.imwrite(paths[-1], rng.integers(0, 255, size=(h, w, c)[:2 + (c == 3)],
                                            dtype=np.uint8))
    dataset = ImageFileDataset(paths)
    return collate_decoded([dataset[i] for i in range(len(paths))])


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('pre_name', sorted(_PREPROCESSORS))
@pytest.mark.parametrize('pipe_name', sorted(_PIPELINES))
def test_pixel_map_equals_the_preprocessor(batch, pipe_name, pre_name, channels_last):
    spec = PreprocessSpec.from_pipeline(_PIPELINES[pipe_name])
    pre = _PREPROCESSORS[pre_name]()
    x, metas = preprocess_batch(batch.images, batch.items, spec, pre)
    ref = run_preprocessor(pre, x, metas, [DetDataSample(metainfo=dict(m)) for m in metas])
    pixel_map = PixelMap.of(pre)
    assert pixel_map is not None
    out, out_metas = preprocess_batch(batch.images, batch.items, spec, pixel_map=pixel_map,
                                      channels_last=channels_last)
    assert out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else
                             torch.contiguous_format)
    assert torch.equal(out, ref['inputs'])  # values and shape, bit for bit
    for sample, meta in zip(ref['data_samples'], out_metas):
        assert {k: sample.metainfo[k] for k in meta} == meta
        assert meta['batch_input_shape'] == tuple(out.shape[-2:])


def test_unknown_preprocessor_runs_itself():
    """A preprocessor whose ``forward`` is not one PixelMap reproduces is left to run."""
    class Custom(YOLODetDataPreprocessor):
        def forward(self, data, training=False):
            return super().forward(data, training)

    assert PixelMap.of(Custom()) is None
    assert PixelMap.of(None) is None
    assert PixelMap.of(YOLODetDataPreprocessor()).divide == 255.0
