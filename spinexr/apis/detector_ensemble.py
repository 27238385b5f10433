"""Detector ensembles from saved predictions: load, guard, search fusion parameters, fuse, score.

Members are any detectors whose predictions were dumped by ``tools/test.py CONFIG CKPT --out
preds.pkl`` (mmdet's ``DumpDetResults``; YOLO11 and the mmdet models alike), read with
:func:`spinexr.utils.safe_pickle.load_predictions`. Boxes are fused per image by
:func:`spinexr.evaluation.box_fusion.fuse_image` and scored by
:func:`spinexr.evaluation.det_summary.summarize_detections`.

The rule (as for the classifier ensemble, :mod:`spinexr.models.classifiers.ensemble_search`):
fusion weights and thresholds are chosen on a study-grouped hold-out of **train**, with predictions
of detectors that did not train on it, and never on test. :func:`search_fusion` refuses a search
split named ``test`` and prediction files holding any image of the test annotation file; a params
file marked ``split: test`` is refused by :class:`DetectionEnsemble`.
"""
import itertools
import json
import os.path as osp
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import TASK_UTILS

from spinexr.evaluation.box_fusion import CONF_TYPES, METHODS, fuse_image
from spinexr.evaluation.coco_ap import ImageGT, ImagePred, load_coco_gt
from spinexr.evaluation.det_summary import summarize_detections
from spinexr.utils.safe_pickle import load_predictions

#: Image record of an annotation file: ``img_id -> (image_id, width, height)``.
ImageInfo = Dict[int, Tuple[str, float, float]]


def read_images(ann_file: str) -> ImageInfo:
    """``img_id -> (dataset image_id or file stem, width, height)`` of a COCO file."""
    with open(ann_file, encoding='utf-8') as f:
        images = json.load(f)['images']
    return {int(im['id']): (str(im.get('image_id') or Path(im['file_name']).stem),
                            float(im['width']), float(im['height'])) for im in images}


def load_member(pred_file: str, images: ImageInfo) -> Dict[int, ImagePred]:
    """Read one member's dumped predictions, keyed by COCO ``img_id`` of ``images``.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If a prediction's image is not in ``images`` or its ``img_path`` names
            another image than the annotation file's record (predictions of another split).
    """
    if not osp.isfile(pred_file):
        raise FileNotFoundError(f'prediction file not found: {pred_file}')
    out: Dict[int, ImagePred] = {}
    for k, p in enumerate(load_predictions(pred_file)):
        img_id = int(p['img_id'])
        if img_id not in images:
            raise ValueError(f'{pred_file}: prediction {k} has img_id {img_id}, which is not an '
                             'image of the annotation file; predictions of another split?')
        stem = Path(str(p.get('img_path', '') or '')).stem
        if stem and stem != images[img_id][0]:
            raise ValueError(f'{pred_file}: prediction {k} (img_id {img_id}) is image {stem}, '
                             f'the annotation file says {images[img_id][0]}')
        inst = p['pred_instances']
        out[img_id] = ImagePred(
            img_id=img_id, bboxes=np.asarray(inst['bboxes'], dtype=np.float64).reshape(-1, 4),
            scores=np.asarray(inst['scores'], dtype=np.float64).reshape(-1),
            labels=np.asarray(inst['labels'], dtype=np.int64).reshape(-1))
    return out


def refuse_test_images(pred_files: Sequence[str], test_ann_file: Optional[str]) -> None:
    """Raise if any image of the prediction files belongs to the test annotation file.

    Images are compared by the dataset's image id (the ``img_path`` stem of each prediction).

    Raises:
        ValueError: Naming the file and the first test image found.
    """
    if test_ann_file is None:
        return
    test_ids = {v[0] for v in read_images(test_ann_file).values()}
    for f in pred_files:
        for p in load_predictions(f):
            stem = Path(str(p.get('img_path', '') or '')).stem
            if stem in test_ids:
                raise ValueError(f'{f}: image {stem} belongs to the test set {test_ann_file}; '
                                 'refusing to choose fusion parameters on test data')


