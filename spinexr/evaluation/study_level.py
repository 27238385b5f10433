"""Study-level findings: image-level outputs aggregated over the views of a study.

A VinDr-SpineXR study usually holds two views (AP and lateral); the clinical question is per
study. The rules, applied per ``study_id``:

* **label**: a study is abnormal when any of its images is (the CSV labels images);
* **abnormal probability** of a study from its images' probabilities ``p_i``:

  - ``'max'`` (default): ``max_i p_i``, a study is as suspicious as its most suspicious view;
  - ``'noisy_or'``: ``1 - prod_i (1 - p_i)``, views as independent pieces of evidence (it grows
    with the number of views, so compare studies with the same number of views);
  - ``'mean'``: ``mean_i p_i``;

* **per-class presence** from detections: the score of class ``c`` in a study is the highest
  score of a class-``c`` box in any of its views (0 without one); the study's class-``c`` label
  is whether any view has a class-``c`` ground-truth box.

Study-level AUROC, sensitivity and specificity are the image-level statistics of
:mod:`spinexr.evaluation.roc` computed on one row per study (their bootstrap resamples studies
by construction).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .roc import summarize

#: Aggregation rules for a study's abnormal probability.
RULES = ('max', 'noisy_or', 'mean')


def _group(study_ids: Sequence[object]) -> Tuple[List[str], np.ndarray]:
    """Studies in order of first appearance and each image's study index."""
    ids = [str(s) for s in study_ids]
    if any(not s for s in ids):
        bad = next(i for i, s in enumerate(ids) if not s)
        raise ValueError(f'image {bad} has no study_id; study-level results need one per image')
    order: Dict[str, int] = {}
    index = np.array([order.setdefault(s, len(order)) for s in ids], dtype=np.int64)
    return list(order), index


def aggregate_probabilities(study_ids: Sequence[object],
                            probs: Sequence[float],
                            labels: Optional[Sequence[int]] = None,
                            rule: str = 'max') -> Dict[str, np.ndarray]:
    """One abnormal probability (and label) per study.

    Args:
        study_ids (Sequence): Study id of every image.
        probs (Sequence[float]): Image-level abnormal probabilities in [0, 1].
        labels (Sequence[int], optional): Image-level 0/1 labels.
        rule (str): One of :data:`RULES`.

    Returns:
        dict: ``study_id`` (list of str), ``prob`` ``(S,)``, ``n_images`` ``(S,)`` and, with
        ``labels``, ``label`` ``(S,)`` (1 when any image is abnormal).

    Raises:
        ValueError: Unknown rule, lengths differ, a probability outside [0, 1], or an empty
            study id.
    """
    if rule not in RULES:
        raise ValueError(f'unknown study rule {rule!r}; choose from {RULES}')
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if len(study_ids) != probs.size or (labels is not None and len(labels) != probs.size):
        raise ValueError(f'{len(study_ids)} study ids, {probs.size} probabilities'
                         + ('' if labels is None else f', {len(labels)} labels')
                         + ': one of each per image is needed')
    if probs.size and (np.any(~np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1):
        raise ValueError('image probabilities must be finite and in [0, 1]')
    names, index = _group(study_ids)
    n = len(names)
    counts = np.bincount(index, minlength=n)
    if rule == 'max':
        out = np.zeros(n)
        np.maximum.at(out, index, probs)
    elif rule == 'noisy_or':
        log_keep = np.zeros(n)
        np.add.at(log_keep, index, np.log1p(-np.clip(probs, 0.0, 1.0 - 1e-12)))
        out = 1.0 - np.exp(log_keep)
    else:
        out = np.bincount(index, weights=probs, minlength=n) / counts
    result = dict(study_id=names, prob=out, n_images=counts)
    if labels is not None:
        lab = np.zeros(n, dtype=np.int64)
        np.maximum.at(lab, index, np.asarray(labels, dtype=np.int64).reshape(-1))
        result['label'] = lab
    return result


def study_class_presence(study_ids: Sequence[object],
                         det_scores: Sequence[Sequence[float]],
                         det_labels: Sequence[Sequence[int]],
                         num_classes: int,
                         gt_labels: Optional[Sequence[Sequence[int]]] = None
                         ) -> Dict[str, np.ndarray]:
    """Per-study, per-class presence score (and label) from detections of every view.

    Args:
        study_ids (Sequence): Study id of every image.
        det_scores (Sequence[Sequence[float]]): Per image, the scores of its detections.
        det_labels (Sequence[Sequence[int]]): Per image, the 0-based classes of its detections.
        num_classes (int): Number of classes.
        gt_labels (Sequence[Sequence[int]], optional): Per image, the classes of its ground-truth
            boxes.

    Returns:
        dict: ``study_id`` (list of str), ``score`` ``(S, num_classes)`` (highest box score of
        the class in the study, 0 without one) and, with ``gt_labels``, ``label``
        ``(S, num_classes)`` 0/1.
    """
    names, index = _group(study_ids)
    score = np.zeros((len(names), num_classes))
    for s, scores, labels in zip(index, det_scores, det_labels):
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'detection class outside 0..{num_classes - 1}: {labels.tolist()}')
        np.maximum.at(score[s], labels, scores)
    result = dict(study_id=names, score=score)
    if gt_labels is not None:
        lab = np.zeros((len(names), num_classes), dtype=np.int64)
        for s, labels in zip(index, gt_labels):
            lab[s, np.asarray(labels, dtype=np.int64).reshape(-1)] = 1
        result['label'] = lab
    return result


def study_level_summary(study_ids: Sequence[object],
                        probs: Sequence[float],
                        labels: Sequence[int],
                        threshold: float,
                        rule: str = 'max',
                        n_bootstrap: int = 1000,
                        ci_level: float = 0.95,
                        seed: int = 0) -> Dict[str, float]:
    """Study-level AUROC, sensitivity, specificity, F1 (fractions) with bootstrap CIs.

    Args:
        study_ids (Sequence): Study id of every image.
        probs (Sequence[float]): Image-level abnormal probabilities.
        labels (Sequence[int]): Image-level 0/1 labels.
        threshold (float): Operating threshold on the STUDY probability (choose it on
            validation studies with the same rule).
        rule (str): One of :data:`RULES`.
        n_bootstrap (int): Bootstrap replicates over studies (0: none).
        ci_level (float): Coverage of the intervals.
        seed (int): Seed of the bootstrap.

    Returns:
        dict: :func:`spinexr.evaluation.roc.summarize`'s keys, computed over studies, plus
        ``n_studies`` and ``rule``.
    """
    agg = aggregate_probabilities(study_ids, probs, labels, rule)
    # one row per study: the bootstrap's unit is the row, named so that no warning is logged
    out = summarize(agg['label'], agg['prob'], threshold, n_bootstrap=n_bootstrap,
                    ci_level=ci_level, seed=seed, study_ids=agg['study_id'])
    out['n_studies'] = len(agg['study_id'])
    out['rule'] = rule
    return out
