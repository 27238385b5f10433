"""Class-balanced image sampler: draw images with probability derived from their classes' frequency.

VinDr-SpineXR is heavily imbalanced (Osteophytes : Vertebral collapse = 46.9 : 1 in boxes), so a
uniform sampler shows the rare lesions a handful of times per epoch. :class:`ClassBalancedSampler`
gives every image a weight from the (image-level) frequencies of the classes it contains and draws a
fixed-length epoch *with replacement* from that distribution.

Weights (defaults in brackets)::

    f_c   = (# images containing class c) / (# images)          image-level class frequency
    w_c   = f_c ** (-exponent)                                   [exponent = 0.5 -> 1 / sqrt(f_c)]
    w_i   = reduce_{c in image i} w_c                            [reduce = 'max'; or 'mean']
    p_i   = w_i / sum_j w_j

Images without any label ("No finding" images in the detection dataset) either form a
pseudo-class of their own (``normal='class'``, the default: their frequency is the share of normal
images) or get a fixed weight (``normal=<float>``, in the same units as ``w_c``: ``1.0`` means "as
a class present in every image", i.e. not up-weighted; ``0.0`` means never drawn, as mmdet's
``ClassAwareSampler`` does).
In the classification dataset (``gt_label`` 0 normal / 1 abnormal) both labels are ordinary classes.

How it differs from the two OpenMMLab alternatives (see ``docs/imbalance.md``):

* mmengine's ``ClassBalancedDataset`` repeats each image ``ceil(max(1, sqrt(t / f_c)))`` times
  (repeat-factor sampling): the epoch grows, classes above ``oversample_thr`` are not touched and
  the ceil quantises the factors. Here the epoch length stays fixed and the weights are exact.
* mmdet's ``ClassAwareSampler`` first picks a class uniformly, then an image of that class: every
  class gets the same share (exponent 1 in spirit) and images without boxes are never drawn.
"""
import math
from collections import Counter
from typing import Dict, Iterator, List, Optional, Sequence, Sized, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import Sampler

from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS

#: Name used for the pseudo-class of images without labels in logs and :meth:`class_shares`.
NORMAL_NAME = '(no label)'


def get_image_labels(dataset: Sized, label_key: Optional[str] = None) -> List[List[int]]:
    """Read the labels of every image of a dataset, one list per index (duplicates kept).

    With ``label_key``, the labels are ``dataset.get_data_info(idx)[label_key]`` (for example the
    ``lesion_labels`` of ``VinDrSpineXRClsDataset``, to balance a classifier by lesion class).
    Otherwise it handles the OpenMMLab dataset interfaces without loading images:

    * mmdet ``BaseDetDataset.get_cat_ids(idx)``: the ``bbox_label`` of every instance;
    * mmpretrain ``BaseDataset.get_cat_ids(idx)`` (``[gt_label]``) or ``get_gt_labels()``;
    * mmengine dataset wrappers (``ConcatDataset``, ``RepeatDataset``, ...) that forward
      ``get_cat_ids``;
    * as a fallback, ``get_data_info(idx)`` with ``instances[*]['bbox_label']`` or ``gt_label``.

    Args:
        dataset (Sized): The dataset.
        label_key (str, optional): Key of ``get_data_info(idx)`` holding the labels.

    Returns:
        list[list[int]]: Labels per image; an empty list for an image without labels.

    Raises:
        TypeError: If the dataset offers none of these interfaces.
    """
    n = len(dataset)
    if label_key is not None:
        out = []
        for i in range(n):
            info = dataset.get_data_info(i)
            if label_key not in info:
                raise KeyError(f"get_data_info({i}) of {type(dataset).__name__} has no "
                               f"'{label_key}'; keys: {sorted(info)}")
            out.append([int(c) for c in np.asarray(info[label_key]).reshape(-1)])
        return out
    if hasattr(dataset, 'get_cat_ids'):
        return [[int(c) for c in np.asarray(dataset.get_cat_ids(i)).reshape(-1)] for i in range(n)]
    if hasattr(dataset, 'get_gt_labels'):
        gt = dataset.get_gt_labels()
        return [[int(c) for c in np.asarray(g).reshape(-1)] for g in gt]
    if hasattr(dataset, 'get_data_info'):
        out = []
        for i in range(n):
            info = dataset.get_data_info(i)
            if 'instances' in info:
                out.append([int(inst['bbox_label']) for inst in info['instances']])
            elif 'gt_label' in info:
                out.append([int(c) for c in np.asarray(info['gt_label']).reshape(-1)])
            else:
                raise TypeError(f'get_data_info({i}) of {type(dataset).__name__} has neither '
                                f"'instances' nor 'gt_label'; keys: {sorted(info)}")
        return out
    raise TypeError(f'{type(dataset).__name__} offers no get_cat_ids / get_gt_labels / '
                    'get_data_info, so ClassBalancedSampler cannot read its labels')


