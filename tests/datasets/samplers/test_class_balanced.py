"""Tests of spinexr.datasets.samplers.class_balanced.ClassBalancedSampler."""
import json
from collections import Counter
from typing import List, Sequence

import numpy as np
import pytest
from mmengine.dataset import BaseDataset, ClassBalancedDataset
from mmengine.registry import DATA_SAMPLERS as ROOT_DATA_SAMPLERS
from mmengine.registry import DefaultScope

from spinexr.datasets.metainfo import CLASSES, DET_METAINFO
from spinexr.datasets.samplers.class_balanced import (NORMAL_NAME, ClassBalancedSampler,
                                                      get_image_labels)
from spinexr.testing import make_tiny_coco

#: Images per class in the real VinDr-SpineXR train split (docs/vindr-spinexr notes), CLASSES order.
VINDR_IMAGES = (3575, 257, 257, 271, 602, 157, 333)
VINDR_N, VINDR_ABNORMAL = 8389, 4129


class LabelListDataset(BaseDataset):
    """An mmengine dataset of label lists only (no images), with mmdet-style ``get_cat_ids``."""

    METAINFO = dict(classes=CLASSES)

    def __init__(self, labels: Sequence[Sequence[int]], classes=CLASSES) -> None:
        self._labels = [list(x) for x in labels]
        super().__init__(ann_file='', metainfo=dict(classes=classes), serialize_data=False)

    def load_data_list(self) -> List[dict]:
        return [dict(labels=x, instances=[dict(bbox_label=c) for c in x]) for x in self._labels]

    def get_cat_ids(self, idx: int) -> List[int]:
        return list(self.get_data_info(idx)['labels'])


