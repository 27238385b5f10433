"""Tests of spinexr.datasets.transforms.copy_paste.BoxCopyPaste."""
import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from spinexr.datasets.metainfo import CLASSES
from spinexr.datasets.transforms.copy_paste import BoxCopyPaste, feather_mask
from spinexr.testing import make_tiny_coco

OST, SI, VC = (CLASSES.index(n) for n in ('Osteophytes', 'Surgical implant', 'Vertebral collapse'))
SRC_BOX = (60, 60, 100, 100)  # VC box in the 200x200 source (orig 400x400: 0.5 px per orig px)
DEST_BG, SRC_BG = 40, 120


def _write_dataset(root: Path) -> str:
    """src.png (200x200, orig 400x400) holds a VC lesion with a dark cross, 20 Ost and 2 SI boxes;
    dest.png (100x100, orig 400x400: half the source's px per orig px) is flat with one Ost box."""
    (root / 'train').mkdir(parents=True)
    (root / 'annotations').mkdir()
    src = np.full((200, 200), SRC_BG, np.uint8)
    x1, y1, x2, y2 = SRC_BOX
    src[y1:y2, x1:x2] = 220
    src[y1 + 18:y1 + 22, x1:x2] = 30
    src[y1:y2, x1 + 18:x1 + 22] = 30
    cv2.imwrite(str(root / 'train/src.png'), src)
    cv2.imwrite(str(root / 'train/dest.png'), np.full((100, 100), DEST_BG, np.uint8))
    anns = [dict(id=1, image_id=1, category_id=VC + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                 area=1600.0, iscrowd=0)]
    for k in range(20):
        anns.append(dict(id=2 + k, image_id=1, category_id=OST + 1,
                         bbox=[150.0, 5.0 + 9 * k, 8.0, 8.0], area=64.0, iscrowd=0))
    for k in range(2):
        anns.append(dict(id=30 + k, image_id=1, category_id=SI + 1,
                         bbox=[5.0, 120.0 + 30 * k, 20.0, 20.0], area=400.0, iscrowd=0))
    anns.append(dict(id=40, image_id=2, category_id=OST + 1, bbox=[5.0, 5.0, 20.0, 20.0],
                     area=400.0, iscrowd=0))
    coco = dict(images=[dict(id=1, file_name='train/src.png', width=200, height=200,
                             orig_width=400, orig_height=400),
                        dict(id=2, file_name='train/dest.png', width=100, height=100,
                             orig_width=400, orig_height=400)],
                annotations=anns,
                categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)])
    (root / 'annotations/train.json').write_text(json.dumps(coco))
    return str(root)


def _dest_results(root: str, boxes=((5, 5, 25, 25), ), color: bool = False) -> dict:
    img = cv2.imread(f'{root}/train/dest.png', cv2.IMREAD_GRAYSCALE)
    if color:
        img = np.repeat(img[..., None], 3, axis=2)
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return dict(img=img, img_path=f'{root}/train/dest.png', img_shape=img.shape[:2],
                ori_shape=img.shape[:2], gt_bboxes=HorizontalBoxes(b),
                gt_bboxes_labels=np.zeros(len(b), np.int64), gt_ignore_flags=np.zeros(len(b), bool))


@pytest.fixture()
def data_root(tmp_path) -> str:
    return _write_dataset(tmp_path)


def _paste(root, **kw):
    args = dict(ann_file='annotations/train.json', data_root=root, prob=1.0, max_num_pasted=1,
                match_intensity=False, seed=0)
    args.update(kw)
    return BoxCopyPaste(**args)


def test_rare_classes_from_box_share(data_root):
    t = BoxCopyPaste(ann_file='annotations/train.json', data_root=data_root)
    # 21 Ost, 2 SI, 1 VC boxes: VC 4.2 % < 5 % is rare; SI 8.3 % is not
    assert sorted(t.rare_sources) == [VC]
    assert t.box_share[VC] == pytest.approx(1 / 24)
    t2 = BoxCopyPaste(ann_file='annotations/train.json', data_root=data_root, rare_thr=0.1)
    assert sorted(t2.rare_sources) == [SI, VC]
    t3 = BoxCopyPaste(ann_file='annotations/train.json', data_root=data_root,
                      rare_classes=['Surgical implant'])
    assert sorted(t3.rare_sources) == [SI]
    with pytest.raises(ValueError, match='not in classes'):
        BoxCopyPaste(ann_file='annotations/train.json', data_root=data_root, rare_classes=['x'])


