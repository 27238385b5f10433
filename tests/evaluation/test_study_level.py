"""Study-level aggregation on a tiny table: max / noisy-or / mean, labels, class presence."""
import numpy as np
import pytest

from spinexr.evaluation.study_level import (aggregate_probabilities, study_class_presence,
                                            study_level_summary)

STUDIES = ['s1', 's1', 's2', 's3', 's3']
PROBS = [0.2, 0.6, 0.1, 0.5, 0.5]
LABELS = [0, 1, 0, 0, 0]


def test_rules_on_a_tiny_table():
    agg = aggregate_probabilities(STUDIES, PROBS, LABELS, rule='max')
    assert agg['study_id'] == ['s1', 's2', 's3']
    np.testing.assert_allclose(agg['prob'], [0.6, 0.1, 0.5])
    np.testing.assert_array_equal(agg['label'], [1, 0, 0])
    np.testing.assert_array_equal(agg['n_images'], [2, 1, 2])
    noisy = aggregate_probabilities(STUDIES, PROBS, rule='noisy_or')['prob']
    np.testing.assert_allclose(noisy, [1 - 0.8 * 0.4, 0.1, 0.75])
    mean = aggregate_probabilities(STUDIES, PROBS, rule='mean')['prob']
    np.testing.assert_allclose(mean, [0.4, 0.1, 0.5])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='unknown study rule'):
        aggregate_probabilities(STUDIES, PROBS, rule='vote')
    with pytest.raises(ValueError, match='one of each per image'):
        aggregate_probabilities(STUDIES[:2], PROBS)
    with pytest.raises(ValueError, match='image 1 has no study_id'):
        aggregate_probabilities(['s1', ''], [0.1, 0.2])
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        aggregate_probabilities(['s1'], [1.5])


def test_class_presence_takes_the_best_box_of_any_view():
    out = study_class_presence(
        STUDIES, det_scores=[[0.3, 0.9], [0.4], [], [0.2], [0.7]],
        det_labels=[[0, 2], [0], [], [1], [1]], num_classes=3,
        gt_labels=[[0], [], [], [], [1, 1]])
    np.testing.assert_allclose(out['score'], [[0.4, 0, 0.9], [0, 0, 0], [0, 0.7, 0]])
    np.testing.assert_array_equal(out['label'], [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match='outside 0..2'):
        study_class_presence(['a'], [[0.5]], [[3]], num_classes=3)


def test_study_summary_counts_studies():
    ids = [f's{i // 2}' for i in range(40)]
    rng = np.random.default_rng(0)
    labels = np.repeat(rng.integers(0, 2, 20), 2)
    probs = np.clip(labels * 0.5 + rng.uniform(0, 0.5, 40), 0, 1)
    out = study_level_summary(ids, probs, labels, threshold=0.5, n_bootstrap=50)
    assert out['n_studies'] == 20 and out['rule'] == 'max'
    assert out['auroc'] == pytest.approx(1.0)
    assert out['n_images'] == 20  # one row per study
    assert out['auroc_ci_lower'] <= out['auroc'] <= out['auroc_ci_upper']
