"""The VinDr paper's VOC-101 AP on a case computed by hand."""
import numpy as np
import pytest

from spinexr.evaluation.coco_ap import ImageGT, ImagePred
from spinexr.evaluation.det_summary import summarize_detections
from spinexr.evaluation.voc_ap import eval_voc101, voc_ap_101


def _case():
    # two overlapping ground truths of class 0
    gt = ImageGT(img_id=1, bboxes=np.array([[0, 0, 10, 10], [2, 0, 12, 10]], float),
                 labels=np.array([0, 0]), areas=np.array([100.0, 100.0]),
                 iscrowd=np.array([False, False]))
    # d1 = g1 exactly; d2 overlaps g1 most (IoU 0.905) and g2 with IoU 0.739; d3 hits nothing
    pred = ImagePred(img_id=1,
                     bboxes=np.array([[0, 0, 10, 10], [0.5, 0, 10.5, 10], [50, 50, 60, 60]],
                                     float),
                     scores=np.array([0.9, 0.8, 0.7]), labels=np.array([0, 0, 0]))
    return [gt], [pred]


def test_voc101_hand_computed():
    gts, preds = _case()
    # VOC: d2's best box g1 is taken -> FP. tp=[1,0,0], recall stays 0.5 with precision 1 at the
    # first detection: levels 0.00..0.50 (51 of 101) get precision 1, the rest 0.
    res = eval_voc101(gts, preds, num_classes=1)
    assert res['ap'][0] == pytest.approx(51 / 101)
    assert res['mAP'] == pytest.approx(51 / 101)
    # COCO looks for the best *unclaimed* box: d2 -> g2, both boxes found at precision 1.
    coco = summarize_detections(gts, preds, ['a'], voc101=False)
    assert coco['mAP_50'] == pytest.approx(1.0)


def test_voc_ap_101_interpolation():
    # recall 0.25 at precision 1, recall 0.5 at precision 0.5: levels <= .25 -> 1 (26 levels),
    # (.25, .5] -> 0.5 (25 levels), > .5 -> 0
    ap = voc_ap_101(np.array([0.25, 0.25, 0.5]), np.array([1.0, 0.5, 0.5]))
    assert ap == pytest.approx((26 * 1.0 + 25 * 0.5) / 101)
    assert voc_ap_101(np.array([]), np.array([])) == 0.0


def test_class_without_gt_is_nan_and_left_out():
    gts, preds = _case()
    res = eval_voc101(gts, preds, num_classes=2)
    assert np.isnan(res['ap'][1])
    assert res['mAP'] == pytest.approx(51 / 101)