def test_boxes_labels_and_physical_scale(data_root):
    res = _paste(data_root).transform(_dest_results(data_root, color=True))
    boxes = res['gt_bboxes']
    assert isinstance(boxes, HorizontalBoxes) and len(boxes) == 2
    assert res['gt_bboxes_labels'].tolist() == [0, VC] and res['gt_bboxes_labels'].dtype == np.int64
    assert res['gt_ignore_flags'].tolist() == [False, False]
    x1, y1, x2, y2 = boxes.numpy()[1]
    # source 40 px at 0.5 px/orig = 80 orig px; destination 0.25 px/orig -> 20 px
    assert x2 - x1 == pytest.approx(20, abs=0.6) and y2 - y1 == pytest.approx(20, abs=0.6)
    assert 0 <= x1 and x2 <= 100 and 0 <= y1 and y2 <= 100
    assert res['img'].shape == (100, 100, 3) and res['img'].dtype == np.uint8
    # same size once resized beforehand: the destination image at 2x scale doubles the box
    r2 = _dest_results(data_root)
    r2['img'] = cv2.resize(r2['img'], (200, 200))
    r2['gt_bboxes'] = HorizontalBoxes(np.zeros((0, 4), np.float32))
    r2['gt_bboxes_labels'], r2['gt_ignore_flags'] = np.zeros(0, np.int64), np.zeros(0, bool)
    bx = _paste(data_root).transform(r2)['gt_bboxes'].numpy()[0]
    assert bx[2] - bx[0] == pytest.approx(40, abs=0.6)


