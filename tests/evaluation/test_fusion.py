"""Decision fusion (classifier gating of boxes)."""
import json

import numpy as np
import pytest

from spinexr.evaluation.coco_ap import ImageGT, ImagePred
from spinexr.evaluation.fusion import gate_predictions, load_abnormal_probs


def _gt(img_id, hexid):
    return ImageGT(img_id=img_id, bboxes=np.zeros((0, 4)), labels=np.zeros(0, int),
                   areas=np.zeros(0), iscrowd=np.zeros(0, bool), image_id=hexid)


def _pred(img_id):
    return ImagePred(img_id=img_id, bboxes=np.arange(12, dtype=float).reshape(3, 4),
                     scores=np.array([0.9, 0.5, 0.2]), labels=np.array([0, 1, 2]))


def test_gating_keeps_confident_boxes_below_operating_point():
    gts = [_gt(1, 'a' * 32), _gt(2, 'b' * 32)]
    preds = [_pred(1), _pred(2)]
    out = gate_predictions(preds, gts, {'a' * 32: 0.1, 'b' * 32: 0.7}, operating_point=0.4)
    assert out[0].scores.tolist() == [0.9]          # probably normal: only > 0.5 kept
    assert out[0].labels.tolist() == [0] and out[0].bboxes.shape == (1, 4)
    assert out[1].scores.tolist() == [0.9, 0.5, 0.2]  # abnormal: all kept
    assert preds[0].scores.size == 3                 # inputs unchanged
    # exactly at the operating point counts as abnormal
    same = gate_predictions(preds, gts, {'a' * 32: 0.4, 'b' * 32: 0.4}, operating_point=0.4)
    assert same[0].scores.size == 3


def test_missing_probability():
    gts = [_gt(1, 'a' * 32)]
    with pytest.raises(KeyError, match='a' * 32):
        gate_predictions([_pred(1)], gts, {}, operating_point=0.5)
    out = gate_predictions([_pred(1)], gts, {}, operating_point=0.5, strict=False)
    assert out[0].scores.size == 3
    # integer COCO ids work as keys too
    assert gate_predictions([_pred(1)], gts, {'1': 0.0}, 0.5)[0].scores.size == 1


def test_load_probs_formats_and_errors(tmp_path):
    j = tmp_path / 'p.json'
    j.write_text(json.dumps({'a': 0.2, 'b': 1}))
    assert load_abnormal_probs(str(j)) == {'a': 0.2, 'b': 1.0}
    j2 = tmp_path / 'p2.json'
    j2.write_text(json.dumps([{'image_id': 'a', 'prob': 0.3}]))
    assert load_abnormal_probs(str(j2)) == {'a': 0.3}
    c = tmp_path / 'p.csv'
    c.write_text('image_id,abnormal_prob\na,0.25\nb,0.75\n')
    assert load_abnormal_probs(str(c)) == {'a': 0.25, 'b': 0.75}
    bad = tmp_path / 'bad.csv'
    bad.write_text('image_id,prob\na,0.1\nb,1.5\n')
    with pytest.raises(ValueError, match=r'row 3 .*b.*outside'):
        load_abnormal_probs(str(bad))
    nocol = tmp_path / 'nocol.csv'
    nocol.write_text('id,p\na,0.1\n')
    with pytest.raises(ValueError, match='image_id'):
        load_abnormal_probs(str(nocol))