@MMDET_DATA_SAMPLERS.register_module()
class ClassBalancedSampler(Sampler):
    """Weighted sampling with replacement, weight per image from its classes' frequencies.

    Deterministic for ``seed + epoch`` (:meth:`set_epoch` is called by mmengine's
    ``DistSamplerSeedHook``, part of mmdet's and mmpretrain's default runtime). Under DDP all
    ranks draw the same full sequence of ``epoch_length`` indices (padded by wrapping around to a
    multiple of the world size) and rank ``r`` takes ``sequence[r::world_size]``, so the ranks see
    disjoint parts of one sample. Registered in mmdet's and mmpretrain's ``DATA_SAMPLERS``.

    Example (any config)::

        train_dataloader = dict(
            sampler=dict(type='ClassBalancedSampler', exponent=0.5, reduce='max', normal='class'))

    Args:
        dataset (Sized): The dataset (see :func:`get_image_labels` for what it must offer).
        exponent (float): ``w_c = f_c ** -exponent``; 0 = uniform, 0.5 = 1/sqrt(f), 1 = 1/f.
            Defaults to 0.5.
        reduce (str): How an image's class weights combine: ``'max'`` or ``'mean'`` (over its
            distinct classes). Defaults to ``'max'``.
        normal (str | float): Images without labels: ``'class'`` = a pseudo-class with its own
            frequency; a float = fixed weight in the units of ``w_c`` (``0.0`` never draws them).
            Defaults to ``'class'``.
        epoch_length (int, optional): Indices drawn per epoch over all ranks; defaults to
            ``len(dataset)``.
        seed (int, optional): Random seed, identical on all ranks; None = a synchronised random
            seed. Defaults to None.
        label_key (str, optional): Read the labels from ``get_data_info(idx)[label_key]`` instead
            of ``get_cat_ids`` (e.g. ``'lesion_labels'`` of the classification dataset).
            Defaults to None.
        class_names (Sequence[str], optional): Names for the log; defaults to the dataset's
            ``metainfo['classes']`` (ignored then with ``label_key``).
        log (bool): Log the class shares before and after balancing at construction.
            Defaults to True.
    """

    def __init__(self,
                 dataset: Sized,
                 exponent: float = 0.5,
                 reduce: str = 'max',
                 normal: Union[str, float] = 'class',
                 epoch_length: Optional[int] = None,
                 seed: Optional[int] = None,
                 label_key: Optional[str] = None,
                 class_names: Optional[Sequence[str]] = None,
                 log: bool = True) -> None:
        if reduce not in ('max', 'mean'):
            raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
        if isinstance(normal, str) and normal != 'class':
            raise ValueError(f"normal must be 'class' or a float weight >= 0, got {normal!r}")
        if not isinstance(normal, str) and float(normal) < 0:
            raise ValueError(f'normal weight must be >= 0, got {normal}')
        if exponent < 0:
            raise ValueError(f'exponent must be >= 0, got {exponent}')
        rank, world_size = get_dist_info()
        self.rank, self.world_size = rank, world_size
        self.dataset = dataset
        self.exponent = float(exponent)
        self.reduce = reduce
        self.normal = normal
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        n = len(dataset)
        if n == 0:
            raise ValueError('ClassBalancedSampler got an empty dataset')
        self.epoch_length = n if epoch_length is None else int(epoch_length)
        if self.epoch_length <= 0:
            raise ValueError(f'epoch_length must be > 0, got {epoch_length}')
        self.num_samples = math.ceil(self.epoch_length / world_size)
        self.total_size = self.num_samples * world_size

        self.label_key = label_key
        if class_names is None and label_key is None:
            class_names = getattr(dataset, 'metainfo', {}).get('classes')
        self.class_names = None if class_names is None else tuple(class_names)
        self.image_labels = get_image_labels(dataset, label_key=label_key)
        self.class_freq = self._class_frequencies(self.image_labels)
        weights = self._image_weights()
        if not np.isfinite(weights).all() or weights.sum() <= 0:
            raise ValueError('ClassBalancedSampler: all image weights are zero (e.g. normal=0.0 '
                             'on a dataset without labels)')
        #: Sampling probability of each dataset index (sums to 1).
        self.probs = weights / weights.sum()
        self._probs_t = torch.as_tensor(self.probs, dtype=torch.float64)
        if log:
            self.log_shares()

    # ------------------------------------------------------------------ weights
    @staticmethod
    def _class_frequencies(image_labels: Sequence[Sequence[int]]) -> Dict[Union[int, str], float]:
        """Image-level frequency of every class present, plus :data:`NORMAL_NAME` if any."""
        n = len(image_labels)
        counts: Counter = Counter()
        for labels in image_labels:
            counts.update(set(labels) if labels else {NORMAL_NAME})
        return {c: counts[c] / n for c in counts}

    def _class_weight(self, c: Union[int, str]) -> float:
        return self.class_freq[c] ** (-self.exponent)

    def _image_weights(self) -> np.ndarray:
        weights = np.empty(len(self.image_labels), dtype=np.float64)
        for i, labels in enumerate(self.image_labels):
            if not labels:
                weights[i] = (self._class_weight(NORMAL_NAME)
                              if self.normal == 'class' else float(self.normal))
                continue
            ws = [self._class_weight(c) for c in set(labels)]
            weights[i] = max(ws) if self.reduce == 'max' else sum(ws) / len(ws)
        return weights

    # ------------------------------------------------------------------ statistics
    def class_shares(self) -> Dict[str, Dict[Union[int, str], float]]:
        """Expected class shares under uniform sampling ("before") and under this sampler ("after").

        Returns:
            dict: ``image_before`` / ``image_after``: share of drawn images that contain the class;
            ``box_before`` / ``box_after``: share of drawn labels (boxes) that belong to the class
            (equal to the image shares in a single-label classification dataset). Keys of the inner
            dicts are label indices and :data:`NORMAL_NAME`.
        """
        uniform = np.full(len(self.image_labels), 1.0 / len(self.image_labels))
        out = {}
        for tag, p in (('before', uniform), ('after', self.probs)):
            img_share: Dict[Union[int, str], float] = {c: 0.0 for c in self.class_freq}
            box_mass: Dict[Union[int, str], float] = {
                c: 0.0 for c in self.class_freq if c != NORMAL_NAME}
            for pi, labels in zip(p, self.image_labels):
                for c in (set(labels) if labels else {NORMAL_NAME}):
                    img_share[c] += pi
                for c in labels:
                    box_mass[c] += pi
            total = sum(box_mass.values())
            out[f'image_{tag}'] = img_share
            out[f'box_{tag}'] = {c: (v / total if total > 0 else 0.0) for c, v in box_mass.items()}
        return out

    def _class_name(self, c: Union[int, str]) -> str:
        names = self.class_names
        if isinstance(c, int) and names is not None and 0 <= c < len(names):
            return str(names[c])
        return str(c)

    def log_shares(self) -> None:
        """Log the class shares before and after balancing to the current MMLogger."""
        s = self.class_shares()
        keys = sorted(self.class_freq, key=lambda c: (isinstance(c, str), c))
        lines = [
            f'ClassBalancedSampler: {len(self.image_labels)} images, exponent={self.exponent}, '
            f'reduce={self.reduce}, normal={self.normal}, epoch_length={self.epoch_length}, '
            f'world_size={self.world_size}',
            f'{"class":<24}{"img share":>10}{"-> after":>10}{"box share":>11}{"-> after":>10}'
        ]
        for c in keys:
            box_b = s['box_before'].get(c)
            box_a = s['box_after'].get(c)
            box = (f'{box_b:>11.4f}{box_a:>10.4f}' if box_b is not None else f'{"-":>11}{"-":>10}')
            lines.append(f'{self._class_name(c)[:23]:<24}{s["image_before"][c]:>10.4f}'
                         f'{s["image_after"][c]:>10.4f}{box}')
        print_log('\n'.join(lines), logger='current')

    # ------------------------------------------------------------------ sampling
    def full_sequence(self) -> List[int]:
        """The sequence of all ranks for the current epoch (``total_size`` indices)."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self._probs_t, self.epoch_length, replacement=True,
                                generator=g).tolist()
        if self.total_size > len(idx):  # pad by wrapping around, like mmengine's DefaultSampler
            idx = (idx * math.ceil(self.total_size / len(idx)))[:self.total_size]
        return idx

    def __iter__(self) -> Iterator[int]:
        return iter(self.full_sequence()[self.rank:self.total_size:self.world_size])

    def __len__(self) -> int:
        """Number of indices this rank yields per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; the draw depends on ``seed + epoch``.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch


def _register_in_mmpretrain() -> None:
    """Also register in mmpretrain's ``DATA_SAMPLERS``: classification configs run with
    ``default_scope='mmpretrain'``, whose registry (a sibling of mmdet's under mmengine's root) does
    not see mmdet's entries."""
    from mmpretrain.registry import DATA_SAMPLERS as MMPRETRAIN_DATA_SAMPLERS
    if 'ClassBalancedSampler' not in MMPRETRAIN_DATA_SAMPLERS.module_dict:
        MMPRETRAIN_DATA_SAMPLERS.register_module(module=ClassBalancedSampler)


_register_in_mmpretrain()
