"""Contract cases for the data side: transforms, datasets, the sampler and the collate function.

Each case takes ``(entry, request)``, builds the registered component through ``entry.registry``
and runs it on a small sample; ``request`` gives fixtures (``tiny_coco``, ``tmp_path``) on demand.
:data:`CASES` maps registered names to cases; ``test_registry_contract.py`` runs them.
"""
from typing import Callable, Dict

import numpy as np
from mmengine.registry import DefaultScope

from contract._contract_helpers import build, packed


def _det_sample(h: int = 96, w: int = 128, seed: int = 0) -> dict:
    from mmdet.structures.bbox import HorizontalBoxes
    rng = np.random.default_rng(seed)
    boxes = np.array([[10., 12., 50., 60.], [60., 40., 100., 90.]], np.float32)
    return dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_shape=(h, w),
                ori_shape=(h, w), img_path=f'/nowhere/{seed}.png', sample_idx=seed,
                gt_bboxes=HorizontalBoxes(boxes), gt_bboxes_labels=np.array([0, 3]),
                gt_ignore_flags=np.zeros(2, dtype=bool))


def _assert_boxes_inside(out: dict) -> None:
    h, w = out['img'].shape[:2]
    boxes = out['gt_bboxes'].numpy()
    assert len(boxes) == len(out['gt_bboxes_labels']) == len(out['gt_ignore_flags'])
    assert (boxes[:, :2] >= -1e-3).all() and (boxes[:, 2] <= w + 1e-3).all()
    assert (boxes[:, 3] <= h + 1e-3).all()


def _det_dataset(root, pipeline=()) -> object:
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(
            type='VinDrSpineXRDataset', data_root=str(root), ann_file='annotations/train.json',
            data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
            pipeline=list(pipeline)))


def _cls_dataset(root) -> object:
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(dict(type='VinDrSpineXRClsDataset', data_root=str(root),
                                   ann_file='annotations/train.json', pipeline=[]))


# ----------------------------------------------------------------------------------- cases
def case_random_affine(entry, request):
    import random
    random.seed(0)
    t = build(entry, dict(max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5)))
    out = t(_det_sample())
    assert out['img'].shape == (96, 128, 3) and out['img'].dtype == np.uint8
    _assert_boxes_inside(out)


def case_fit_mosaic_canvas(entry, request):
    out = build(entry, dict(scale=(64, 48)))(_det_sample())
    assert out['img'].shape == (48, 64, 3)
    _assert_boxes_inside(out)


def case_hsv(entry, request):
    np.random.seed(0)
    sample = _det_sample()
    before = sample['img'].copy()
    out = build(entry, dict(hue_gain=0.015, saturation_gain=0.7, value_gain=0.4))(sample)
    assert out['img'].shape == before.shape and out['img'].dtype == np.uint8
    assert not np.array_equal(out['img'], before)


def case_cached_mosaic(entry, request):
    np.random.seed(0)
    # mmdet's CachedMosaic passes samples through until its cache holds more than 4
    t = build(entry, dict(img_scale=(64, 64), max_cached_images=5, random_pop=False))
    outs = [t(_det_sample(96, 128, seed)) for seed in range(6)]
    assert outs[-1]['img'].shape == (128, 128, 3)  # a 2 x 2 mosaic of 64 x 64 tiles
    _assert_boxes_inside(outs[-1])


def case_box_copy_paste(entry, request):
    root = request.getfixturevalue('tiny_coco')
    t = build(entry, dict(ann_file='annotations/train.json', data_root=str(root), prob=1.0,
                           rare_thr=1.0, seed=0))
    dataset = _det_dataset(root, [dict(type='LoadImageFromFile'),
                                  dict(type='LoadAnnotations', with_bbox=True)])
    grown = 0
    for i in range(len(dataset)):
        sample = dataset[i]
        n = len(sample['gt_bboxes'])
        out = t(sample)
        _assert_boxes_inside(out)
        grown += len(out['gt_bboxes']) > n
    assert grown > 0


def case_load_dicom(entry, request):
    from spinexr.io import write_dicom
    path = request.getfixturevalue('tmp_path') / 'a.dicom'
    arr = np.random.default_rng(0).integers(0, 4096, size=(40, 32)).astype(np.uint16)
    write_dicom(path, arr, bits_stored=12, window=(2047.5, 4095))
    out = build(entry, dict(color_type='color'))(dict(img_path=str(path)))
    assert out['img'].shape == (40, 32, 3) and out['img'].dtype == np.uint8
    assert out['ori_shape'] == (40, 32)


def case_class_balanced_sampler(entry, request):
    root = request.getfixturevalue('tiny_coco')
    dataset = _det_dataset(root) if entry.scope == 'mmdet' else _cls_dataset(root)
    sampler = build(entry, dict(seed=0, log=False), dataset=dataset)
    indices = list(iter(sampler))
    assert len(indices) == len(sampler) == len(dataset)
    assert all(isinstance(i, int) and 0 <= i < len(dataset) for i in indices)


def case_det_dataset(entry, request):
    root = request.getfixturevalue('tiny_coco')
    with DefaultScope.overwrite_default_scope(entry.scope):
        dataset = entry.registry.build(dict(
            type=entry.name, data_root=str(root), ann_file='annotations/train.json',
            data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                      dict(type='PackDetInputs')]))
    assert len(dataset) == 8 and len(dataset.metainfo['classes']) == 7
    item = dataset[0]
    assert item['inputs'].shape == (3, 96, 128)
    assert len(item['data_samples'].gt_instances) >= 1  # image 0 is always abnormal


def case_cls_dataset(entry, request):
    root = request.getfixturevalue('tiny_coco')
    dataset = build(entry, dict(data_root=str(root), ann_file='annotations/train.json',
                                 pipeline=[dict(type='LoadImageFromFile'),
                                           dict(type='PackInputs')]))
    assert len(dataset) == 8 and set(dataset.get_gt_labels().tolist()) <= {0, 1}
    assert dataset[0]['inputs'].shape == (3, 96, 128)


def case_yolo_collate(entry, request):
    collate = entry.registry.get(entry.name)
    batch = collate([packed(0, 64), packed(1, 40)])
    assert batch['inputs'].shape == (2, 3, 64, 64)  # padded to the largest, a multiple of 32
    assert (batch['inputs'][1, :, 40:, :] == 114).all()
    assert len(batch['data_samples']) == 2


#: Registered name -> case. A name registered in several registries (mmdet's and mmpretrain's)
#: runs its case once per registry.
CASES: Dict[str, Callable] = {
    # transforms
    'YOLORandomAffine': case_random_affine,
    'FitMosaicCanvas': case_fit_mosaic_canvas,
    'UltralyticsHSVRandomAug': case_hsv,
    'YOLOCachedMosaic': case_cached_mosaic,
    'BoxCopyPaste': case_box_copy_paste,
    'LoadDicomFromFile': case_load_dicom,
    # datasets, sampler, collate
    'VinDrSpineXRDataset': case_det_dataset,
    'VinDrSpineXRClsDataset': case_cls_dataset,
    'ClassBalancedSampler': case_class_balanced_sampler,
    'yolo_collate': case_yolo_collate,
}
