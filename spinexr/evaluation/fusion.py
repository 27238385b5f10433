"""Decision fusion of an image classifier and a detector, as in the VinDr-SpineXR paper.

When the classifier's abnormal probability of an image is below its operating point, the image is
treated as probably normal and only confident boxes (score above ``box_score_thr``, 0.5 in the
paper) are kept; images at or above the operating point keep all their boxes.

The operating point must come from validation data (e.g. Youden's J on a validation fold), never
from the test labels.
"""
import csv
import json
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import numpy as np

from .coco_ap import ImageGT, ImagePred


def load_abnormal_probs(path: str) -> Dict[str, float]:
    """Read per-image abnormal probabilities.

    Accepted formats:

    * ``.json``: an object ``{image_id: prob}`` or a list of ``{"image_id": ..., "prob": ...}``;
    * ``.csv``: a header with ``image_id`` and one of ``prob``, ``abnormal_prob``, ``score``.

    ``image_id`` is the dataset's image identifier (VinDr: the 32-hex id, which is also the PNG
    stem); integer COCO image ids are accepted too, as strings.

    Args:
        path (str): File path.

    Returns:
        dict[str, float]: ``image_id -> probability``.

    Raises:
        ValueError: On a malformed row or a probability outside ``[0, 1]``.
    """
    p = Path(path)
    out: Dict[str, float] = {}
    if p.suffix.lower() == '.json':
        data = json.loads(p.read_text())
        items = data.items() if isinstance(data, dict) else [
            (d.get('image_id'), d.get('prob', d.get('abnormal_prob', d.get('score'))))
            for d in data
        ]
        rows = [(str(k), v, i) for i, (k, v) in enumerate(items)]
    elif p.suffix.lower() == '.csv':
        with p.open(newline='') as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            prob_col = next((c for c in ('prob', 'abnormal_prob', 'score') if c in cols), None)
            if 'image_id' not in cols or prob_col is None:
                raise ValueError(f'{path}: need columns image_id and prob (or abnormal_prob, '
                                 f'score); found {cols}')
            rows = [(r['image_id'], r[prob_col], i + 2) for i, r in enumerate(reader)]
    else:
        raise ValueError(f'{path}: unsupported extension {p.suffix!r} (use .json or .csv)')
    for key, val, row in rows:
        try:
            prob = float(val)
        except (TypeError, ValueError):
            raise ValueError(f'{path}: row {row} (image_id {key!r}): probability {val!r} '
                             'is not a number') from None
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'{path}: row {row} (image_id {key!r}): probability {prob} is '
                             'outside [0, 1]')
        out[key] = prob
    return out


def gate_predictions(preds: Sequence[ImagePred],
                     gts: Sequence[ImageGT],
                     probs: Mapping[str, float],
                     operating_point: float,
                     box_score_thr: float = 0.5,
                     strict: bool = True) -> List[ImagePred]:
    """Apply decision fusion to detections.

    Args:
        preds (Sequence[ImagePred]): Detections per image.
        gts (Sequence[ImageGT]): Ground truth per image, used only to map COCO ``img_id`` to the
            dataset ``image_id`` (VinDr hex id); probabilities keyed by the integer id also work.
        probs (Mapping[str, float]): Abnormal probability per image.
        operating_point (float): Classifier threshold; images with ``prob < operating_point`` keep
            only boxes with ``score > box_score_thr``.
        box_score_thr (float): Box score kept on probably-normal images (paper: 0.5).
        strict (bool): Raise when an image has no probability; otherwise leave it untouched.

    Returns:
        list[ImagePred]: Gated detections (new objects; the inputs are unchanged).

    Raises:
        KeyError: If ``strict`` and an image has no probability.
    """
    key_of = {g.img_id: g.image_id for g in gts}
    out = []
    for p in preds:
        keys = [key_of.get(p.img_id, ''), str(p.img_id)]
        prob = next((probs[k] for k in keys if k and k in probs), None)
        if prob is None:
            if strict:
                raise KeyError(f'no abnormal probability for image {keys[0] or p.img_id} '
                               f'(COCO id {p.img_id})')
            out.append(p)
            continue
        if prob >= operating_point:
            out.append(p)
            continue
        keep = np.asarray(p.scores) > box_score_thr
        out.append(ImagePred(img_id=p.img_id, bboxes=np.asarray(p.bboxes)[keep],
                             scores=np.asarray(p.scores)[keep], labels=np.asarray(p.labels)[keep]))
    return out
