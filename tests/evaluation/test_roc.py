"""spinexr.evaluation.roc against scikit-learn."""
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from spinexr.evaluation.roc import (auroc, binary_stats, bootstrap_ci, positive_probability,
                                    resolve_threshold, roc_curve, summarize, youden_threshold)


def _data(n=300, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.2 * y)))
    if ties:
        s = np.round(s, 1)
    return y, s


@pytest.mark.parametrize('ties', [False, True])
def test_auroc_and_curve_match_sklearn(ties):
    y, s = _data(ties=ties)
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_stats_match_sklearn_confusion_and_f1():
    y, s = _data(seed=1)
    for thr in (0.3, 0.5, 0.77):
        pred = (s >= thr).astype(int)
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
        st = binary_stats(y, s, thr)
        assert (st['tp'], st['fp'], st['tn'], st['fn']) == (tp, fp, tn, fn)
        assert st['sensitivity'] == pytest.approx(tp / (tp + fn))
        assert st['specificity'] == pytest.approx(tn / (tn + fp))
        assert st['f1'] == pytest.approx(f1_score(y, pred))
    # no predicted positives: F1 0 like sklearn's zero_division default
    assert binary_stats(y, s, 2.0)['f1'] == 0.0


def test_youden_maximises_j_on_sklearn_curve():
    y, s = _data(seed=2)
    fpr, tpr, thr = sk_roc_curve(y, s, drop_intermediate=False)
    best = thr[1:][np.argmax(tpr[1:] - fpr[1:])]
    t = youden_threshold(y, s)
    assert t == pytest.approx(best)
    st = binary_stats(y, s, t)
    assert st['sensitivity'] + st['specificity'] - 1 == pytest.approx(np.max(tpr - fpr))
    with pytest.raises(ValueError, match='both classes'):
        youden_threshold(np.ones(5, int), np.linspace(0, 1, 5))


def test_bootstrap_deterministic_and_brackets_point():
    y, s = _data(n=200, seed=3)
    a = bootstrap_ci(y, s, 0.5, n_bootstrap=200, seed=7)
    b = bootstrap_ci(y, s, 0.5, n_bootstrap=200, seed=7)
    assert a == b
    point = summarize(y, s, 0.5, n_bootstrap=0)
    for k in ('auroc', 'sensitivity', 'specificity', 'f1'):
        lo, hi = a[k]
        assert lo < point[k] < hi
        assert hi - lo < 0.3
    c = bootstrap_ci(y, s, 0.5, n_bootstrap=200, seed=8)
    assert c['auroc'] != a['auroc']


def test_input_validation_and_helpers(tmp_path):
    with pytest.raises(ValueError, match='0/1'):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match='labels but'):
        auroc([0, 1], [0.1])
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))
    np.testing.assert_allclose(positive_probability(np.array([[0.2, 0.8], [0.9, 0.1]])),
                               [0.8, 0.1])
    np.testing.assert_allclose(positive_probability(np.array([0.3])), [0.3])
    with pytest.raises(ValueError, match='shape'):
        positive_probability(np.zeros((2, 3)))
    f = tmp_path / 't.json'
    f.write_text('{"threshold": 0.42}')
    assert resolve_threshold(str(f)) == 0.42
    assert resolve_threshold(0.3) == 0.3
    assert resolve_threshold('youden') is None
    with pytest.raises(FileNotFoundError):
        resolve_threshold('nope.json')


def test_bootstrap_resamples_studies():
    # Every image twice, as two views of one study: a copy adds no information, so the study
    # bootstrap of the doubled set is exactly the image bootstrap of the originals, and the
    # image bootstrap of the doubled set is too narrow.
    y, s = _data(n=120, seed=4)
    y2, s2 = np.repeat(y, 2), np.repeat(s, 2)
    studies = np.repeat([f'st{i}' for i in range(120)], 2)
    single = bootstrap_ci(y, s, 0.5, n_bootstrap=300, seed=1)
    by_study = bootstrap_ci(y2, s2, 0.5, n_bootstrap=300, seed=1, study_ids=studies)
    by_image = bootstrap_ci(y2, s2, 0.5, n_bootstrap=300, seed=1)
    for k in single:
        assert by_study[k] == pytest.approx(single[k], abs=1e-12), k

    def width(ci):
        return ci['auroc'][1] - ci['auroc'][0]

    assert width(by_image) < 0.85 * width(by_study)
    out = summarize(y2, s2, 0.5, n_bootstrap=50, study_ids=studies)
    assert out['bootstrap_units'] == 120 and out['auroc_ci_n_undefined'] == 0


def test_bootstrap_replicates_with_one_class_are_left_out():
    # 2 positive studies among 4: a replicate drawing only negative (or only positive) studies
    # has no AUROC; it is left out of the interval and counted.
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.1, 0.6, 0.4])
    studies = ['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd']
    out = summarize(y, s, 0.5, n_bootstrap=400, seed=0, study_ids=studies)
    assert out['bootstrap_units'] == 4
    # P(no study with a positive, or no study with a negative) = (2/4)^4 + (1/4)^4
    assert 0 < out['auroc_ci_n_undefined'] < 60
    assert 0.0 <= out['auroc_ci_lower'] <= out['auroc'] <= out['auroc_ci_upper'] <= 1.0