def fuse_members(members: Sequence[Dict[int, ImagePred]], images: ImageInfo,
                 **fuse_kwargs) -> List[ImagePred]:
    """Fuse every image of ``images`` (in its order); a member without an image counts as empty.

    Args:
        members (Sequence[dict]): Per member, ``img_id -> ImagePred`` (:func:`load_member`).
        images (ImageInfo): The annotation file's images (their sizes normalise the boxes).
        **fuse_kwargs: :func:`spinexr.evaluation.box_fusion.fuse_image` arguments.

    Returns:
        list[ImagePred]: Fused detections per image.
    """
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    out = []
    for img_id, (_, w, h) in images.items():
        dets = [(m[img_id].bboxes, m[img_id].scores, m[img_id].labels) if img_id in m else empty
                for m in members]
        b, s, lab = fuse_image(dets, w, h, **fuse_kwargs)
        out.append(ImagePred(img_id=img_id, bboxes=b, scores=s, labels=lab))
    return out


def weight_candidates(n_members: int, levels: Sequence[float] = (1.0, 2.0, 3.0)
                      ) -> List[Tuple[float, ...]]:
    """Weight vectors from ``levels`` per member, normalised to sum 1, duplicates removed."""
    seen, out = set(), []
    for combo in itertools.product(levels, repeat=n_members):
        w = np.asarray(combo, dtype=np.float64)
        key = tuple(np.round(w / w.sum(), 6))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def search_fusion(gts: Sequence[ImageGT], members: Sequence[Dict[int, ImagePred]],
                  images: ImageInfo, class_names: Sequence[str], method: str = 'wbf',
                  weight_levels: Sequence[float] = (1.0, 2.0, 3.0),
                  iou_thrs: Sequence[float] = (0.4, 0.5, 0.55, 0.6, 0.7),
                  skip_box_thrs: Sequence[float] = (0.0, 0.01, 0.05),
                  conf_type: str = 'avg') -> dict:
    """Grid search of member weights, ``iou_thr`` and ``skip_box_thr`` maximising mAP@0.5.

    Ties keep the first candidate (equal weights come first, then the grids' order).

    Returns:
        dict: ``weights`` (list, sum 1), ``iou_thr``, ``skip_box_thr``, ``mAP_50`` (the best),
        ``equal_weights_mAP_50`` (equal weights at the best thresholds' grid start) and
        ``n_candidates``.
    """
    best: Optional[dict] = None
    n = 0
    for w in weight_candidates(len(members), weight_levels):
        for iou in iou_thrs:
            for skip in skip_box_thrs:
                fused = fuse_members(members, images, method=method, weights=w, iou_thr=iou,
                                     skip_box_thr=skip, conf_type=conf_type)
                m = summarize_detections(gts, fused, class_names, voc101=False,
                                         froc=False)['mAP_50']
                m = 0.0 if np.isnan(m) else float(m)
                n += 1
                if best is None or m > best['mAP_50'] + 1e-12:
                    best = dict(weights=list(w), iou_thr=float(iou), skip_box_thr=float(skip),
                                mAP_50=m)
    assert best is not None
    best['n_candidates'] = n
    return best


