"""Study-level rows of :mod:`spinexr.apis.inference`: the views of a study taken together.

**Which study an image belongs to**, first rule that applies:

1. a study map: ``study_map`` (``tools/infer.py --study-map FILE``), a converted dataset's COCO
   json (``images[].study_id``, e.g. ``annotations/test.json``) or a CSV with ``study_id`` and
   ``image_id`` (or ``path``) columns (e.g. the release's ``annotations/test.csv``); or a ``.csv``
   input list that has a ``study_id`` column beside its ``path`` column. Images are matched by
   ``image_id``, the file name without extension (the release names files ``<image_id>.dicom``,
   the converter ``<image_id>.png``);
2. for a DICOM file, its *StudyInstanceUID* (read while the file is decoded);
3. otherwise the image is a study of its own (``study_id`` = its ``image_id``).

Every image record gets ``study_id`` and ``study_id_source`` (``'map'``, ``'dicom'`` or
``'image'``).

**A study row** (:func:`study_records`) holds ``study_id``, ``study_id_source``, ``n_images`` (the
images of the study that could be read), ``image_ids``, ``rule``, ``abnormal_prob`` (the views'
classifier probabilities aggregated by ``rule`` of :mod:`spinexr.evaluation.study_level`:
``max``, ``noisy_or`` or ``mean``; ``None`` without a classifier) and ``class_scores``
(``class name -> highest score of a box of that class in any view``, 0 without one; boxes as
written in the image rows, i.e. above the score threshold and after decision fusion).
"""
import csv
import json
import os.path as osp
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

from spinexr.evaluation.study_level import aggregate_probabilities, study_class_presence

#: Columns of ``studies.csv`` before the one column per class (its highest box score).
STUDY_CSV_FIELDS = ('study_id', 'study_id_source', 'n_images', 'image_ids', 'rule',
                    'abnormal_prob')


def _add(mapping: Dict[str, str], image_id: str, study_id: str, where: str) -> None:
    if not image_id or not study_id:
        return
    if mapping.get(image_id, study_id) != study_id:
        raise ValueError(f'{where}: image {image_id} is in study {study_id} here and in study '
                         f'{mapping[image_id]} earlier; one study per image')
    mapping[image_id] = study_id


