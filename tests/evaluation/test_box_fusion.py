"""Box fusion (WBF / NMS / soft-NMS through ensemble-boxes) against hand-computed cases."""
import numpy as np
import pytest

from spinexr.evaluation.box_fusion import (concat_nms_reference, denormalise_boxes, fuse_image,
                                           normalise_boxes)

# Two members on a 200 x 300 (width x height) image. Member A: one box of class 2 (score 0.9).
# Member B: an overlapping class-2 box (score 0.6) and a class-1 box of its own (score 0.8).
A = (np.array([[10., 10., 50., 50.]]), np.array([0.9]), np.array([2]))
B = (np.array([[14., 12., 54., 52.], [100., 100., 150., 180.]]), np.array([0.6, 0.8]),
     np.array([2, 1]))


def _by_label(dets, label):
    b, s, lab = dets
    return b[lab == label], s[lab == label]


def test_wbf_hand_computed():
    fused = fuse_image([A, B], width=200, height=300, method='wbf', iou_thr=0.55)
    assert len(fused[1]) == 2
    box, score = _by_label(fused, 2)
    # coordinates: score-weighted mean (0.9 * A + 0.6 * B) / 1.5
    expected = (0.9 * A[0][0] + 0.6 * B[0][0]) / 1.5
    np.testing.assert_allclose(box[0], expected, atol=1e-4)
    # conf_type 'avg': mean over the two members
    assert score[0] == pytest.approx((0.9 + 0.6) / 2, abs=1e-6)
    # the class-1 box of B alone: kept, coordinates unchanged, score halved (A counts as 0)
    box1, score1 = _by_label(fused, 1)
    np.testing.assert_allclose(box1[0], B[0][1], atol=1e-4)
    assert score1[0] == pytest.approx(0.8 / 2, abs=1e-6)
    assert fused[1].dtype == np.float64 and fused[2].dtype == np.int64


def test_wbf_member_weights():
    fused = fuse_image([A, B], width=200, height=300, method='wbf', weights=[2, 1])
    box, score = _by_label(fused, 2)
    # coordinates weighted by score * weight: (1.8 A + 0.6 B) / 2.4; score (1.8 + 0.6) / 3
    np.testing.assert_allclose(box[0], (1.8 * A[0][0] + 0.6 * B[0][0]) / 2.4, atol=1e-4)
    assert score[0] == pytest.approx(2.4 / 3, abs=1e-6)
    assert _by_label(fused, 1)[1][0] == pytest.approx(0.8 / 3, abs=1e-6)


def test_nms_keeps_the_best_box():
    fused = fuse_image([A, B], width=200, height=300, method='nms', iou_thr=0.5)
    box, score = _by_label(fused, 2)
    assert len(score) == 1
    np.testing.assert_allclose(box[0], A[0][0])
    assert score[0] == pytest.approx(0.9)  # equal weights keep the scores
    assert _by_label(fused, 1)[1][0] == pytest.approx(0.8)


def test_soft_nms_decays_instead_of_removing():
    fused = fuse_image([A, B], width=200, height=300, method='soft_nms', iou_thr=0.5, sigma=0.5)
    box, score = _by_label(fused, 2)
    assert len(score) == 2
    assert score[0] == pytest.approx(0.9)
    # B's box decayed by its overlap with A's: IoU = 36 * 38 / (2 * 1600 - 36 * 38)
    iou = 36 * 38 / (3200 - 36 * 38)
    assert score[1] == pytest.approx(0.6 * np.exp(-iou ** 2 / 0.5), abs=1e-5)
    np.testing.assert_allclose(box[1], B[0][0], atol=1e-3)


def test_skip_box_thr_and_empty_members():
    fused = fuse_image([A, B], width=200, height=300, method='wbf', skip_box_thr=0.7)
    # B's 0.6 box skipped: A's box alone, score 0.9 / 2
    box, score = _by_label(fused, 2)
    np.testing.assert_allclose(box[0], A[0][0], atol=1e-4)
    assert score[0] == pytest.approx(0.45, abs=1e-6)
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    for method in ('wbf', 'nms', 'soft_nms'):
        assert len(fuse_image([empty, empty], 10, 10, method=method)[1]) == 0
        assert len(fuse_image([A, empty], 200, 300, method=method)[1]) == 1


def test_normalisation_round_trip_non_square():
    boxes = np.array([[0., 0., 640., 480.], [12.5, 300., 100., 470.]])
    norm = normalise_boxes(boxes, width=640, height=480)
    np.testing.assert_allclose(norm[0], [0, 0, 1, 1])
    np.testing.assert_allclose(norm[1], [12.5 / 640, 300 / 480, 100 / 640, 470 / 480])
    np.testing.assert_allclose(denormalise_boxes(norm, 640, 480), boxes)
    # through the fusion itself: one member, a non-square image, boxes come back in pixels
    fused = fuse_image([(boxes, np.array([0.7, 0.5]), np.array([0, 3]))], width=640, height=480)
    np.testing.assert_allclose(fused[0], boxes, atol=1e-3)
    with pytest.raises(ValueError, match='positive'):
        normalise_boxes(boxes, width=0, height=480)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='method'):
        fuse_image([A, B], 200, 300, method='mean')
    with pytest.raises(ValueError, match='2 positive weights'):
        fuse_image([A, B], 200, 300, weights=[1.0])
    with pytest.raises(ValueError, match='conf_type'):
        fuse_image([A, B], 200, 300, conf_type='sum')


def test_concat_nms_reference_matches_hand_case():
    b, s, lab = concat_nms_reference([A, B], iou_thr=0.5)
    np.testing.assert_allclose(s, [0.9, 0.8])
    np.testing.assert_array_equal(lab, [2, 1])


@pytest.mark.parametrize('method', ['wbf', 'nms'])
def test_boxes_without_area_in_the_image_are_dropped(method, capsys):
    import warnings
    outside = (np.array([[210., 10., 260., 50.], [10., 10., 50., 50.]]), np.array([0.9, 0.5]),
               np.array([0, 0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        b, s, lab = fuse_image([outside], width=200, height=300, method=method)
    np.testing.assert_allclose(b, [[10., 10., 50., 50.]], atol=1e-4)
    # ensemble_boxes never saw it (it prints or warns about each box without area)
    assert 'zero area' not in capsys.readouterr().out.lower()
    assert not [w for w in caught if 'area' in str(w.message).lower()]
