"""Tests of the phantom generator: release layout, CSV exactness, DICOM properties, determinism."""
import csv
import re

import numpy as np
import pydicom
import pytest

from spinexr.datasets.metainfo import CLASSES, CSV_COLUMNS, NO_FINDING
from spinexr.datasets.phantom import generate_phantom, plan_split, render_phantom_image

HEX32 = re.compile(r'^[0-9a-f]{32}$')
FLOAT = re.compile(r'^\d+\.\d{6}$')
SCALE = 0.08  # ~230 x 100 px images keep the tests fast


def _read_csv(path):
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp('phantom')
    summary = generate_phantom(str(root), 16, 6, seed=3, size_scale=SCALE, workers=1)
    return root, summary


def test_layout(phantom):
    root, summary = phantom
    assert sorted(p.name for p in root.iterdir()) == ['annotations', 'test_images', 'train_images']
    assert sorted(p.name for p in (root / 'annotations').iterdir()) == ['test.csv', 'train.csv']
    for split, num in (('train', 16), ('test', 6)):
        header, rows = _read_csv(root / 'annotations' / f'{split}.csv')
        ids = {r[2] for r in rows}
        files = {p.name for p in (root / f'{split}_images').iterdir()}
        assert files == {f'{i}.dicom' for i in ids}
        assert len(ids) == num == summary[split]['images']


def test_csv_exact(phantom):
    root, summary = phantom
    for split in ('train', 'test'):
        header, rows = _read_csv(root / 'annotations' / f'{split}.csv')
        assert tuple(header) == CSV_COLUMNS
        per_image, series_of, study_of = {}, {}, {}
        for r in rows:
            assert len(r) == len(CSV_COLUMNS)
            study, series, image, rad, lesion = r[:5]
            assert HEX32.match(study) and HEX32.match(series) and HEX32.match(image)
            assert re.match(r'^rad[1-3]$', rad)
            assert lesion in CLASSES or lesion == NO_FINDING
            if lesion == NO_FINDING:
                assert r[5:] == ['', '', '', '']
            else:
                assert all(FLOAT.match(v) for v in r[5:]), r
                x0, y0, x1, y1 = map(float, r[5:])
                assert x1 > x0 and y1 > y0
            per_image.setdefault(image, []).append(lesion)
            assert series_of.setdefault(image, series) == series
            assert study_of.setdefault(image, study) == study
        for lesions in per_image.values():  # exactly one 'No finding' row, alone
            assert NO_FINDING not in lesions or lesions == [NO_FINDING]
        assert len(set(series_of.values())) == len(series_of)  # one image per series
        images_per_study = {}
        for image, study in study_of.items():
            images_per_study[study] = images_per_study.get(study, 0) + 1
        assert set(images_per_study.values()) <= {1, 2}
        normal = sum(v == [NO_FINDING] for v in per_image.values())
        assert normal == summary[split]['normal']


def test_dicom_properties_and_boxes_inside(phantom):
    root, _ = phantom
    header, rows = _read_csv(root / 'annotations' / 'train.csv')
    plans = {p.image_id: p for p in plan_split('train', 16, 3, SCALE)}
    boxes = {}
    for r in rows:
        if r[4] != NO_FINDING:
            boxes.setdefault(r[2], []).append(tuple(map(float, r[5:])))
    for image_id, plan in plans.items():
        ds = pydicom.dcmread(root / 'train_images' / f'{image_id}.dicom')
        assert ds.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.4.90'
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16, 12, 11, 0)
        assert ds.SOPInstanceUID == image_id and ds.StudyInstanceUID == plan.study_id
        assert ds.PhotometricInterpretation == (
            'MONOCHROME1' if plan.monochrome1 else 'MONOCHROME2')
        assert 'WindowCenter' in ds and 'WindowWidth' in ds and float(ds.WindowWidth) > 0
        arr = ds.pixel_array
        assert arr.shape == (plan.height, plan.width) == (ds.Rows, ds.Columns)
        assert arr.min() >= 0 and arr.max() <= 4095 and arr.max() - arr.min() > 1000
        for x0, y0, x1, y1 in boxes.get(image_id, []):
            assert 0 <= x0 < x1 <= ds.Columns and 0 <= y0 < y1 <= ds.Rows


def test_rendered_pixels_match_file(phantom):
    root, _ = phantom
    plan = plan_split('train', 16, 3, SCALE)[5]
    img = render_phantom_image(plan.height, plan.width, plan.view, plan.findings, plan.seed,
                               plan.monochrome1)
    ds = pydicom.dcmread(root / 'train_images' / f'{plan.image_id}.dicom')
    np.testing.assert_array_equal(ds.pixel_array, img.pixels)


def test_deterministic_and_independent_of_workers(phantom, tmp_path):
    root, summary = phantom
    again = generate_phantom(str(tmp_path), 16, 6, seed=3, size_scale=SCALE, workers=2)
    assert again == summary
    for split in ('train', 'test'):
        a = (root / 'annotations' / f'{split}.csv').read_bytes()
        assert a == (tmp_path / 'annotations' / f'{split}.csv').read_bytes()
    for path in sorted((root / 'test_images').iterdir()):
        other = tmp_path / 'test_images' / path.name
        np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array,
                                      pydicom.dcmread(other).pixel_array)


def test_other_seed_differs_and_no_silent_overwrite(phantom, tmp_path):
    root, _ = phantom
    generate_phantom(str(tmp_path), 4, 0, seed=4, size_scale=SCALE)
    assert (tmp_path / 'annotations' / 'train.csv').read_bytes() != (
        root / 'annotations' / 'train.csv').read_bytes()
    with pytest.raises(FileExistsError, match='train.csv'):
        generate_phantom(str(tmp_path), 4, 0, seed=4, size_scale=SCALE)
    generate_phantom(str(tmp_path), 4, 0, seed=4, size_scale=SCALE, overwrite=True)


def test_cli(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    tool = Path(__file__).resolve().parents[3] / 'tools' / 'misc' / 'make_phantom.py'
    spec = importlib.util.spec_from_file_location('make_phantom', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(['--out', str(tmp_path), '--num-train', '3', '--num-test', '2',
                        '--seed', '1', '--size-scale', '0.06', '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'images/s' in out and 'Osteophytes' in out
    assert len(list((tmp_path / 'test_images').iterdir())) == 2
    assert module.main(['--out', str(tmp_path), '--num-train', '3', '--num-test', '2',
                        '--size-scale', '0.06', '--no-progress']) == 2  # exists, no --overwrite