def vindr_like_labels(seed: int = 0) -> List[List[int]]:
    """8,389 label sets with the exact per-class image counts of the VinDr-SpineXR train split
    (4,260 normal images; co-occurrence of classes random but fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    labels = [set() for _ in range(VINDR_N)]
    for i in range(VINDR_IMAGES[0]):
        labels[i].add(0)
    slots = [k for k in range(1, 7) for _ in range(VINDR_IMAGES[k])]
    rng.shuffle(slots)
    n_no_ost = VINDR_ABNORMAL - VINDR_IMAGES[0]
    for i, k in zip(range(VINDR_IMAGES[0], VINDR_ABNORMAL), slots[:n_no_ost]):
        labels[i].add(k)
    for k in slots[n_no_ost:]:
        while True:
            i = int(rng.integers(VINDR_ABNORMAL))
            if k not in labels[i]:
                labels[i].add(k)
                break
    return [sorted(labels[j]) for j in rng.permutation(VINDR_N)]


def formula_probs(labels, exponent=0.5, reduce='max', normal='class') -> np.ndarray:
    """Independent re-implementation of the documented formula."""
    n = len(labels)
    cnt = Counter()
    for x in labels:
        cnt.update(set(x) if x else {'normal'})
    w = []
    for x in labels:
        if not x:
            w.append((cnt['normal'] / n)**-exponent if normal == 'class' else normal)
        else:
            ws = [(cnt[c] / n)**-exponent for c in set(x)]
            w.append(max(ws) if reduce == 'max' else np.mean(ws))
    w = np.asarray(w, float)
    return w / w.sum()


SMALL = [[0, 0, 0], [0], [0, 1], [], [], [2], [0, 3], [], [0], [0, 0]]


@pytest.mark.parametrize('reduce,normal,exponent', [('max', 'class', 0.5), ('mean', 'class', 0.5),
                                                     ('max', 1.0, 1.0), ('max', 0.0, 0.5)])
def test_probs_match_formula(reduce, normal, exponent):
    s = ClassBalancedSampler(LabelListDataset(SMALL), reduce=reduce, normal=normal,
                             exponent=exponent, seed=0)
    np.testing.assert_allclose(s.probs, formula_probs(SMALL, exponent, reduce, normal), rtol=1e-12)
    if normal == 0.0:
        assert s.probs[[3, 4, 7]].sum() == 0


def test_empirical_distribution_and_shares():
    s = ClassBalancedSampler(LabelListDataset(SMALL), epoch_length=200_000, seed=3)
    counts = np.bincount(list(s), minlength=len(SMALL)) / 200_000
    np.testing.assert_allclose(counts, s.probs, atol=4e-3)  # ~4 sigma for p<=0.2
    shares = s.class_shares()
    # before = uniform: class 0 is in 6 of 10 images, 'normal' in 3; after: sum of probs
    assert shares['image_before'][0] == pytest.approx(0.6)
    assert shares['image_before'][NORMAL_NAME] == pytest.approx(0.3)
    assert shares['image_after'][3] == pytest.approx(s.probs[6])
    assert shares['box_before'][0] == pytest.approx(9 / 12)
    assert sum(shares['box_after'].values()) == pytest.approx(1.0)
    # balancing lifts every rare class and lowers the frequent one
    assert shares['image_after'][2] > shares['image_before'][2]
    assert shares['image_after'][0] < shares['image_before'][0]
    # exponent 0 = uniform
    s0 = ClassBalancedSampler(LabelListDataset(SMALL), exponent=0.0, seed=0, log=False)
    np.testing.assert_allclose(s0.probs, 0.1)


def test_deterministic_seed_epoch_and_fixed_length():
    ds = LabelListDataset(SMALL)
    a, b = ClassBalancedSampler(ds, seed=7, log=False), ClassBalancedSampler(ds, seed=7, log=False)
    assert list(a) == list(b)
    assert len(list(a)) == len(a) == len(SMALL)
    e0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != e0
    assert list(ClassBalancedSampler(ds, seed=8, log=False)) != e0
    c = ClassBalancedSampler(ds, seed=7, epoch_length=23, log=False)
    assert len(c) == 23 and len(list(c)) == 23
    c.set_epoch(5)
    assert len(list(c)) == 23


def test_logs_shares(capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('spinexr_test_sampler', log_level='INFO')
    ClassBalancedSampler(LabelListDataset(SMALL), seed=0)
    out = capsys.readouterr()
    text = out.out + out.err
    assert 'ClassBalancedSampler' in text and 'Osteophytes' in text and NORMAL_NAME in text


def test_bad_arguments():
    ds = LabelListDataset(SMALL)
    with pytest.raises(ValueError, match='reduce'):
        ClassBalancedSampler(ds, reduce='min', seed=0)
    with pytest.raises(ValueError, match='normal'):
        ClassBalancedSampler(ds, normal='skip', seed=0)
    with pytest.raises(ValueError, match='all image weights are zero'):
        ClassBalancedSampler(LabelListDataset([[], []]), normal=0.0, seed=0, log=False)


DDP_LABELS = [[0, 0, 0], [0], [0, 1], [], [], [2], [0, 3], [], [0], [0, 0], [5]]


def _ddp_worker(rank: int, port: int, out: str) -> None:
    """One rank of the gloo test (runs in a forked process)."""
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    try:
        res = {}
        for epoch in (0, 1):
            # seed=None: the seed is synchronised from rank 0 (mmengine.dist.sync_random_seed)
            s = ClassBalancedSampler(LabelListDataset(DDP_LABELS), seed=None if epoch == 0 else 11,
                                     log=False)
            assert (s.rank, s.world_size) == (rank, 2)
            s.set_epoch(epoch)
            res[epoch] = dict(mine=list(s), full=s.full_sequence(), len=len(s), seed=s.seed)
        with open(f'{out}/rank{rank}.json', 'w') as f:
            json.dump(res, f)
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_gloo(tmp_path):
    """Two real processes (gloo, CPU) draw one sequence and take disjoint interleaved parts."""
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    # fork: the children inherit the imported modules, so the test takes seconds, not minutes
    mp.start_processes(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True,
                       start_method='fork')
    r0 = json.loads((tmp_path / 'rank0.json').read_text())
    r1 = json.loads((tmp_path / 'rank1.json').read_text())
    for epoch in ('0', '1'):
        a, b = r0[epoch], r1[epoch]
        assert a['seed'] == b['seed']
        assert a['full'] == b['full'] and len(a['full']) == 12  # 11 padded to 2 x 6
        assert a['len'] == b['len'] == 6 == len(a['mine']) == len(b['mine'])
        assert a['mine'] == a['full'][0::2] and b['mine'] == b['full'][1::2]
        # disjoint positions of one sequence: interleaving the ranks rebuilds it
        merged = [x for pair in zip(a['mine'], b['mine']) for x in pair]
        assert merged == a['full']
    assert r0['0']['full'] != r0['1']['full']
    # the single-process sampler with the same seed draws the same sequence
    single = ClassBalancedSampler(LabelListDataset(DDP_LABELS), seed=11, log=False)
    single.set_epoch(1)
    assert single.full_sequence() == r0['1']['full'][:11]


def test_detection_dataset(tmp_path):
    """On a real mmdet dataset (VinDrSpineXRDataset on make_tiny_coco), built from the registry."""
    make_tiny_coco(str(tmp_path), num_images=12, seed=4)
    from mmdet.registry import DATASETS
    import spinexr.datasets.vindr_det  # noqa: F401  (registers VinDrSpineXRDataset)
    ds = DATASETS.build(
        dict(type='VinDrSpineXRDataset', data_root=str(tmp_path), ann_file='annotations/train.json',
             data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False), pipeline=[]))
    coco = json.loads((tmp_path / 'annotations/train.json').read_text())
    labels = get_image_labels(ds)
    assert sum(map(len, labels)) == len(coco['annotations'])
    with DefaultScope.overwrite_default_scope('mmdet'):
        s = ROOT_DATA_SAMPLERS.build(dict(type='ClassBalancedSampler'),
                                     default_args=dict(dataset=ds, seed=0))
    assert isinstance(s, ClassBalancedSampler)
    np.testing.assert_allclose(s.probs, formula_probs(labels))
    assert len(list(s)) == len(ds)
    assert s.class_names == DET_METAINFO['classes']


def test_classification_dataset(tmp_path):
    """On the mmpretrain classification dataset, resolved from an mmpretrain-scoped config."""
    make_tiny_coco(str(tmp_path), num_images=12, seed=5, normal_share=0.5)
    from mmpretrain.registry import DATASETS
    import spinexr.datasets.vindr_cls  # noqa: F401  (registers VinDrSpineXRClsDataset)
    ds = DATASETS.build(dict(type='VinDrSpineXRClsDataset', data_root=str(tmp_path),
                             ann_file='annotations/train.json', pipeline=[]))
    gt = ds.get_gt_labels()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        s = ROOT_DATA_SAMPLERS.build(dict(type='ClassBalancedSampler', exponent=1.0),
                                     default_args=dict(dataset=ds, seed=0))
    # exponent 1 on two classes: normal and abnormal each get half of the draws
    shares = s.class_shares()['image_after']
    assert shares[0] == pytest.approx(0.5) and shares[1] == pytest.approx(0.5)
    assert 0 < (gt == 0).sum() < len(gt)
    # balancing by lesion classes instead (label_key): normal images form the pseudo-class
    s2 = ClassBalancedSampler(ds, label_key='lesion_labels', class_names=CLASSES, seed=0)
    lesion = [ds.get_data_info(i)['lesion_labels'] for i in range(len(ds))]
    np.testing.assert_allclose(s2.probs, formula_probs(lesion))


def test_comparison_with_openmmlab_samplers():
    """Expected share of drawn images that contain the rarest class, Vertebral collapse (VC), and
    that are normal, on a label set with the real VinDr-SpineXR train image counts per class
    (8,389 images, 4,260 normal; co-occurrence random with seed 0):

    ======================================================  ========  ========  ============
    sampler                                                 VC share  normal    epoch length
    ======================================================  ========  ========  ============
    uniform (DefaultSampler)                                  1.87 %   50.8 %          8,389
    ClassBalancedSampler (1/sqrt(f), max, normal='class')     6.36 %   33.1 %          8,389
    ClassBalancedSampler (same, normal=1.0)                   7.03 %   26.1 %          8,389
    mmengine ClassBalancedDataset(oversample_thr=0.05)        3.30 %   44.7 %          9,521
    mmengine ClassBalancedDataset(oversample_thr=1.0)         6.89 %   23.4 %         18,240
    mmdet ClassAwareSampler                                  16.9 %     0   %          8,389
    ======================================================  ========  ========  ============

    The differences: the repeat-factor dataset (RFS) oversamples only classes below
    ``oversample_thr`` (VinDr's rarest class has f = 1.87 %, so the LVIS value 1e-3 changes
    nothing) and rounds factors up to integers, which quantises the weights and lengthens the epoch
    (x2.2 at thr=1). At thr=1 its factors are 1/sqrt(f) like ours, with normal images at factor 1:
    that is our ``normal=1.0``, and the ceil alone moves VC from 7.03 % to 6.89 %. mmdet's
    ClassAwareSampler draws a class uniformly (1/7 each, plus co-occurrence) and never draws the
    normal images, which a detector needs as negatives; ours keeps them at a share set by their own
    frequency (or a fixed weight) with an unchanged epoch length.
    """
    labels = vindr_like_labels(0)
    ds = LabelListDataset(labels)
    n = len(labels)
    vc = CLASSES.index('Vertebral collapse')
    uniform = sum(vc in x for x in labels) / n
    assert uniform == pytest.approx(157 / 8389)

    shares = ClassBalancedSampler(ds, seed=0).class_shares()['image_after']
    ours, ours_normal = shares[vc], shares[NORMAL_NAME]
    shares1 = ClassBalancedSampler(ds, normal=1.0, seed=0, log=False).class_shares()['image_after']

    def rfs_share(thr):
        cbd = ClassBalancedDataset(ds, oversample_thr=thr)
        drawn = [labels[i] for i in cbd.repeat_indices]
        return (sum(vc in x for x in drawn) / len(cbd), sum(not x for x in drawn) / len(cbd),
                len(cbd))

    rfs05, rfs05_normal, len05 = rfs_share(0.05)
    rfs1, rfs1_normal, len1 = rfs_share(1.0)
    assert rfs_share(1e-3)[0] == pytest.approx(uniform)  # nothing is below 1e-3 in VinDr
    assert rfs_share(1e-3)[2] == n

    from mmdet.datasets.samplers import ClassAwareSampler
    cas = ClassAwareSampler(ds, seed=0)
    drawn = []
    for epoch in range(3):
        cas.set_epoch(epoch)
        drawn.extend(cas)
    cas_share = np.mean([vc in labels[i] for i in drawn])
    cas_normal = np.mean([not labels[i] for i in drawn])
    # analytic expectation of class-aware sampling: mean over classes k of P(VC | image has k)
    per_class = [[i for i, x in enumerate(labels) if k in x] for k in range(7)]
    cas_expected = np.mean([np.mean([vc in labels[i] for i in imgs]) for imgs in per_class])

    print(f'\nVC share: uniform {uniform:.4f}, ours {ours:.4f} (normal {ours_normal:.3f}), '
          f'ours normal=1 {shares1[vc]:.4f} (normal {shares1[NORMAL_NAME]:.3f}), '
          f'RFS(0.05) {rfs05:.4f} (normal {rfs05_normal:.3f}, len {len05}), '
          f'RFS(1.0) {rfs1:.4f} (normal {rfs1_normal:.3f}, len {len1}), '
          f'CAS {cas_share:.4f} (expected {cas_expected:.4f}, normal {cas_normal:.3f})')
    assert ours == pytest.approx(0.0636, abs=5e-4) and ours_normal == pytest.approx(0.331, abs=1e-3)
    assert shares1[vc] == pytest.approx(0.0703, abs=5e-4)
    assert shares1[NORMAL_NAME] == pytest.approx(0.261, abs=1e-3)
    assert rfs05 == pytest.approx(0.0330, abs=5e-4) and len05 == 9521
    assert rfs05_normal == pytest.approx(0.447, abs=1e-3)
    assert rfs1 == pytest.approx(0.0689, abs=5e-4) and len1 == 18240
    assert rfs1_normal == pytest.approx(0.234, abs=1e-3)
    assert cas_share == pytest.approx(cas_expected, abs=0.01)
    assert cas_expected == pytest.approx(0.169, abs=1e-3)
    assert cas_normal == 0.0
    # the ordering stated in the docstring and in docs/imbalance.md
    assert uniform < rfs05 < ours < rfs1 < shares1[vc] < cas_share
