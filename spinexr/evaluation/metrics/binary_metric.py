"""``BinaryClsMetric``: AUROC, sensitivity, specificity and F1 of the abnormality classifier."""
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpretrain.registry import METRICS

from ..roc import positive_probability, resolve_threshold, summarize, youden_threshold

#: Columns of the prediction CSV before any ``prob_<member>`` columns.
PREDICTION_COLUMNS = ('image_id', 'study_id', 'split', 'label', 'prob', 'pred')


def _to_numpy(value) -> np.ndarray:
    """Tensor or array-like -> numpy array."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class BinaryClsMetric(BaseMetric):
    """Image-level abnormal-vs-normal metric with bootstrap confidence intervals.

    Reads ``pred_score`` (abnormal probability = last column, see
    :func:`spinexr.evaluation.roc.positive_probability`) and ``gt_label`` of each data sample.
    Reports, in percent: ``auroc``, ``sensitivity``, ``specificity``, ``f1`` and, when
    ``n_bootstrap > 0``, ``<stat>_ci_lower`` / ``<stat>_ci_upper`` (percentile bootstrap over
    **studies**: the ``study_id`` of each sample, which the dataset's ``PackInputs`` meta keys
    must carry; without it images are resampled and a warning is logged); plus ``threshold`` (a
    probability in [0, 1]) and ``threshold_validated`` (1 when the threshold came from a
    validation json, else 0; a warning when an ensemble without a weights file is evaluated at an
    unvalidated threshold). With the default prefix the keys read ``binary/auroc`` etc.

    The operating threshold:

    * a number (default 0.5);
    * a json file from ``tools/search_ensemble.py`` (its ``threshold`` entry, chosen by Youden's J
      on out-of-fold validation predictions) -- the honest way to evaluate a test split;
    * ``'youden'``: chosen by Youden's J on **the evaluated data themselves**. That is an
      optimistic, in-sample number. On a test split it is leakage; use it only on validation
      data, e.g. to watch a training run. A warning is logged every time it is used.

    Args:
        threshold (float | str): See above. Defaults to 0.5.
        n_bootstrap (int): Bootstrap replicates for the CIs; 0 switches them off (e.g. for the
            per-epoch validation). Defaults to 1000.
        ci_level (float): CI coverage. Defaults to 0.95.
        seed (int): Seed of the bootstrap. Defaults to 0.
        prediction_file (str, optional): Write one CSV row per image (``image_id, study_id,
            split, label, prob, pred`` and ``prob_<member>`` for ensembles). Defaults to None.
        collect_device (str): Device for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Metric key prefix. Defaults to ``'binary'``.
    """

    default_prefix: Optional[str] = 'binary'

    def __init__(self,
                 threshold: Union[float, str] = 0.5,
                 n_bootstrap: int = 1000,
                 ci_level: float = 0.95,
                 seed: int = 0,
                 prediction_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        # Resolve a json threshold now, so a missing file fails before a long test run.
        self.threshold = resolve_threshold(threshold)
        #: Only a threshold read from a ``tools/search_ensemble.py`` json was chosen on
        #: validation data; a number (e.g. the default 0.5) or ``'youden'`` was not.
        self.threshold_validated = isinstance(threshold, str) and threshold.lower() != 'youden'
        self.n_bootstrap = int(n_bootstrap)
        self.ci_level = float(ci_level)
        self.seed = int(seed)
        self.prediction_file = prediction_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep label, abnormal probability and identifiers of every sample."""
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError('BinaryClsMetric needs `pred_score` in the predictions; the '
                               f'model returned keys {sorted(sample)}')
            if 'gt_label' not in sample:
                raise KeyError('BinaryClsMetric needs `gt_label`; was the dataset built with '
                               'labels (VinDrSpineXRClsDataset)?')
            result = dict(
                label=int(_to_numpy(sample['gt_label']).reshape(-1)[0]),
                prob=float(positive_probability(sample['pred_score'])[0]),
                image_id=str(sample.get('image_id', sample.get('img_path', ''))),
                study_id=str(sample.get('study_id', '')),
                split=str(sample.get('split', '')),
                model_threshold_validated=bool(sample.get('threshold_validated', True)))
            if 'member_scores' in sample:
                scores = _to_numpy(sample['member_scores']).reshape(-1).tolist()
                result['members'] = dict(zip(sample['member_names'], scores))
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics (percent) from all collected results."""
        labels = np.array([r['label'] for r in results], dtype=np.int64)
        probs = np.array([r['prob'] for r in results], dtype=np.float64)
        threshold = self.threshold
        if threshold is None:
            threshold = youden_threshold(labels, probs)
            MMLogger.get_current_instance().warning(
                f"BinaryClsMetric: threshold {threshold:.4f} chosen by Youden's J on the "
                'evaluated data themselves (in-sample). This is leakage on a test split; pass '
                'the threshold json chosen on out-of-fold validation predictions instead.')
        # The bootstrap resamples studies (a study's views are correlated); samples without a
        # study id are resampled alone, with a warning.
        study_ids = [r['study_id'] for r in results]
        summary = summarize(labels, probs, threshold, n_bootstrap=self.n_bootstrap,
                            ci_level=self.ci_level, seed=self.seed,
                            study_ids=study_ids if any(study_ids) else None)
        if self.prediction_file:
            self._write_predictions(results, threshold)
        keys = ['auroc', 'sensitivity', 'specificity', 'f1']
        out = {k: 100.0 * summary[k] for k in keys}
        if self.n_bootstrap > 0:
            for k in keys:
                out[f'{k}_ci_lower'] = 100.0 * summary[f'{k}_ci_lower']
                out[f'{k}_ci_upper'] = 100.0 * summary[f'{k}_ci_upper']
        out['threshold'] = float(threshold)
        out['threshold_validated'] = float(self.threshold_validated)
        if not self.threshold_validated and not all(
                r.get('model_threshold_validated', True) for r in results):
            MMLogger.get_current_instance().warning(
                f'BinaryClsMetric: the model\'s weights/threshold and this metric\'s threshold '
                f'{float(threshold):.4f} were not chosen on validation data: sensitivity, '
                'specificity and F1 are not at a validated operating point (AUROC does not '
                'depend on it). Pass the tools/search_ensemble.py json as model.weights_file '
                'and test_evaluator.threshold.')
        return out

    def _write_predictions(self, results: List[dict], threshold: float) -> None:
        members: List[str] = []
        for r in results:
            for name in r.get('members', {}):
                if name not in members:
                    members.append(name)
        os.makedirs(osp.dirname(osp.abspath(self.prediction_file)), exist_ok=True)
        with open(self.prediction_file, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow([*PREDICTION_COLUMNS, *[f'prob_{m}' for m in members]])
            for r in results:
                member_probs = r.get('members', {})
                writer.writerow([r['image_id'], r['study_id'], r['split'], r['label'],
                                 f"{r['prob']:.6f}", int(r['prob'] >= threshold),
                                 *[f'{member_probs[m]:.6f}' if m in member_probs else ''
                                   for m in members]])
        MMLogger.get_current_instance().info(
            f'BinaryClsMetric: wrote {len(results)} predictions to {self.prediction_file}')
