""":class:`BatchInferencer`: the detector (+ optional classifier) on one stacked batch, with one
host-to-device and one device-to-host copy per batch (:mod:`spinexr.apis.inference_batch`)."""
import contextlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .inference_batch import (DecodedBatch, collate_decoded, pack_results, preprocess_batch,
                              round_up, to_device, to_host, unpack_results)
from .inference_precision import InferencePrecision
from .inference_preprocess import PixelMap, PreprocessSpec


def run_preprocessor(preprocessor: Any, batch: Tensor, metas: Sequence[Dict[str, Any]],
                     samples: Optional[list] = None) -> Dict[str, Any]:
    """The model's own data preprocessor on a stacked batch (BGR->RGB, normalise, pad).

    Preprocessors with ``pad_size_divisor`` (mmengine's ``ImgDataPreprocessor`` family, incl.
    mmdet's and ``YOLODetDataPreprocessor``, and mmpretrain's ``ClsDataPreprocessor``) get the
    ``(N, C, H, W)`` tensor; its padding already holds the value they pad with, so the result
    equals their stacking of a list. Others get the list of per-image views (still on the device).
    ``pad_shape`` is set per image as the list path sets it.
    """
    if hasattr(preprocessor, 'pad_size_divisor') and hasattr(preprocessor, 'pad_value'):
        inputs: Union[Tensor, List[Tensor]] = batch
    else:
        inputs = [batch[i, :, :m['pad_shape'][0], :m['pad_shape'][1]]
                  for i, m in enumerate(metas)]
    data = dict(inputs=inputs) if samples is None else dict(inputs=inputs, data_samples=samples)
    data = preprocessor(data, False)
    divisor = int(getattr(preprocessor, 'pad_size_divisor', 1) or 1)
    for sample, meta in zip(data.get('data_samples') or [], metas):
        ph, pw = meta['pad_shape']
        sample.set_metainfo(dict(pad_shape=(round_up(ph, divisor), round_up(pw, divisor))))
    return data