def load_study_map(path: str) -> Dict[str, str]:
    """``image_id -> study_id`` from a COCO json or a CSV (see the module docstring).

    Args:
        path (str): ``.json`` (COCO, ``images[]`` with ``study_id`` and ``image_id`` or
            ``file_name``) or ``.csv`` (``study_id`` and ``image_id`` or ``path`` columns).

    Returns:
        dict[str, str]: Study of every image id named in the file.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Missing columns/keys, or an image given two studies (the row is named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'study map not found: {path}')
    mapping: Dict[str, str] = {}
    if path.lower().endswith('.json'):
        with open(path, encoding='utf-8') as f:
            images = json.load(f).get('images')
        if not isinstance(images, list):
            raise ValueError(f'{path}: a COCO json with "images" is needed for a study map')
        for i, im in enumerate(images):
            if 'study_id' not in im:
                raise ValueError(f'{path}: images[{i}] has no study_id')
            image_id = im.get('image_id') or Path(str(im.get('file_name', ''))).stem
            _add(mapping, str(image_id), str(im['study_id']), f'{path}: images[{i}]')
        return mapping
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        key = 'image_id' if 'image_id' in fields else 'path' if 'path' in fields else None
        if 'study_id' not in fields or key is None:
            raise ValueError(f'{path}: a study map CSV needs "study_id" and "image_id" (or '
                             f'"path") columns; it has {fields}')
        for line, row in enumerate(reader, start=2):
            row = {(k or '').strip(): (v or '').strip() for k, v in row.items()}
            image_id = row[key] if key == 'image_id' else Path(row[key]).stem
            _add(mapping, image_id, row['study_id'], f'{path}: row {line}')
    return mapping


def study_map_from_inputs(inputs: Iterable[str]) -> Dict[str, str]:
    """``image_id -> study_id`` of the ``.csv`` input lists that have a ``study_id`` column."""
    mapping: Dict[str, str] = {}
    for item in inputs:
        if not (str(item).lower().endswith('.csv') and osp.isfile(item)):
            continue
        with open(item, newline='', encoding='utf-8') as f:
            header = [c.strip() for c in next(csv.reader(f), [])]
        if 'study_id' in header and 'path' in header:
            mapping.update(load_study_map(str(item)))
    return mapping


def assign_study_ids(records: Sequence[dict], study_map: Optional[Mapping[str, str]] = None
                     ) -> None:
    """Set ``study_id`` and ``study_id_source`` on every image record, in place.

    Args:
        records (Sequence[dict]): Image records of :func:`spinexr.apis.inference_io._record`
            (``image_id`` and, for DICOM, ``dicom_study_uid``).
        study_map (Mapping[str, str], optional): ``image_id -> study_id``.
    """
    study_map = study_map or {}
    for rec in records:
        uid = rec.pop('dicom_study_uid', None)
        if rec['image_id'] in study_map:
            rec['study_id'], rec['study_id_source'] = study_map[rec['image_id']], 'map'
        elif uid:
            rec['study_id'], rec['study_id_source'] = uid, 'dicom'
        else:
            rec['study_id'], rec['study_id_source'] = rec['image_id'], 'image'


def study_records(records: Sequence[dict], class_names: Sequence[str],
                  rule: str = 'max') -> List[dict]:
    """One row per study from image records that carry ``study_id`` (module docstring).

    Args:
        records (Sequence[dict]): Image records after :func:`assign_study_ids`.
        class_names (Sequence[str]): Names by class id.
        rule (str): Aggregation of the abnormal probability
            (:data:`spinexr.evaluation.study_level.RULES`).

    Returns:
        list[dict]: Study rows in order of first appearance.
    """
    if not records:
        return []
    ids = [r['study_id'] for r in records]
    num_classes = max([len(class_names)] + [f['class_id'] + 1 for r in records
                                            for f in r['findings']])
    names = list(class_names) + [f'class_{i}' for i in range(len(class_names), num_classes)]
    presence = study_class_presence(ids, [[f['score'] for f in r['findings']] for r in records],
                                    [[f['class_id'] for f in r['findings']] for r in records],
                                    num_classes)
    probs = [r['abnormal_prob'] for r in records]
    agg = (aggregate_probabilities(ids, probs, rule=rule)
           if all(p is not None for p in probs) else None)
    by_study: Dict[str, List[dict]] = {}
    for r in records:
        by_study.setdefault(str(r['study_id']), []).append(r)
    out = []
    for s, study_id in enumerate(presence['study_id']):
        members = by_study[study_id]
        out.append(dict(
            study_id=study_id, study_id_source=members[0]['study_id_source'],
            n_images=len(members), image_ids=[r['image_id'] for r in members], rule=rule,
            abnormal_prob=None if agg is None else round(float(agg['prob'][s]), 5),
            class_scores={n: round(float(v), 5) for n, v in zip(names, presence['score'][s])}))
    return out


def write_studies_csv(path: str, studies: Sequence[dict], class_names: Sequence[str]) -> str:
    """``studies.csv``: :data:`STUDY_CSV_FIELDS` then one column per class (highest score)."""
    names = list(class_names)
    for st in studies:
        names += [n for n in st['class_scores'] if n not in names]
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow([*STUDY_CSV_FIELDS, *names])
        for st in studies:
            prob: Union[str, float] = '' if st['abnormal_prob'] is None else st['abnormal_prob']
            writer.writerow([st['study_id'], st['study_id_source'], st['n_images'],
                             ';'.join(st['image_ids']), st['rule'], prob,
                             *[st['class_scores'].get(n, 0.0) for n in names]])
    return path