def run_search(pred_files: Dict[str, str], ann_file: str, out_file: str,
               test_ann_file: Optional[str] = None, split: str = 'train',
               method: str = 'wbf', conf_type: str = 'avg', **grid) -> dict:
    """Search fusion parameters on a hold-out of train and write them as json.

    Args:
        pred_files (dict): Member name -> dumped predictions on the hold-out.
        ann_file (str): COCO ground truth of the hold-out.
        out_file (str): Json to write (read by :class:`DetectionEnsemble` ``params_file``).
        test_ann_file (str, optional): The test COCO file; any of its images in the predictions
            is refused.
        split (str): Name of the split searched on; ``'test'`` is refused.
        method (str): Fusion method (:data:`METHODS`).
        conf_type (str): WBF score rule.
        **grid: ``weight_levels``, ``iou_thrs``, ``skip_box_thrs`` of :func:`search_fusion`.

    Returns:
        dict: The written payload.

    Raises:
        ValueError: On the test split or test images (leakage).
    """
    if str(split).strip().lower() == 'test':
        raise ValueError(f'split={split!r}: fusion parameters are never chosen on test data')
    refuse_test_images(list(pred_files.values()), test_ann_file)
    images = read_images(ann_file)
    gts, class_names = load_coco_gt(ann_file)
    members = [load_member(f, images) for f in pred_files.values()]
    best = search_fusion(gts, members, images, class_names, method=method, conf_type=conf_type,
                         **grid)
    payload = dict(method=method, conf_type=conf_type,
                   weights=dict(zip(pred_files, best['weights'])), iou_thr=best['iou_thr'],
                   skip_box_thr=best['skip_box_thr'], mAP_50=best['mAP_50'],
                   n_candidates=best['n_candidates'],
                   source=dict(file=osp.abspath(ann_file), split=split, kind='hold-out',
                               predictions={k: osp.abspath(v) for k, v in pred_files.items()}))
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(payload, indent=1))
    return payload


def write_predictions(preds: Sequence[ImagePred], ann_file: str, out_file: str) -> None:
    """Write fused detections in ``DumpDetResults``' layout (readable by ``load_predictions``)."""
    with open(ann_file, encoding='utf-8') as f:
        recs = {int(im['id']): im for im in json.load(f)['images']}
    dump = [dict(img_id=p.img_id, img_path=recs[p.img_id]['file_name'],
                 ori_shape=(int(recs[p.img_id]['height']), int(recs[p.img_id]['width'])),
                 pred_instances=dict(bboxes=p.bboxes.astype(np.float32),
                                     scores=p.scores.astype(np.float32),
                                     labels=p.labels.astype(np.int64))) for p in preds]
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, 'wb') as f:
        pickle.dump(dump, f)


@TASK_UTILS.register_module()
class DetectionEnsemble:
    """Fusion of saved detector predictions (build with ``TASK_UTILS.build(cfg.ensemble)``).

    Args:
        members (Sequence[dict]): ``dict(name=..., holdout=PKL, test=PKL, weight=1.0)``: the
            member's dumped predictions on the hold-out (for the search) and on test.
        method (str): One of :data:`spinexr.evaluation.box_fusion.METHODS`.
        iou_thr (float): Clustering / suppression IoU.
        skip_box_thr (float): Boxes below this score are ignored.
        conf_type (str): WBF score rule.
        params_file (str, optional): Json of :func:`run_search`; its weights (by member name),
            ``iou_thr`` and ``skip_box_thr`` replace the ones given here. Refused if it was
            chosen on test or for another method.
        sigma (float): Soft-NMS decay.
    """

    def __init__(self, members: Sequence[dict], method: str = 'wbf', iou_thr: float = 0.55,
                 skip_box_thr: float = 0.0, conf_type: str = 'avg',
                 params_file: Optional[str] = None, sigma: float = 0.5) -> None:
        if method not in METHODS:
            raise ValueError(f'method={method!r}: choose from {METHODS}')
        if conf_type not in CONF_TYPES:
            raise ValueError(f'conf_type={conf_type!r}: choose from {CONF_TYPES}')
        self.members = [dict(m) for m in members]
        self.names = [str(m['name']) for m in self.members]
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f'members need unique names, got {self.names}')
        self.method, self.conf_type, self.sigma = method, conf_type, sigma
        self.weights = [float(m.get('weight', 1.0)) for m in self.members]
        self.iou_thr, self.skip_box_thr = float(iou_thr), float(skip_box_thr)
        self.params_file = params_file
        if params_file is not None:
            self._read_params(params_file)

    def _read_params(self, path: str) -> None:
        payload = json.loads(Path(path).read_text())
        if str(payload.get('source', {}).get('split', '')).lower() == 'test':
            raise ValueError(f'{path}: fusion parameters were chosen on the test split; refusing')
        if payload.get('method') != self.method:
            raise ValueError(f'{path}: searched for method={payload.get("method")!r}, this '
                             f'ensemble has method={self.method!r}')
        missing = [n for n in self.names if n not in payload['weights']]
        if missing:
            raise ValueError(f'{path}: no weight for member(s) {missing}')
        self.weights = [float(payload['weights'][n]) for n in self.names]
        self.iou_thr = float(payload['iou_thr'])
        self.skip_box_thr = float(payload['skip_box_thr'])
        self.conf_type = str(payload.get('conf_type', self.conf_type))

    def pred_files(self, key: str) -> Dict[str, str]:
        """Member name -> prediction file under ``key`` (``'holdout'`` or ``'test'``)."""
        missing = [m['name'] for m in self.members if not m.get(key)]
        if missing:
            raise ValueError(f'member(s) {missing} have no {key!r} prediction file')
        return {m['name']: str(m[key]) for m in self.members}

    def fuse(self, pred_files: Dict[str, str], ann_file: str) -> List[ImagePred]:
        """Fuse the members' predictions on the images of ``ann_file``."""
        images = read_images(ann_file)
        members = [load_member(pred_files[n], images) for n in self.names]
        return fuse_members(members, images, method=self.method, weights=self.weights,
                            iou_thr=self.iou_thr, skip_box_thr=self.skip_box_thr,
                            conf_type=self.conf_type, sigma=self.sigma)


