"""Tests of spinexr/apis/inference.py and tools/infer.py (tiny images, YOLO11-n)."""
import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from spinexr.apis.inference import (ImageFileDataset, PreprocessSpec, boxes_to_network,
                                    collect_inputs, prepare_images)
from spinexr.io import write_dicom
from _tools import REPO, run_tool

SIZE = 128
_PIPELINE = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=True),
    dict(type='PackDetInputs'),
]


def _radiograph(h, w, box, seed=0):
    """Dark noisy image with one bright rectangle ``box`` = (x1, y1, x2, y2) in pixels."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 40, size=(h, w)).astype(np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 230
    return img


def _bright_bbox(chw):
    """xyxy (pixel edges) of the pixels above mid-grey of a (C, H, W) tensor."""
    ys, xs = np.nonzero(chw[0].cpu().numpy() > 128)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def test_box_round_trip_png_and_dicom(tmp_path):
    """A known box survives resize (data) and the inverse mapping (predictions)."""
    from spinexr.models.detectors.yolo11 import YOLO11Detector
    box_png, box_dcm = (60, 40, 180, 120), (40, 100, 120, 260)
    png = tmp_path / 'a.png'
    cv2.imwrite(str(png), _radiograph(200, 300, box_png))
    pixels = _radiograph(320, 160, box_dcm).astype(np.uint16) * 16  # 12-bit stored values
    dcm = write_dicom(tmp_path / 'b.dicom', pixels, window=(2048, 4096),
                      transfer_syntax='ExplicitVRLittleEndian')
    spec = PreprocessSpec.from_pipeline(_PIPELINE)
    items = [ImageFileDataset([str(png), str(dcm)])[i] for i in range(2)]
    inputs, metas = prepare_images(items, spec, torch.device('cpu'))
    assert metas[0]['ori_shape'] == (200, 300) and metas[0]['img_shape'] == (85, 128)
    assert metas[1]['ori_shape'] == (320, 160) and metas[1]['img_shape'] == (128, 64)
    # JPEG 2000 DICOM decoded at reduced resolution: coordinates still on the DICOM's grid
    box_j2k = (96, 160, 288, 352)
    j2k = write_dicom(tmp_path / 'c.dicom', _radiograph(512, 384, box_j2k).astype(np.uint16) * 16,
                      window=(2048, 4096))
    item = ImageFileDataset([str(j2k)], min_long_side=SIZE)[0]
    assert item['error'] is None and item['orig_shape'] == (512, 384)
    assert max(item['image'].shape) < 512  # the reduced decode was used
    more_inputs, more_metas = prepare_images([item], spec, torch.device('cpu'))
    inputs, metas = inputs + more_inputs, metas + more_metas
    assert metas[2]['img_shape'] == (128, 96)
    for x, meta, box in zip(inputs, metas, (box_png, box_dcm, box_j2k)):
        assert tuple(x.shape) == (3, *meta['img_shape'])
        # forward: the bright rectangle lands where the scale factors say (within a pixel)
        expected = boxes_to_network(np.array([box], float), meta)[0]
        assert np.abs(_bright_bbox(x) - expected).max() <= 1.0
        # inverse: a prediction at that place maps back onto the known original box
        back = YOLO11Detector.to_original(torch.tensor([expected]), meta)[0].numpy()
        np.testing.assert_allclose(back, box, atol=1e-3)


def test_resize_matches_mmdet_test_pipeline(tmp_path):
    """Device resize == mmdet's LoadImageFromFile + Resize (pixels within 1 grey level)."""
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope

    import mmdet.datasets  # noqa: F401
    png = tmp_path / 'c.png'
    cv2.imwrite(str(png), _radiograph(150, 110, (10, 20, 90, 100), seed=3))
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref = Compose(_PIPELINE[:2])(dict(img_path=str(png)))
    spec = PreprocessSpec.from_pipeline(_PIPELINE)
    inputs, metas = prepare_images([ImageFileDataset([str(png)])[0]], spec, torch.device('cpu'))
    assert metas[0]['img_shape'] == ref['img_shape']
    np.testing.assert_allclose(metas[0]['scale_factor'], ref['scale_factor'])
    diff = np.abs(inputs[0].permute(1, 2, 0).numpy() - ref['img'].astype(np.float32))
    assert diff.max() <= 1.0
    # one code path on every device: the decoding worker does not resize; a stacked batch of
    # two sizes gives each image what it gives alone (the padding between them is never read)
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), _radiograph(300, 200, (30, 40, 150, 200), seed=4))
    items = [ImageFileDataset([str(p)])[0] for p in (png, big)]
    assert tuple(items[0]['image'].shape) == (150, 110)
    both, metas2 = prepare_images(items, spec, torch.device('cpu'))
    assert metas2[0] == metas[0]
    np.testing.assert_array_equal(both[0].numpy(), inputs[0].numpy())
    alone, _ = prepare_images(items[1:], spec, torch.device('cpu'))
    np.testing.assert_array_equal(both[1].numpy(), alone[0].numpy())