class BatchInferencer:
    """Detector (+ optional classifier) on batches of decoded images.

    Args:
        detector (nn.Module): From :func:`~spinexr.apis.inference.build_detector`.
        det_spec (PreprocessSpec): The detector's test-pipeline geometry.
        class_names (Sequence[str]): Names by label.
        classifier (nn.Module, optional): From :func:`~spinexr.apis.inference.build_classifier`.
        cls_spec (PreprocessSpec, optional): The classifier's test-pipeline geometry.
        device (str): Unused (kept for callers): inputs go where the detector's weights are.
        fp16 (bool): Autocast to float16 on CUDA (a half YOLO11 model runs in half directly).
            Device and precision are decided once, from the detector
            (:meth:`InferencePrecision.of_detector`), and the classifier is moved and cast to
            the same (``self.precision``).
        score_thr (float): Boxes at or below this score are dropped. A YOLO11 detector's NMS
            confidence threshold is raised to it while the batch runs (restored afterwards).
        fusion_threshold (float, optional): Decision fusion: on images whose abnormal probability
            is below it, only boxes with score > ``fusion_box_thr`` are kept (needs a classifier).
        fusion_box_thr (float): Box score kept on probably-normal images (VinDr paper: 0.5).
        resize_mode (str): See :func:`~spinexr.apis.inference_batch.preprocess_batch`.
    """

    def __init__(self, detector, det_spec: PreprocessSpec, class_names: Sequence[str],
                 classifier=None, cls_spec: Optional[PreprocessSpec] = None,
                 device: str = 'cpu', fp16: bool = False, score_thr: float = 0.05,
                 fusion_threshold: Optional[float] = None, fusion_box_thr: float = 0.5,
                 resize_mode: str = 'auto') -> None:
        if fusion_threshold is not None and classifier is None:
            raise ValueError('decision fusion (fusion_threshold) needs a classifier')
        self.detector, self.det_spec = detector, det_spec
        self.classifier, self.cls_spec = classifier, cls_spec
        self.class_names = list(class_names)
        # one decision for both models: the detector's device and dtype, the classifier follows
        self.precision = InferencePrecision.of_detector(detector, fp16=fp16)
        self.precision.apply(classifier)
        self.device = self.precision.device
        self.score_thr = float(score_thr)
        self.fusion_threshold = fusion_threshold
        self.fusion_box_thr = float(fusion_box_thr)
        self.resize_mode = resize_mode
        # the detector's preprocessor applied while the batch is written (None: it runs itself)
        self.det_pixels = PixelMap.of(getattr(detector, 'data_preprocessor', None))

    def min_long_side(self) -> Optional[int]:
        """Smallest decoded size both models need (for the reduced DICOM decode)."""
        sizes = []
        for spec in (self.det_spec, self.cls_spec):
            if spec is None:
                continue
            if spec.scale is None:
                return None
            sizes.append(max(spec.scale))
        return max(sizes) if sizes else None

    @contextlib.contextmanager
    def _nms_conf(self) -> Iterator[None]:
        """YOLO11: NMS only boxes that are kept (its ``conf_thr`` raised to ``score_thr``)."""
        cfg = getattr(self.detector, 'test_cfg', None)
        if not (isinstance(cfg, dict) and 'conf_thr' in cfg):
            yield
            return
        old = cfg['conf_thr']
        cfg['conf_thr'] = max(float(old), self.score_thr)
        try:
            yield
        finally:
            cfg['conf_thr'] = old

    def detect(self, images: Tensor, items: Sequence[Dict[str, Any]]) -> List[Dict[str, Tensor]]:
        """Boxes (original pixels), scores, labels per image, on the device (all NMS output).

        Args:
            images (Tensor): The batch's ``(N, C, H, W)`` uint8, on the device.
            items (Sequence[dict]): :attr:`DecodedBatch.items`.
        """
        from mmdet.structures import DetDataSample
        pre = self.detector.data_preprocessor
        if self.det_pixels is not None:  # the network input made in one pass (PixelMap)
            inputs, metas = preprocess_batch(
                images, items, self.det_spec, resize_mode=self.resize_mode,
                pixel_map=self.det_pixels,
                channels_last=getattr(self.detector, 'channels_last', None) is True)
            samples = [DetDataSample(metainfo=m) for m in metas]
        else:
            x, metas = preprocess_batch(images, items, self.det_spec, pre, self.resize_mode)
            data = run_preprocessor(pre, x, metas, [DetDataSample(metainfo=m) for m in metas])
            inputs, samples = data['inputs'], data['data_samples']
        with self._nms_conf(), self.precision.autocast():
            results = self.detector.predict(self.precision.inputs(inputs), samples)
        return [dict(bboxes=r.pred_instances.bboxes, scores=r.pred_instances.scores,
                     labels=r.pred_instances.labels) for r in results]

    def classify(self, images: Tensor, items: Sequence[Dict[str, Any]]) -> Tensor:
        """Abnormal probability per image ``(N,)``, on the device."""
        pre = self.classifier.data_preprocessor
        x, metas = preprocess_batch(images, items, self.cls_spec, pre, self.resize_mode)
        data = run_preprocessor(pre, x, metas)
        with self.precision.autocast():
            samples = self.classifier(inputs=self.precision.inputs(data['inputs']),
                                      mode='predict')
        scores = torch.stack([s.pred_score for s in samples])
        if scores.ndim != 2 or scores.shape[1] not in (1, 2):
            raise ValueError('the classifier must give 1 (sigmoid) or 2 (normal, abnormal) '
                             f'scores per image, got shape {tuple(scores.shape)}')
        return scores[:, -1]

    @torch.inference_mode()
    def run_batch(self, batch: DecodedBatch) -> List[Dict[str, Any]]:
        """Detections (host arrays) and ``abnormal_prob`` for ``batch.items``, in that order."""
        if not batch.items:
            return []
        images = to_device(batch.images, self.device)  # the one host-to-device copy
        dets = self.detect(images, batch.items)
        probs = self.classify(images, batch.items) if self.classifier is not None else None
        packed, counts = pack_results(dets, probs)
        host = to_host(packed)  # the one device-to-host copy
        dets, host_probs = unpack_results(host, counts, self.score_thr, probs is not None)
        if host_probs is None:
            return [dict(d, abnormal_prob=None) for d in dets]
        if self.fusion_threshold is not None:
            from spinexr.evaluation.coco_ap import ImagePred
            from spinexr.evaluation.fusion import gate_predictions
            preds = [ImagePred(img_id=i, **d) for i, d in enumerate(dets)]
            gated = gate_predictions(
                preds, [], {str(i): float(p) for i, p in enumerate(host_probs)},
                operating_point=self.fusion_threshold, box_score_thr=self.fusion_box_thr)
            dets = [dict(bboxes=g.bboxes.reshape(-1, 4), scores=g.scores, labels=g.labels)
                    for g in gated]
        return [dict(d, abnormal_prob=float(p)) for d, p in zip(dets, host_probs)]

    def __call__(self, items: Union[DecodedBatch, Sequence[Dict[str, Any]]]
                 ) -> List[Dict[str, Any]]:
        """:meth:`run_batch` on a :class:`DecodedBatch`, or on decoded records (stacked here;
        the results then follow the records' order)."""
        if isinstance(items, DecodedBatch):
            return self.run_batch(items)
        records = [dict(r, _pos=i) for i, r in enumerate(items)]
        batch = collate_decoded(records)
        out: List[Any] = [None] * len(records)
        for it, res in zip(batch.items, self.run_batch(batch)):
            out[it['_pos']] = res
        return [r for r in out if r is not None]


def prepare_images(items: Sequence[Dict[str, Any]], spec: PreprocessSpec, device: torch.device,
                   resize_mode: str = 'auto') -> Tuple[List[Tensor], List[Dict[str, Any]]]:
    """The batched device pre-processing, per image (tests, notebooks): decoded records ->
    ``(C, H, W)`` float tensors (0..255, after the pipeline's ``Resize``/``Pad``) and metainfo,
    in the records' order."""
    records = [dict(r, _pos=i) for i, r in enumerate(items)]
    batch = collate_decoded(records)
    x, metas = preprocess_batch(to_device(batch.images, device), batch.items, spec,
                                resize_mode=resize_mode)
    inputs: List[Any] = [None] * len(records)
    out_metas: List[Any] = [None] * len(records)
    for i, (it, meta) in enumerate(zip(batch.items, metas)):
        ph, pw = meta['pad_shape']
        inputs[it['_pos']], out_metas[it['_pos']] = x[i, :, :ph, :pw], meta
    return inputs, out_metas