def evaluate_fused(preds: Sequence[ImagePred], ann_file: str, n_bootstrap: int = 1000,
                   seed: int = 0) -> Dict[str, float]:
    """:func:`summarize_detections` of fused detections (study-bootstrap CI, FROC)."""
    gts, class_names = load_coco_gt(ann_file)
    return summarize_detections(gts, preds, class_names, n_bootstrap=n_bootstrap,
                                bootstrap_seed=seed)


def fused_row(preds: Sequence[ImagePred], ann_file: str, name: str, n_bootstrap: int = 1000,
              notes: str = '', seed: int = 0) -> Dict[str, object]:
    """A comparison-table row (``extra_rows`` of
    :func:`spinexr.analysis.report.write_comparison`) for fused detections: the metrics of :func:`evaluate_fused`, the FROC
    curve fields, ``model``, ``notes`` and ``num_test_images``."""
    from spinexr.evaluation.det_summary import froc_curve_fields
    gts, class_names = load_coco_gt(ann_file)
    row: Dict[str, object] = dict(model=name)
    row.update(evaluate_fused(preds, ann_file, n_bootstrap=n_bootstrap, seed=seed))
    row.update(froc_curve_fields(gts, preds, len(class_names)))
    row.update(notes=notes, num_test_images=len(gts), class_names=list(class_names))
    return row


def fused_row_from_members(preds_by_member: Dict[str, Sequence[ImagePred]], ann_file: str,
                           n_bootstrap: int = 1000, method: str = 'wbf', iou_thr: float = 0.55,
                           skip_box_thr: float = 0.0, conf_type: str = 'avg',
                           name: Optional[str] = None) -> Dict[str, object]:
    """Fuse members' in-memory detections with equal weights and fixed thresholds (nothing is
    chosen on the evaluated split) and return the table row (:func:`fused_row`); the main job's
    ensemble row, whose detectors all trained on the whole train split (no hold-out to search on).
    """
    images = read_images(ann_file)
    members = [{p.img_id: p for p in preds} for preds in preds_by_member.values()]
    fused = fuse_members(members, images, method=method, weights=None, iou_thr=iou_thr,
                         skip_box_thr=skip_box_thr, conf_type=conf_type)
    name = name or f'{method.upper()} ensemble ({", ".join(preds_by_member)})'
    notes = (f'{method} of the rows above, equal weights, iou_thr {iou_thr:g}, skip_box_thr '
             f'{skip_box_thr:g}, conf_type {conf_type} (fixed, not searched: nothing chosen on '
             'test)')
    return fused_row(fused, ann_file, name, n_bootstrap=n_bootstrap, notes=notes)