def test_collect_inputs(tmp_path):
    (tmp_path / 'd' / 'sub').mkdir(parents=True)
    for name in ('d/x.png', 'd/sub/y.DICOM', 'd/notes.md', 'z.jpg'):
        (tmp_path / name).write_bytes(b'')
    lst = tmp_path / 'list.csv'
    lst.write_text('id,path\n1,z.jpg\n2,missing.png\n')
    files, failures = collect_inputs([str(tmp_path / 'd'), str(lst), str(tmp_path / 'nope')])
    names = [Path(f).name for f in files]
    assert names == ['y.DICOM', 'x.png', 'z.jpg']  # folders sorted, then the list's order
    assert sorted(Path(p).name for p, _ in failures) == ['missing.png', 'nope']
    # an unreadable file is a failure record naming the file, not an exception
    for item in (ImageFileDataset(files)[i] for i in range(2)):
        assert item['image'] is None and Path(item['path']).name in item['error']


def _make_fixtures(tmp_path):
    """2 PNG + 1 DICOM + 1 corrupt file, a folder, a list, a YOLO11-n config + checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import spinexr.models  # noqa: F401
    from mmdet.registry import MODELS
    folder = tmp_path / 'in'
    folder.mkdir()
    cv2.imwrite(str(folder / 'p1.png'), _radiograph(96, 128, (10, 10, 50, 40)))
    cv2.imwrite(str(tmp_path / 'p2.png'), _radiograph(160, 100, (20, 30, 60, 90), seed=1))
    write_dicom(folder / 'd1.dicom', _radiograph(150, 120, (30, 30, 90, 100), seed=2)
                .astype(np.uint16) * 16, window=(2048, 4096), photometric='MONOCHROME2',
                transfer_syntax='ExplicitVRLittleEndian')
    (folder / 'broken.png').write_bytes(b'not an image at all')
    lst = tmp_path / 'list.txt'
    lst.write_text('p2.png\n')
    cfg_file = tmp_path / 'yolo11n_tiny.py'
    cfg_file.write_text(
        f"_base_ = '{REPO}/configs/yolo11/yolo11n_35e_vindr-640.py'\n"
        f"test_dataloader = dict(dataset=dict(pipeline=[\n"
        f"    dict(type='LoadImageFromFile', color_type='color'),\n"
        f"    dict(type='Resize', scale=({SIZE}, {SIZE}), keep_ratio=True),\n"
        f"    dict(type='PackDetInputs')]))\n")
    cfg = Config.fromfile(str(cfg_file))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    state = model.state_dict()
    for k in state:  # class-logit biases at 0: random weights then give boxes of score ~0.5
        if re.search(r'model\.23\.cv3\.\d\.2\.bias$', k):
            state[k].zero_()
    ckpt = tmp_path / 'yolo11n.pth'
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    return folder, lst, cfg_file, ckpt


def _read_outputs(out):
    payload = json.loads((out / 'findings.json').read_text())
    with (out / 'findings.csv').open(newline='') as f:
        rows = list(csv.DictReader(f))
    return payload, rows


@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    folder, lst, cfg_file, ckpt = _make_fixtures(tmp_path)
    out = tmp_path / 'out'
    proc = run_tool(['tools/infer.py', str(folder), str(lst), '--config', str(cfg_file),
                     '--checkpoint', str(ckpt), '--out', str(out), '--batch-size', '2',
                     '--workers', '1', '--score-thr', '0.2', '--no-progress'])
    assert 'broken.png' in proc.stderr
    payload, rows = _read_outputs(out)
    images = {r['image_id']: r for r in payload['images']}
    assert sorted(images) == ['d1', 'p1', 'p2']
    assert (images['d1']['height'], images['d1']['width']) == (150, 120)  # DICOM grid
    assert (images['p2']['height'], images['p2']['width']) == (160, 100)
    assert [Path(f['path']).name for f in payload['failures']] == ['broken.png']
    assert 'broken.png' in (out / 'failures.txt').read_text()
    # JSON and CSV say the same; boxes lie inside the original image
    n_findings = 0
    for rec in payload['images']:
        assert (out / 'overlays' / f"{rec['image_id']}.png").is_file()
        csv_rows = [r for r in rows if r['image_id'] == rec['image_id']]
        if not rec['findings']:
            assert [r['class_name'] for r in csv_rows] == ['No finding']
            continue
        n_findings += len(rec['findings'])
        assert len(csv_rows) == len(rec['findings'])
        for fd, row in zip(rec['findings'], csv_rows):
            assert row['class_name'] == fd['class_name'] and float(row['score']) == fd['score']
            assert [float(row[k]) for k in ('x1', 'y1', 'x2', 'y2')] == fd['box']
            x1, y1, x2, y2 = fd['box']
            assert 0 <= x1 <= x2 <= rec['width'] and 0 <= y1 <= y2 <= rec['height']
            assert fd['score'] > 0.2
    assert n_findings > 0
    overlay = cv2.imread(str(out / 'overlays' / 'd1.png'))
    assert overlay.shape == (150, 120, 3)


@pytest.mark.slow
def test_classifier_fusion_and_exit_code(tmp_path):
    """In-process: abnormal probability, decision fusion, and exit 1 when nothing is readable."""
    import importlib.util
    folder, lst, cfg_file, ckpt = _make_fixtures(tmp_path)
    spec = importlib.util.spec_from_file_location('infer_tool', REPO / 'tools' / 'infer.py')
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    cls_cfg = tmp_path / 'cls.py'
    cls_cfg.write_text(
        f"_base_ = '{REPO}/configs/classifiers/resnet50_60e_vindr-384.py'\n"
        "model = dict(backbone=dict(depth=18), head=dict(in_channels=512))\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=False),\n"
        "    dict(type='PackInputs')]))\n")
    from spinexr.apis.inference import build_classifier
    clf, _ = build_classifier(str(cls_cfg), None)
    cls_ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': clf.state_dict(), 'meta': {}}, cls_ckpt)
    common = [str(folder), '--config', str(cfg_file), '--checkpoint', str(ckpt), '--workers', '0',
              '--score-thr', '0.05', '--no-progress', '--no-overlays', '--classifier',
              str(cls_cfg), str(cls_ckpt)]
    results = {}
    for thr in ('0', '1.01'):  # 0: every image keeps its boxes; 1.01: every image is gated
        out = tmp_path / f'fusion{thr}'
        assert infer.main(common + ['--out', str(out), '--fusion-threshold', thr]) == 0
        payload, _ = _read_outputs(out)
        results[thr] = {r['image_id']: r for r in payload['images']}
    for image_id, rec in results['0'].items():
        assert 0.0 <= rec['abnormal_prob'] <= 1.0
        gated = results['1.01'][image_id]
        assert gated['abnormal_prob'] == rec['abnormal_prob']
        kept = gated['findings']  # scores are written rounded to 5 decimals
        assert [f for f in rec['findings'] if f in kept] == kept
        assert all(f['score'] >= 0.5 for f in kept)
        assert all(f in kept for f in rec['findings'] if f['score'] > 0.50001)
    assert any(len(r['findings']) > len(results['1.01'][i]['findings'])
               for i, r in results['0'].items())
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'x.dcm').write_bytes(b'DICM but not really')
    assert infer.main([str(bad), '--config', str(cfg_file), '--checkpoint', str(ckpt),
                       '--workers', '0', '--no-progress', '--out', str(tmp_path / 'o')]) == 1


@pytest.mark.slow
def test_any_mmdet_detector_matches_inference_detector(tmp_path):
    """A plain mmdet detector (RetinaNet-R18) through the batched path gives what
    mmdet's own ``inference_detector`` gives (same boxes within rounding of the resize)."""
    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config

    from spinexr.apis.inference import build_detector, run_inference
    from spinexr.testing.runs import write_det_config
    cfg_file = write_det_config(tmp_path / 'retina.py', tmp_path / 'data', size=SIZE)
    torch.manual_seed(0)
    detector = build_detector(str(cfg_file), None)
    png = tmp_path / 'r.png'
    cv2.imwrite(str(png), _radiograph(150, 200, (40, 30, 120, 110), seed=5))
    res = run_inference([str(png)], str(cfg_file), None, workers=0, progress=False,
                        score_thr=0.0, detector=detector)
    ours = res['images'][0]['findings'][:10]
    ref_model = init_detector(Config.fromfile(str(cfg_file)), None, device='cpu')
    ref_model.load_state_dict(detector[0].state_dict())
    ref = inference_detector(ref_model, str(png)).pred_instances
    ref_boxes, ref_scores = ref.bboxes.numpy(), ref.scores.numpy()
    assert len(ours) == 10
    for fd in ours:  # the nearest box of the same class (random weights: classes overlap)
        err = np.abs(ref_boxes - np.array(fd['box'])).max(axis=1)
        err[ref.labels.numpy() != fd['class_id']] = np.inf
        j = int(err.argmin())
        assert err[j] < 1.5 and abs(ref_scores[j] - fd['score']) < 0.01


