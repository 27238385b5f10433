"""Prediction pickles are read with an allow-list: a crafted .pkl runs nothing (issue 11)."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmdet.evaluation import DumpDetResults
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from spinexr.experiments.ablation_report import evaluate_predictions
from spinexr.testing import make_tiny_coco
from spinexr.utils.safe_pickle import load_predictions


class _Payload:
    """Unpickling it runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_crafted_predictions_file_is_refused_by_the_ablation(tmp_path):
    ann = make_tiny_coco(str(tmp_path), num_images=2, seed=0)
    marker = tmp_path / 'was_executed'
    pkl = tmp_path / 'preds.pkl'
    inst = dict(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                labels=torch.zeros(0, dtype=torch.long))
    pkl.write_bytes(pickle.dumps([dict(img_id=1, pred_instances=inst,
                                       note=_Payload(str(marker)))]))
    with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle') as err:
        evaluate_predictions(str(pkl), ann)
    assert str(pkl) in str(err.value) and 'mkdir' in str(err.value)
    assert not marker.exists()


def test_dump_det_results_file_loads_completely(tmp_path):
    """What tools/test.py --out writes (mmdet's DumpDetResults of real data samples)."""
    sample = DetDataSample(metainfo=dict(
        img_id=3, img_path='a/b.png', ori_shape=(96, 128), img_shape=(48, 64),
        scale_factor=(0.5, 0.5), pad_shape=(64, 64), batch_input_shape=(64, 64),
        homography_matrix=np.eye(3, dtype=np.float32), flip=False))
    sample.pred_instances = InstanceData(bboxes=torch.rand(3, 4), scores=torch.rand(3),
                                         labels=torch.tensor([0, 4, 6]))
    sample.gt_instances = InstanceData(bboxes=torch.rand(1, 4), labels=torch.tensor([1]))
    out = tmp_path / 'preds.pkl'
    metric = DumpDetResults(out_file_path=str(out))
    metric.process({}, [sample.to_dict()])
    metric.evaluate(1)
    with open(out, 'rb') as f:
        ref = pickle.load(f)  # our own file, written just now
    got = load_predictions(str(out))
    assert len(got) == len(ref) == 1
    assert set(got[0]) == set(ref[0])
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(got[0]['pred_instances'][key], ref[0]['pred_instances'][key])
    np.testing.assert_array_equal(got[0]['homography_matrix'], ref[0]['homography_matrix'])
    assert got[0]['scale_factor'] == (0.5, 0.5) and got[0]['img_path'] == 'a/b.png'


def test_state_of_an_allowed_global_cannot_be_set(tmp_path):
    """BUILD on an allowed global itself (a function or class) would change it for the whole
    process: refused, only objects the file created may get their state set."""
    from spinexr.utils import safe_pickle

    # GLOBAL _codecs.encode; state (None, {'marker': 1}); BUILD -> setattr(func, 'marker', 1)
    raw = b'\x80\x02c_codecs\nencode\nN}X\x06\x00\x00\x00markerK\x01s\x86b.'
    pkl = tmp_path / 'patch.pkl'
    pkl.write_bytes(raw)
    with pytest.raises(pickle.UnpicklingError, match='refusing to set the state'):
        load_predictions(str(pkl))
    assert not hasattr(safe_pickle._latin1_encode, 'marker')
