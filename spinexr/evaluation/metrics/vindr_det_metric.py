"""``VinDrDetMetric``: COCO mAP, per-class AP/precision/recall, VOC-101 AP (VinDr paper), FROC."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet.registry import METRICS

from ..coco_ap import ImagePred, load_coco_gt
from ..det_summary import summarize_detections
from ..fusion import gate_predictions, load_abnormal_probs


@METRICS.register_module()
class VinDrDetMetric(BaseMetric):
    """Detection metric of the VinDr-SpineXR benchmark.

    Ground truth is read from the COCO file written by the converter (boxes in PNG pixels); the
    detector's predictions must be rescaled to the same pixels (mmdet's default ``rescale=True``).
    The numbers follow pycocotools' ``COCOeval`` (bbox, area ``all``, ``maxDets=100``) and are
    re-implemented in NumPy so that bootstrap intervals are cheap; ``tests/evaluation`` checks them
    against pycocotools.

    Reported keys (with the ``vindr/`` prefix): ``mAP`` (0.5:0.95), ``mAP_50``, ``mAP_75``,
    ``AP50_<class>``, ``precision_<class>``/``recall_<class>`` at ``score_thr`` and IoU 0.5, their
    means ``precision``/``recall``, ``voc101_mAP`` and ``voc101_AP50_<class>``, and with
    ``n_bootstrap > 0`` ``mAP_50_ci_low``/``mAP_50_ci_high`` (bootstrap over the studies of the
    annotation file's ``images[].study_id``; see :mod:`spinexr.evaluation.bootstrap`) with
    ``mAP_50_ci_units`` (studies) and ``mAP_50_ci_dropped`` (resamples lacking a class).
    FROC (:mod:`spinexr.evaluation.froc`, with ``froc=True``): ``FROC_fp_<r>`` (sensitivity at
    ``r`` = 0.125, 0.25, 0.5, 1, 2, 4, 8 false positives per image, all classes pooled),
    ``FROC_mean`` (their mean), ``FROC_fp_<r>_<class>`` and ``FROC_mean_<class>``, and with
    ``n_bootstrap > 0`` ``FROC_mean_ci_low``/``_high``, ``FROC_fp_<r>_ci_low``/``_high``,
    ``FROC_ci_units``, ``FROC_ci_dropped``. False positives per image divide by all evaluated
    images (normal ones included), and FROC sees every detection the model gives: it reuses the
    COCO matching when no image has more than ``max_dets`` boxes of a class, else it matches
    again at IoU 0.5 without the cap.

    Why ``score_thr=0.5`` by default: it is fixed before looking at any data and is the "confident
    box" level of the paper's decision fusion. A threshold tuned for F1 must be chosen on validation
    data and passed explicitly, never picked on the test split.

    Args:
        ann_file (str): COCO annotation file of the evaluated split.
        score_thr (float): Operating box-score threshold of precision/recall.
        max_dets (int): COCO ``maxDets`` per image and class.
        voc101 (bool): Also compute the VOC-101 protocol.
        froc (bool): Also compute FROC.
        n_bootstrap (int): Bootstrap resamples (over studies) for the mAP@0.5 and FROC intervals
            (0: none).
        bootstrap_seed (int): Bootstrap seed.
        fusion_probs_file (str, optional): Per-image abnormal probabilities of a classifier
            (``.json``/``.csv``, see :func:`spinexr.evaluation.fusion.load_abnormal_probs`). When
            given, decision fusion gates the boxes before evaluation.
        fusion_operating_point (float, optional): The classifier's operating point (chosen on
            validation data). Required with ``fusion_probs_file``.
        fusion_box_score_thr (float): Boxes kept on images below the operating point must score
            above this (paper: 0.5).
        outfile (str, optional): If set, dump the (gated) predictions as COCO results json.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric-key prefix, default ``'vindr'``.
    """
    default_prefix: Optional[str] = 'vindr'

    def __init__(self,
                 ann_file: str,
                 score_thr: float = 0.5,
                 max_dets: int = 100,
                 voc101: bool = True,
                 froc: bool = True,
                 n_bootstrap: int = 0,
                 bootstrap_seed: int = 0,
                 fusion_probs_file: Optional[str] = None,
                 fusion_operating_point: Optional[float] = None,
                 fusion_box_score_thr: float = 0.5,
                 outfile: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if fusion_probs_file is not None and fusion_operating_point is None:
            raise ValueError('VinDrDetMetric: fusion_probs_file needs fusion_operating_point '
                             '(the classifier threshold chosen on validation data)')
        self.ann_file = ann_file
        self.score_thr = score_thr
        self.max_dets = max_dets
        self.voc101 = voc101
        self.froc = froc
        self.n_bootstrap = n_bootstrap
        self.bootstrap_seed = bootstrap_seed
        self.fusion_probs_file = fusion_probs_file
        self.fusion_operating_point = fusion_operating_point
        self.fusion_box_score_thr = fusion_box_score_thr
        self.outfile = outfile

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store each image's predictions as NumPy arrays.

        Args:
            data_batch (dict): The batch (unused).
            data_samples (Sequence[dict]): Outputs of the model, with ``img_id`` and
                ``pred_instances`` (``bboxes`` xyxy in original pixels, ``scores``, ``labels``).
        """
        for ds in data_samples:
            pred = ds['pred_instances']
            self.results.append(
                dict(img_id=int(ds['img_id']),
                     bboxes=pred['bboxes'].detach().cpu().numpy().astype(np.float64),
                     scores=pred['scores'].detach().cpu().numpy().astype(np.float64),
                     labels=pred['labels'].detach().cpu().numpy().astype(np.int64)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics over all processed images.

        Args:
            results (list[dict]): Collected outputs of :meth:`process`.

        Returns:
            dict[str, float]: Metric name (without prefix) -> value.
        """
        gts, names = load_coco_gt(self.ann_file)
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None and tuple(classes) != tuple(names):
            raise ValueError(f'VinDrDetMetric: classes of {self.ann_file} {tuple(names)} differ '
                             f'from the dataset metainfo {tuple(classes)}')
        seen = {r['img_id'] for r in results}
        gts = [g for g in gts if g.img_id in seen]
        preds = [ImagePred(**r) for r in results]
        if self.fusion_probs_file is not None:
            probs = load_abnormal_probs(self.fusion_probs_file)
            preds = gate_predictions(preds, gts, probs, self.fusion_operating_point,
                                     self.fusion_box_score_thr)
        if self.outfile:
            dump_coco_results(preds, self.outfile)
        metrics = summarize_detections(gts, preds, names, score_thr=self.score_thr,
                                       max_dets=self.max_dets, n_bootstrap=self.n_bootstrap,
                                       bootstrap_seed=self.bootstrap_seed, voc101=self.voc101,
                                       froc=self.froc)
        logger = MMLogger.get_current_instance()
        logger.info('VinDrDetMetric on %d images: mAP@0.5 %.4f, mAP@0.5:0.95 %.4f, VOC-101 mAP '
                    '%.4f, FROC mean sensitivity %.4f', len(gts), metrics['mAP_50'],
                    metrics['mAP'], metrics.get('voc101_mAP', float('nan')),
                    metrics.get('FROC_mean', float('nan')))
        return metrics


def dump_coco_results(preds: Sequence[ImagePred], outfile: str) -> None:
    """Write detections as a COCO results list (``bbox`` as ``x, y, w, h``, 1-based category ids).

    Args:
        preds (Sequence[ImagePred]): Detections.
        outfile (str): Output json path.
    """
    rows = []
    for p in preds:
        for box, score, label in zip(p.bboxes, p.scores, p.labels):
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.append(dict(image_id=int(p.img_id), category_id=int(label) + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    Path(outfile).parent.mkdir(parents=True, exist_ok=True)
    Path(outfile).write_text(json.dumps(rows))
