"""Image-level abnormality dataset of VinDr-SpineXR for MMPretrain (normal vs abnormal).

Reads the converted COCO json (see the data contract in the docs) and labels each image
``1 = abnormal`` (the CSV had lesion rows for it) or ``0 = normal`` ("No finding"). Cross-validation
folds come from :mod:`spinexr.datasets.folds` (which does not import this module);
:func:`make_folds_for_dataset` writes the folds of an annotation file with this dataset's labels.
"""
import json
import os.path as osp
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .folds import make_folds, read_folds, write_folds
from .metainfo import CLASSES, CLS_CLASSES


def _split_of(file_name: str) -> str:
    """``'train/abc.png'`` -> ``'train'``; ``''`` when the file sits at the root."""
    parts = file_name.replace('\\', '/').split('/')
    return parts[0] if len(parts) > 1 else ''


def _image_label(img: dict, lesions: Dict[int, set]) -> int:
    """1 if the image is abnormal: its ``abnormal`` flag, else whether it has annotations."""
    if 'abnormal' in img:
        return int(bool(img['abnormal']))
    return int(bool(lesions.get(img['id'])))


@DATASETS.register_module()
class VinDrSpineXRClsDataset(BaseDataset):
    """Abnormal-vs-normal classification dataset on the converted VinDr-SpineXR layout.

    Every ``data_info`` holds ``img_path``, ``gt_label`` (0 normal / 1 abnormal), ``image_id``
    (32-hex), ``study_id``, ``split`` (the folder of ``file_name``: ``'train'`` or ``'test'``),
    ``coco_id`` and ``lesion_labels`` (0-based lesion class indices present in the image, for
    class-aware samplers).

    The label is the image's ``abnormal`` flag written by the converter; when an image record
    lacks that flag, "has at least one box annotation" is used instead.

    Cross-validation / validation hold-out: pass ``folds`` to keep only the images whose *study*
    belongs to one of those folds. The study -> fold assignment comes from ``fold_file`` (written
    by ``tools/cross_validate.py``) or, without one, is computed from this annotation file with
    :func:`spinexr.datasets.folds.make_folds` (``n_splits``, ``fold_seed``; study-grouped,
    label-stratified, deterministic), so the training config can hold out fold 0 of the train
    split for validation without touching the test split.

    Args:
        ann_file (str): COCO json, e.g. ``'annotations/train.json'`` (relative to ``data_root``).
        data_root (str): Root of the converted layout; ``file_name`` is relative to it.
        data_prefix (str | dict): Image folder prefix relative to ``data_root``. Defaults to ``''``
            because ``file_name`` already starts with ``train/`` or ``test/``.
        folds (Sequence[int], optional): Folds to keep; ``None`` keeps every image.
        fold_file (str, optional): Fold assignment json (study_id -> fold).
        n_splits (int): Number of folds when computing them (no ``fold_file``). Defaults to 5.
        fold_seed (int): Seed when computing them. Defaults to 0.
        metainfo (dict, optional): Defaults to ``dict(classes=CLS_CLASSES)``.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset` (``pipeline``,
            ``test_mode``, ``indices``, ...).
    """

    METAINFO = dict(classes=CLS_CLASSES)

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: str = '',
                 folds: Optional[Sequence[int]] = None,
                 fold_file: Optional[str] = None,
                 n_splits: int = 5,
                 fold_seed: int = 0,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.fold_file = fold_file
        self.folds = None if folds is None else [int(f) for f in folds]
        self.n_splits = int(n_splits)
        self.fold_seed = int(fold_seed)
        if self.folds is not None and fold_file is None and not all(
                0 <= f < self.n_splits for f in self.folds):
            raise ValueError(f'folds {self.folds} out of range for n_splits={self.n_splits}')
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse the COCO json into one ``data_info`` per image (after fold selection)."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'annotation file not found: {self.ann_file}')
        with open(self.ann_file, encoding='utf-8') as f:
            coco = json.load(f)
        for key in ('images', 'annotations', 'categories'):
            if key not in coco:
                raise ValueError(f'{self.ann_file}: not a COCO detection file (no "{key}")')
        cat_to_label = {}
        for cat in coco['categories']:
            if cat['name'] in CLASSES:
                cat_to_label[cat['id']] = CLASSES.index(cat['name'])
        lesions: Dict[int, set] = defaultdict(set)
        for ann in coco['annotations']:
            lesions[ann['image_id']].add(cat_to_label.get(ann['category_id'], -1))

        study_folds = None
        if self.folds is not None:
            if self.fold_file is not None:
                study_folds = read_folds(self.fold_file)
            else:
                labels, studies = [], []
                for img in coco['images']:
                    labels.append(_image_label(img, lesions))
                    studies.append(str(img.get('study_id', img['id'])))
                study_folds = make_folds(labels, studies, n_splits=self.n_splits,
                                         seed=self.fold_seed)
        img_prefix = self.data_prefix.get('img_path', '') or ''
        data_list = []
        for i, img in enumerate(coco['images']):
            for key in ('id', 'file_name', 'study_id'):
                if key not in img:
                    raise ValueError(f'{self.ann_file}: image record #{i} has no "{key}": {img}')
            label = _image_label(img, lesions)
            study_id = str(img['study_id'])
            if study_folds is not None:
                if study_id not in study_folds:
                    raise ValueError(f'{self.fold_file}: study {study_id} (image '
                                     f'{img.get("image_id", img["id"])} of {self.ann_file}) '
                                     'has no fold; the fold file was made for other data')
                if study_folds[study_id] not in self.folds:
                    continue
            data_list.append(
                dict(img_path=osp.join(img_prefix, img['file_name']),
                     gt_label=label,
                     image_id=str(img.get('image_id', img['id'])),
                     study_id=study_id,
                     split=_split_of(img['file_name']),
                     coco_id=int(img['id']),
                     lesion_labels=sorted(v for v in lesions.get(img['id'], ()) if v >= 0)))
        return data_list

    def get_study_ids(self) -> List[str]:
        """Study id of every image, in dataset order."""
        return [self.get_data_info(i)['study_id'] for i in range(len(self))]

    def get_image_ids(self) -> List[str]:
        """32-hex image id of every image, in dataset order."""
        return [self.get_data_info(i)['image_id'] for i in range(len(self))]

    def get_cat_ids(self, idx: int) -> List[int]:
        """Image-level label (0/1) as a one-item list, as mmpretrain's samplers expect."""
        return [int(self.get_data_info(idx)['gt_label'])]

    def get_gt_labels(self) -> np.ndarray:
        """0/1 labels of all images, in dataset order."""
        return np.array([self.get_data_info(i)['gt_label'] for i in range(len(self))],
                        dtype=np.int64)

    def extra_repr(self) -> List[str]:
        body = super().extra_repr()
        if self.folds is not None:
            source = self.fold_file or f'{self.n_splits} computed folds, seed {self.fold_seed}'
            body.append(f'Folds: \t{self.folds} of {source}')
        return body


def make_folds_for_dataset(ann_file: str, out_file: str, n_splits: int = 5, seed: int = 0,
                           data_root: str = '') -> Dict[str, int]:
    """Make and write the folds of a converted COCO annotation file.

    The labels that stratify the folds are the dataset's (:class:`VinDrSpineXRClsDataset`), so
    the folds are the ones the dataset computes itself from the same file, ``n_splits`` and seed.

    Args:
        ann_file (str): COCO json of the converted layout (the training split).
        out_file (str): Output json (:func:`spinexr.datasets.folds.write_folds`).
        n_splits (int): Number of folds.
        seed (int): Random seed.
        data_root (str): Root the ``ann_file`` is relative to.

    Returns:
        dict[str, int]: ``study_id -> fold``.
    """
    dataset = VinDrSpineXRClsDataset(ann_file=ann_file, data_root=data_root, pipeline=[],
                                     serialize_data=False)
    study_ids = dataset.get_study_ids()
    study_fold = make_folds(dataset.get_gt_labels(), study_ids, n_splits=n_splits, seed=seed)
    write_folds(out_file, study_fold, seed=seed, ann_file=dataset.ann_file,
                fold_sizes=dict(sorted(Counter(study_fold[s] for s in study_ids).items())))
    return study_fold
