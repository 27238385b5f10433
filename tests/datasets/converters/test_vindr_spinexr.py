"""Tests of the VinDr-SpineXR CSV + DICOM -> PNG + COCO converter."""
import csv
import json
import runpy
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from spinexr.datasets.converters import convert_vindr_spinexr
from spinexr.datasets.metainfo import CLASSES, CSV_COLUMNS, NO_FINDING
from spinexr.io import write_dicom

TOOL = Path(__file__).parents[3] / 'tools' / 'dataset_converters' / 'vindr_spinexr.py'


def write_j2k_dicom(path, arr, photometric='MONOCHROME2'):
    """A 12-bit JPEG 2000 lossless DICOM with window tags, like the release's files."""
    write_dicom(path, arr, bits_stored=12, photometric=photometric, window=(2047.5, 4095))


def hexid(prefix, i):
    return f'{prefix:x}{i:031x}'[:32]


def make_release(root, n_train=4, n_test=2, size=(96, 64)):
    """Tiny release: image 0 abnormal (two radiologists, one clipped and one tiny box), image 1
    normal, image 2 MONOCHROME1 abnormal, others normal. Returns {split: [rows]}."""
    root = Path(root)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows_by_split = {}
    for split, n in (('train', n_train), ('test', n_test)):
        (root / f'{split}_images').mkdir(exist_ok=True)
        rows = []
        for i in range(n):
            image_id = hexid(1 if split == 'train' else 2, i)
            study = hexid(3, i // 2 + (100 if split == 'test' else 0))
            series = hexid(4, i)
            arr = rng.integers(500, 3500, size=size).astype(np.uint16)
            write_j2k_dicom(root / f'{split}_images' / f'{image_id}.dicom', arr,
                            photometric='MONOCHROME1' if i == 2 else 'MONOCHROME2')
            base = [study, series, image_id]
            if i == 0:
                rows.append(base + ['rad1', 'Osteophytes', '10.5', '20.25', '30.5', '60.25'])
                rows.append(base + ['rad2', 'Vertebral collapse', '50', '80', '80', '120'])
                rows.append(base + ['rad2', 'Other lesions', '10', '10', '11', '11'])
            elif i == 2:
                rows.append(base + ['rad3', 'Spondylolysthesis', '0', '0', '64', '96'])
            else:
                rows.append(base + ['rad1', NO_FINDING, '', '', '', ''])
        rows_by_split[split] = rows
        write_csv(root / 'annotations' / f'{split}.csv', rows)
    return rows_by_split


def write_csv(path, rows, header=CSV_COLUMNS):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def run(src, dst, **kwargs):
    messages = []
    kwargs.setdefault('img_size', 48)
    code = convert_vindr_spinexr(str(src), str(dst), progress=False, log=messages.append, **kwargs)
    return code, '\n'.join(messages)


def load_coco(dst, split):
    return json.loads((Path(dst) / 'annotations' / f'{split}.json').read_text())


def test_clean_conversion(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    make_release(src)
    code, msg = run(src, dst)
    assert code == 0, msg
    coco = load_coco(dst, 'train')
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    assert [c['id'] for c in coco['categories']] == list(range(1, 8))
    assert len(coco['images']) == 4  # normal images listed too
    im0 = coco['images'][0]
    assert im0['file_name'] == f'train/{hexid(1, 0)}.png'
    assert (im0['width'], im0['height'], im0['orig_width'], im0['orig_height']) == (32, 48, 64, 96)
    assert im0['image_id'] == hexid(1, 0) and im0['study_id'] == hexid(3, 0)
    assert im0['series_id'] == hexid(4, 0) and im0['abnormal'] is True
    assert coco['images'][1]['abnormal'] is False
    anns = [a for a in coco['annotations'] if a['image_id'] == im0['id']]
    # scale 0.5; second box clipped to the image; the 0.5 px box dropped
    assert [a['category_id'] for a in anns] == [1, 6]
    np.testing.assert_allclose(anns[0]['bbox'], [5.25, 10.125, 10.0, 20.0])
    np.testing.assert_allclose(anns[1]['bbox'], [25.0, 40.0, 7.0, 8.0])
    assert anns[0]['area'] == pytest.approx(200.0) and anns[0]['iscrowd'] == 0
    assert {a['rad_id'] for a in anns} == {'rad1', 'rad2'}
    for im in coco['images'] + load_coco(dst, 'test')['images']:
        png = cv2.imread(str(dst / im['file_name']), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and png.shape == (im['height'], im['width'])
        assert max(png.shape) == 48
    assert 'Other lesions 0' in msg and '1 dropped' in msg
    report = json.loads((dst / 'conversion_report.json').read_text())
    assert report['splits'][0]['dropped_boxes'] == 1 and report['problems'] == []
    assert len(load_coco(dst, 'test')['annotations']) == 2


def test_monochrome1_png_is_inverted(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    (src / 'annotations').mkdir(parents=True)
    (src / 'train_images').mkdir()
    arr = np.full((96, 64), 4000, np.uint16)
    arr[:, :32] = 100
    ids = [hexid(5, 0), hexid(5, 1)]
    write_j2k_dicom(src / 'train_images' / f'{ids[0]}.dicom', arr, 'MONOCHROME2')
    write_j2k_dicom(src / 'train_images' / f'{ids[1]}.dicom', arr, 'MONOCHROME1')
    write_csv(src / 'annotations' / 'train.csv',
              [['s', 's', i, 'rad1', NO_FINDING, '', '', '', ''] for i in ids])
    assert run(src, dst, splits=['train'])[0] == 0
    m2 = cv2.imread(str(dst / 'train' / f'{ids[0]}.png'), cv2.IMREAD_UNCHANGED)
    m1 = cv2.imread(str(dst / 'train' / f'{ids[1]}.png'), cv2.IMREAD_UNCHANGED)
    assert m2[24, 4] < 20 and m2[24, 28] > 230 and m1[24, 4] > 230 and m1[24, 28] < 20


def corrupt_dicom(src, rows):
    image_id = rows['train'][3][2]
    (src / 'train_images' / f'{image_id}.dicom').write_bytes(b'DICM' * 50)
    return image_id, 'corrupt or undecodable DICOM', None


def missing_dicom(src, rows):
    image_id = rows['train'][3][2]
    (src / 'train_images' / f'{image_id}.dicom').unlink()
    return image_id, 'not on disk', 5


def unknown_lesion(src, rows):
    rows['train'][3][4] = 'Spondylolisthesis'  # misspelled: the release spells it with a y
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    return rows['train'][3][2], "unknown lesion_type 'Spondylolisthesis'", 5


def missing_coords(src, rows):
    rows['train'][3][4:] = ['Osteophytes', '1', '', '5', '9']
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    return rows['train'][3][2], 'missing or invalid coordinates', 5


def inverted_box_x(src, rows):
    rows['train'][3][4:] = ['Osteophytes', '30', '10', '20', '40']
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    return rows['train'][3][2], "'Osteophytes' inverted box: xmax 20 < xmin 30", 5


def inverted_box_y(src, rows):
    rows['train'][3][4:] = ['Surgical implant', '10', '40.5', '30', '12']
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    return rows['train'][3][2], "'Surgical implant' inverted box: ymax 12 < ymin 40.5", 5


@pytest.mark.parametrize('mutate', [corrupt_dicom, missing_dicom, unknown_lesion, missing_coords,
                                    inverted_box_x, inverted_box_y])
def test_bad_input(tmp_path, mutate):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src)
    bad_id, reason, row = mutate(src, rows)
    code, msg = run(src, dst)
    assert code == 1
    assert reason in msg and bad_id in msg
    if row is not None:
        assert f'train.csv:{row}' in msg
    # good images are converted anyway, but no COCO file for the split with problems
    assert len(list((dst / 'train').glob('*.png'))) == 3
    assert not (dst / 'annotations' / 'train.json').exists()
    assert (dst / 'annotations' / 'test.json').exists()  # the clean split is written
    code, msg = run(src, dst, skip_bad=True)
    assert code == 0 and bad_id in msg
    coco = load_coco(dst, 'train')
    assert bad_id not in {im['image_id'] for im in coco['images']}
    assert len(coco['images']) == 3


def test_all_problems_reported_at_once(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src, n_train=6)
    rows['train'][1][4] = 'Fracture'
    rows['train'][4][5] = ''
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    (src / 'train_images' / f'{rows["train"][5][2]}.dicom').unlink()
    (src / 'train_images' / f'{rows["train"][6][2]}.dicom').write_bytes(b'\x00' * 300)
    code, msg = run(src, dst)
    assert code == 1 and '4 problem(s)' in msg, msg
    assert 'converted now 2' in msg


@pytest.mark.parametrize('header', [
    ['study_id', 'series_id', 'image_id', 'rad_id', 'class_name', 'xmin', 'ymin', 'xmax', 'ymax'],
    ['study_id', 'series_id', 'image_id', 'rad_id', 'lesion_type', 'xmin', 'ymin', 'xmax'],
])
def test_missing_or_renamed_column_is_fatal(tmp_path, header):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src)
    write_csv(src / 'annotations' / 'train.csv', [r[:len(header)] for r in rows['train']],
              header=header)
    for skip_bad in (False, True):
        code, msg = run(src, dst, skip_bad=skip_bad)
        assert code == 2
        assert 'train.csv:1' in msg and 'missing column(s)' in msg
        missing = 'lesion_type' if 'class_name' in header else 'ymax'
        assert missing in msg
    assert not (dst / 'annotations' / 'train.json').exists()


def test_resume_after_interruption(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    make_release(src)
    assert run(src, dst, splits=['train'])[0] == 0
    first = load_coco(dst, 'train')
    pngs = sorted((dst / 'train').glob('*.png'))
    mtimes = {p.name: p.stat().st_mtime_ns for p in pngs}
    # simulate an interruption: one PNG never written, one half-written temp file, the state
    # file's last record cut in the middle, the COCO file not written yet
    pngs[0].unlink()
    (dst / 'train' / f'.{pngs[1].name}.tmp999').write_bytes(b'\x89PNG half')
    state = dst / '.convert_state' / 'train.jsonl'
    lines = state.read_text().splitlines()
    state.write_text('\n'.join(lines[:-1]) + '\n' + lines[-1][:15])
    (dst / 'annotations' / 'train.json').unlink()
    code, msg = run(src, dst, splits=['train'])
    assert code == 0, msg
    assert 'converted now 2, already done 2' in msg  # the lost PNG and the cut record
    assert not list((dst / 'train').glob('.*.tmp*'))
    assert load_coco(dst, 'train') == first
    for p in pngs[1:]:
        if p.name in {json.loads(line)['image_id'] + '.png' for line in lines[:-1]}:
            assert p.stat().st_mtime_ns == mtimes[p.name]  # finished images are not redone
    # a different --img-size redoes everything
    code, msg = run(src, dst, splits=['train'], img_size=40)
    assert 'converted now 4, already done 0' in msg
    assert load_coco(dst, 'train')['images'][0]['height'] == 40


@pytest.mark.slow
def test_workers_val_split_and_cli(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    make_release(src, n_train=8, n_test=0)
    ns = runpy.run_path(str(TOOL), run_name='converter_cli')
    code = ns['main']([
        '--data-root', str(src), '--out-dir', str(dst), '--img-size', '48', '--workers', '2',
        '--splits', 'train', '--val-fraction', '0.25', '--no-progress'
    ])
    assert code == 0
    full = load_coco(dst, 'train')
    tr, va = load_coco(dst, 'train_split'), load_coco(dst, 'val_split')
    assert len(full['images']) == 8 and len(tr['images']) + len(va['images']) == 8
    assert len(va['images']) == 2  # 4 studies of 2 images, one held out
    assert not {i['study_id'] for i in tr['images']} & {i['study_id'] for i in va['images']}
    assert len(tr['annotations']) + len(va['annotations']) == len(full['annotations'])


def test_converts_phantom(tmp_path):
    phantom = pytest.importorskip('spinexr.datasets.phantom')
    phantom.generate_phantom(str(tmp_path / 'src'), num_train=4, num_test=2, seed=0,
                             size_scale=0.1)
    code, msg = run(tmp_path / 'src', tmp_path / 'dst', img_size=128)
    assert code == 0, msg
    for split, n in (('train', 4), ('test', 2)):
        coco = load_coco(tmp_path / 'dst', split)
        assert len(coco['images']) == n
        for im in coco['images']:
            assert max(im['width'], im['height']) == 128
            ratio = im['orig_width'] / im['orig_height']
            assert im['width'] / im['height'] == pytest.approx(ratio, rel=0.05)


def files_under(root, *excluded):
    """Every file under ``root`` (relative paths), leaving out the folders ``excluded``."""
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob('*')
                  if p.is_file() and not any(d in p.parents for d in excluded))


UNSAFE_IDS = {
    'parent': '../../outside/victim',
    'subdir': 'sub/victim',
    'absolute': None,  # tmp_path/outside/victim, set in the test
    'empty': '',
    'dotdot': '..',
    'hidden': '.victim',
    'backslash': '..\\..\\outside\\victim',
    'drive': 'C:victim',
    'terminal_escape': 'vic\x1b[2Jtim',
    'too_long': 'a' * 300,
}


@pytest.mark.parametrize('case', list(UNSAFE_IDS))
def test_unsafe_image_id_is_refused(tmp_path, case):
    """An image_id that is not a plain file name is reported with its row and never becomes a
    path: nothing outside the output folder is written, with or without --skip-bad."""
    src, dst, outside = tmp_path / 'src', tmp_path / 'dst', tmp_path / 'outside'
    rows = make_release(src)
    victim = src / 'train_images' / f'{rows["train"][3][2]}.dicom'
    outside.mkdir()
    shutil.copy(victim, outside / 'victim.dicom')  # what ../../outside/victim would read
    (src / 'train_images' / 'sub').mkdir()
    shutil.copy(victim, src / 'train_images' / 'sub' / 'victim.dicom')
    value = str(outside / 'victim') if case == 'absolute' else UNSAFE_IDS[case]
    rows['train'][3][2] = value
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    before_src, before_rest = files_under(src), files_under(tmp_path, src, dst)
    assert before_rest == ['outside/victim.dicom']

    code, msg = run(src, dst)
    assert code == 1, msg
    assert 'train.csv:5' in msg
    assert f'image_id {value!r} refused: not a plain file name' in msg
    assert files_under(tmp_path, src, dst) == before_rest and files_under(src) == before_src
    assert not (dst / 'annotations' / 'train.json').exists()
    assert len(list((dst / 'train').rglob('*.png'))) == 3  # the good images are converted

    code, msg = run(src, dst, skip_bad=True)
    assert code == 0, msg
    assert repr(value) in msg
    assert files_under(tmp_path, src, dst) == before_rest and files_under(src) == before_src
    coco = load_coco(dst, 'train')
    assert len(coco['images']) == 3 and value not in {im['image_id'] for im in coco['images']}
    report = json.loads((dst / 'conversion_report.json').read_text())
    assert [(p['row'], p['image_id']) for p in report['problems']] == [(5, value or None)]
    if value:
        assert report['splits'][0]['skipped'] == [value]


def test_unsafe_image_id_reported_on_every_row(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src)
    for row in rows['train'][:3]:  # image 0: three lesion rows, lines 2-4
        row[2] = '../x'
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    code, msg = run(src, dst, splits=['train'])
    assert code == 1 and '3 problem(s)' in msg
    for line in (2, 3, 4):
        assert f"train.csv:{line} [image '../x']: image_id '../x' refused" in msg
    assert files_under(tmp_path, src, dst) == []


@pytest.mark.parametrize('encoding,offset,line', [('latin-1', None, 4), ('utf-16', 0, 1)])
def test_non_utf8_csv_is_reported(tmp_path, encoding, offset, line):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src)
    rows['train'][2][3] = 'Dr. M\u00fcller'  # rad_id of CSV line 4
    path = src / 'annotations' / 'train.csv'
    write_csv(path, rows['train'])
    data = path.read_text(encoding='utf-8').encode(encoding)
    path.write_bytes(data)
    offset = data.index(b'\xfc') if offset is None else offset
    for skip_bad in (False, True):
        code, msg = run(src, dst, skip_bad=skip_bad)
        assert code == 2, msg
        assert f'train.csv:{line}: not UTF-8 text' in msg
        assert f'at byte offset {offset} (line {line})' in msg
    assert not (dst / 'annotations' / 'train.json').exists()
    assert (dst / 'annotations' / 'test.json').exists()  # the other split is not affected
    assert files_under(tmp_path, src, dst) == []


def test_malformed_csv_is_reported(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    rows = make_release(src)
    rows['train'][4][3] = 'x' * 200_000  # over the csv module's field size limit, line 6
    write_csv(src / 'annotations' / 'train.csv', rows['train'])
    code, msg = run(src, dst)
    assert code == 2, msg
    assert 'train.csv:6: malformed CSV: field larger than field limit' in msg
    assert not (dst / 'annotations' / 'train.json').exists()


def test_unsafe_split_name_is_refused(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    make_release(src)
    with pytest.raises(ValueError, match=r"split name '\.\./train' is not a plain file name"):
        run(src, dst, splits=['../train'])
    main = runpy.run_path(str(TOOL), run_name='converter_cli')['main']
    with pytest.raises(SystemExit) as exc:
        main(['--data-root', str(src), '--out-dir', str(dst), '--splits', 'train', '../train'])
    assert exc.value.code == 2
    assert not dst.exists()