@pytest.mark.slow
def test_study_rows_beside_image_rows(tmp_path):
    """One study row per study: ids from a study map / a .csv list with study_id / the DICOM
    StudyInstanceUID / the image alone; noisy-or of the views' probabilities; per class the
    highest box score over the views."""
    import importlib.util
    folder, _, cfg_file, ckpt = _make_fixtures(tmp_path)
    spec = importlib.util.spec_from_file_location('infer_tool', REPO / 'tools' / 'infer.py')
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    uid = '1.2.826.0.1.3680043.10.999.1'
    for name, seed in (('d1', 2), ('d2', 4)):  # two views of one DICOM study
        write_dicom(folder / f'{name}.dicom', _radiograph(150, 120, (30, 30, 90, 100), seed=seed)
                    .astype(np.uint16) * 16, window=(2048, 4096), study_instance_uid=uid,
                    transfer_syntax='ExplicitVRLittleEndian')
    cv2.imwrite(str(folder / 'p3.png'), _radiograph(90, 90, (20, 20, 60, 70), seed=6))
    lst = tmp_path / 'list.csv'  # a list with the converted dataset's study ids
    lst.write_text('path,study_id\np2.png,S-png\n')
    study_map = tmp_path / 'test.json'  # as the converter writes it (only what is read here)
    study_map.write_text(json.dumps(dict(images=[
        dict(id=0, file_name='test/p1.png', image_id='p1', study_id='S-png')])))
    cls_cfg = tmp_path / 'cls.py'
    cls_cfg.write_text(
        f"_base_ = '{REPO}/configs/classifiers/resnet50_60e_vindr-384.py'\n"
        "model = dict(backbone=dict(depth=18), head=dict(in_channels=512))\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', color_type='color'),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=False),\n"
        "    dict(type='PackInputs')]))\n")
    from spinexr.apis.inference import build_classifier
    clf, _ = build_classifier(str(cls_cfg), None)
    cls_ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': clf.state_dict(), 'meta': {}}, cls_ckpt)
    out = tmp_path / 'out'
    assert infer.main([str(folder), str(lst), '--config', str(cfg_file), '--checkpoint',
                       str(ckpt), '--workers', '0', '--score-thr', '0.05', '--no-progress',
                       '--no-overlays', '--classifier', str(cls_cfg), str(cls_ckpt),
                       '--study-rule', 'noisy_or', '--study-map', str(study_map),
                       '--out', str(out)]) == 0
    payload, rows = _read_outputs(out)
    images = {r['image_id']: r for r in payload['images']}
    assert sorted(images) == ['d1', 'd2', 'p1', 'p2', 'p3']
    assert {k: (r['study_id'], r['study_id_source']) for k, r in images.items()} == {
        'd1': (uid, 'dicom'), 'd2': (uid, 'dicom'), 'p1': ('S-png', 'map'),
        'p2': ('S-png', 'map'), 'p3': ('p3', 'image')}
    assert all(r['study_id'] == images[r['image_id']]['study_id'] for r in rows)
    studies = {s['study_id']: s for s in payload['studies']}
    assert sorted(studies) == sorted([uid, 'S-png', 'p3'])  # one row per study
    classes = payload['meta']['classes']
    n_boxes = 0
    for sid, st in studies.items():
        views = [r for r in payload['images'] if r['study_id'] == sid]
        assert st['n_images'] == len(views) and st['image_ids'] == [r['image_id'] for r in views]
        assert st['rule'] == 'noisy_or'
        keep = np.prod([1 - r['abnormal_prob'] for r in views])
        assert st['abnormal_prob'] == pytest.approx(1 - keep, abs=1e-5)
        for c, name in enumerate(classes):
            scores = [f['score'] for r in views for f in r['findings'] if f['class_id'] == c]
            assert st['class_scores'][name] == pytest.approx(max(scores, default=0.0))
            n_boxes += len(scores)
    assert n_boxes > 0 and len(studies[uid]['image_ids']) == 2
    with (out / 'studies.csv').open(newline='') as f:
        table = {r['study_id']: r for r in csv.DictReader(f)}
    assert sorted(table) == sorted(studies)
    for sid, st in studies.items():
        assert int(table[sid]['n_images']) == st['n_images']
        assert float(table[sid]['abnormal_prob']) == st['abnormal_prob']
        assert table[sid]['image_ids'].split(';') == st['image_ids']
        assert all(float(table[sid][n]) == v for n, v in st['class_scores'].items())