def test_pasted_content_present(data_root):
    res = _paste(data_root).transform(_dest_results(data_root))
    x1, y1, x2, y2 = np.round(res['gt_bboxes'].numpy()[1]).astype(int)
    got = res['img'][y1:y2, x1:x2].astype(float)
    src = cv2.imread(f'{data_root}/train/src.png', cv2.IMREAD_GRAYSCALE)
    sx1, sy1, sx2, sy2 = SRC_BOX
    want = cv2.resize(src[sy1:sy2, sx1:sx2], (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
    assert got.mean() > 150  # the destination was flat 40 there
    assert np.corrcoef(got.ravel(), want.astype(float).ravel())[0, 1] > 0.9
    assert np.abs(got - want).mean() < 15
    # the dark cross is there
    assert got[(y2 - y1) // 2, :].mean() < 100


def test_no_seam(data_root):
    """Across the border of the pasted crop the image changes smoothly: the first difference at
    the border is a small fraction of the 80-grey-level jump that a hard rectangular paste makes."""
    for match in (False, True):
        res = _paste(data_root, match_intensity=match).transform(
            _dest_results(data_root, boxes=np.zeros((0, 4)), color=match))
        img = res['img'].astype(float)
        if match:  # 3-channel destination (LoadImageFromFile's default), grey source
            assert (img[..., 0] == img[..., 2]).all()
            img = img[..., 0]
        bx1, by1, bx2, by2 = np.round(res['gt_bboxes'].numpy()[0]).astype(int)
        m = 5  # context margin: 0.25 x 40 src px = 10 src px = 5 dest px
        cx1, cy1, cx2, cy2 = bx1 - m, by1 - m, bx2 + m, by2 + m
        jumps = []
        if cx1 > 0:
            jumps.append(np.abs(img[cy1:cy2, cx1] - img[cy1:cy2, cx1 - 1]).max())
        if cx2 < 100:
            jumps.append(np.abs(img[cy1:cy2, cx2] - img[cy1:cy2, cx2 - 1]).max())
        if cy1 > 0:
            jumps.append(np.abs(img[cy1, cx1:cx2] - img[cy1 - 1, cx1:cx2]).max())
        if cy2 < 100:
            jumps.append(np.abs(img[cy2, cx1:cx2] - img[cy2 - 1, cx1:cx2]).max())
        assert jumps and max(jumps) <= 0.1 * (SRC_BG - DEST_BG), (match, jumps)
        # the whole feathering ring has no step either (a hard paste jumps by 80 in one pixel)
        # (columns from just outside the crop to the last context column before the lesion)
        ring = img[cy1:cy2, max(cx1 - 1, 0):bx1]
        assert np.abs(np.diff(ring, axis=1)).max() < 0.5 * (SRC_BG - DEST_BG)
        if match:  # context shifted to the destination's level
            assert np.abs(img[cy1 + 1:cy2 - 1, cx1 + 1] - DEST_BG).max() < 5
    a = feather_mask(30, 30, (5, 5, 25, 25), 2)
    assert a[10:20, 10:20].min() == 1.0 and a[0].max() < 0.05 and a[:, 0].max() < 0.05


@pytest.mark.parametrize('max_ioa', [0.0, 0.3])
def test_overlap_limit(data_root, max_ioa):
    existing = np.array([[0, 0, 35, 50], [35, 0, 70, 50], [0, 50, 35, 100], [35, 50, 70, 100]],
                        np.float32)
    t = _paste(data_root, max_ioa=max_ioa, max_num_pasted=3, max_tries=50)
    n_pasted = 0
    for seed in range(15):
        t._rng = np.random.default_rng(seed)
        res = t.transform(_dest_results(data_root, boxes=existing))
        boxes = res['gt_bboxes'].numpy()
        for i in range(4, len(boxes)):
            b, others = boxes[i], np.concatenate([boxes[:4], boxes[4:i]])
            iw = np.clip(np.minimum(b[2], others[:, 2]) - np.maximum(b[0], others[:, 0]), 0, None)
            ih = np.clip(np.minimum(b[3], others[:, 3]) - np.maximum(b[1], others[:, 1]), 0, None)
            area = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
            assert (iw * ih / area).max() <= max_ioa + 1e-6
            n_pasted += 1
    assert n_pasted >= 15  # placements were found, so the check above is not vacuous


def test_prob_zero_is_identity_and_determinism(data_root):
    res = _dest_results(data_root)
    before = copy.deepcopy(res)
    out = _paste(data_root, prob=0.0).transform(res)
    assert out['img'] is res['img']
    np.testing.assert_array_equal(out['img'], before['img'])
    assert len(out['gt_bboxes']) == 1 and out['gt_bboxes_labels'].tolist() == [0]
    a = _paste(data_root, seed=3, max_num_pasted=3).transform(_dest_results(data_root))
    b = _paste(data_root, seed=3, max_num_pasted=3).transform(_dest_results(data_root))
    np.testing.assert_array_equal(a['img'], b['img'])
    np.testing.assert_array_equal(a['gt_bboxes'].numpy(), b['gt_bboxes'].numpy())
    # seed=None follows numpy's global state (seeded per worker by mmengine)
    outs = []
    for _ in range(2):
        np.random.seed(5)
        outs.append(_paste(data_root, seed=None).transform(_dest_results(data_root))['img'])
    np.testing.assert_array_equal(*outs)


def test_rejects_masks_and_bad_files(data_root, tmp_path):
    res = _dest_results(data_root)
    res['gt_masks'] = object()
    with pytest.raises(ValueError, match='gt_masks'):
        _paste(data_root).transform(res)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(images=[])))
    with pytest.raises(ValueError, match="no 'annotations'"):
        BoxCopyPaste(ann_file=str(bad))


def test_inside_mmdet_pipeline(tmp_path):
    """LoadImageFromFile -> LoadAnnotations -> BoxCopyPaste -> Resize -> PackDetInputs, built from
    configs through the registries, on a dataset written by make_tiny_coco."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        _check_pipeline(tmp_path)


def _check_pipeline(tmp_path):
    import spinexr.datasets.vindr_det  # noqa: F401  (registers VinDrSpineXRDataset)
    from mmdet.registry import DATASETS
    make_tiny_coco(str(tmp_path), num_images=10, seed=2)
    cp = dict(type='BoxCopyPaste', ann_file='annotations/train.json', data_root=str(tmp_path),
              prob=1.0, rare_thr=1.0, max_num_pasted=2, seed=0)
    common = dict(type='VinDrSpineXRDataset', data_root=str(tmp_path),
                  ann_file='annotations/train.json', data_prefix=dict(img=''),
                  filter_cfg=dict(filter_empty_gt=False))
    load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    pack = [dict(type='Resize', scale=(64, 48), keep_ratio=True), dict(type='PackDetInputs')]
    ds = DATASETS.build(dict(common, pipeline=load + [cp] + pack))
    plain = DATASETS.build(dict(common, pipeline=load + pack))
    more = 0
    for i in range(len(ds)):
        out, ref = ds[i], plain[i]
        gi, gr = out['data_samples'].gt_instances, ref['data_samples'].gt_instances
        assert out['inputs'].shape == ref['inputs'].shape
        assert len(gi) >= len(gr)
        more += len(gi) > len(gr)
        b = gi.bboxes.tensor
        h, w = out['data_samples'].img_shape
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w + 1e-3).all() and (b[:, 3] <= h + 1e-3).all()
        assert gi.labels.max() < len(CLASSES)
    assert more >= len(ds) // 2
    # pasted boxes keep their source size (all tiny_coco images share one scale)
    coco = json.loads((tmp_path / 'annotations/train.json').read_text())
    sizes = {(a['bbox'][2], a['bbox'][3]) for a in coco['annotations']}
    pre = DATASETS.build(dict(common, pipeline=load + [cp]))
    res = pre[0]
    n0 = sum(a['image_id'] == 1 for a in coco['annotations'])
    for b in res['gt_bboxes'].numpy()[n0:]:
        assert min(abs(b[2] - b[0] - sw) + abs(b[3] - b[1] - sh) for sw, sh in sizes) < 1.5
