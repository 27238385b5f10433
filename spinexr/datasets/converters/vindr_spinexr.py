"""Convert the VinDr-SpineXR release (CSV + DICOM) into PNGs and COCO detection files.

Input (the release layout)::

    SRC/annotations/{train,test}.csv      columns exactly ``CSV_COLUMNS``
    SRC/{train,test}_images/<image_id>.dicom

Output (the data contract of spinexr)::

    DST/{split}/<image_id>.png            8-bit grey, display-ready, longer side = img_size
    DST/annotations/{split}.json          COCO detection, every image listed (normal ones too)
    DST/annotations/{train_split,val_split}.json   with val_fraction > 0 (grouped by study_id)
    DST/.convert_state/{split}.jsonl      per-image record of finished PNGs (resume)
    DST/conversion_report.json            summary and every problem found

Resuming: each PNG is written to a temporary file and moved into place with ``os.replace``; the main
process then appends one line per finished image to ``.convert_state/{split}.jsonl`` (original size,
PNG size, img_size, DICOM file size). A later run skips an image whose record matches and whose PNG
exists, and removes stale temporary files. Nothing converted is ever deleted.

Bad input (reported with file, row and reason): a missing/renamed CSV column, a CSV that is not
UTF-8 or not valid CSV (the whole split is unreadable: fatal), an ``image_id`` that is not a plain
file name (never used in a path, see :mod:`.vindr_csv`), an unknown ``lesion_type``, a lesion row
with missing, non-numeric or inverted (``xmax < xmin`` / ``ymax < ymin``) coordinates, an image
listed in the CSV but absent on disk, a DICOM that cannot be decoded.
Without ``skip_bad`` every problem is reported, all good images are still converted, and the COCO
file of a split with problems is NOT written (an older one is left untouched), so a
training run can never silently use an incomplete annotation file; the run fails. With
``skip_bad`` the bad images are left out of the COCO file and listed.
"""
import json
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from spinexr.datasets.metainfo import CLASSES

from .vindr_csv import ImageEntry, Problem, file_name_problem, read_split_csv, shown_id

__all__ = ['ImageEntry', 'Problem', 'SplitSummary', 'build_coco', 'convert_image',
           'convert_vindr_spinexr', 'read_split_csv', 'split_by_study', 'target_size']

STATE_DIR = '.convert_state'


@dataclass
class SplitSummary:
    """What happened to one split."""
    split: str
    images_in_csv: int = 0
    converted: int = 0
    resumed: int = 0
    skipped: List[str] = field(default_factory=list)
    images_written: int = 0
    normal_images: int = 0
    boxes: int = 0
    dropped_boxes: int = 0
    per_class: Dict[str, int] = field(default_factory=dict)
    dropped_per_class: Dict[str, int] = field(default_factory=dict)
    json_written: bool = False


def target_size(orig_h: int, orig_w: int, img_size: int) -> Tuple[int, int]:
    """``(height, width)`` of the PNG: the longer side becomes ``img_size``."""
    scale = img_size / max(orig_h, orig_w)
    return max(1, int(round(orig_h * scale))), max(1, int(round(orig_w * scale)))


def _child(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/<stem><suffix>``; raises ``ValueError`` if ``stem`` is not a plain file name."""
    why = file_name_problem(stem)
    if why is not None:
        raise ValueError(f'refusing to build a path in {folder} from {stem!r}: {why}')
    return folder / f'{stem}{suffix}'


def _init_worker() -> None:
    import cv2
    cv2.setNumThreads(1)


def convert_image(dicom_path: str, png_path: str, img_size: int, fast_decode: bool = True) -> dict:
    """Decode one DICOM, resize it and write the PNG atomically (runs in a worker).

    Args:
        dicom_path (str): Source DICOM.
        png_path (str): Destination PNG.
        img_size (int): Longer side of the PNG.
        fast_decode (bool): Allow the reduced-resolution JPEG 2000 decode.

    Returns:
        dict: ``ok``, ``height``, ``width``, ``orig_height``, ``orig_width`` or ``error``.
    """
    import cv2

    from spinexr.io.dicom import DicomReadError, load_dicom
    try:
        dimg = load_dicom(dicom_path, min_long_side=img_size if fast_decode else None)
    except DicomReadError as exc:
        return dict(ok=False, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - report, never crash the whole run
        return dict(ok=False, error=f'{dicom_path}: {type(exc).__name__}: {exc}')
    h, w = target_size(dimg.orig_height, dimg.orig_width, img_size)
    img = dimg.image
    if img.shape != (h, w):
        shrink = h * w < img.shape[0] * img.shape[1]
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        return dict(ok=False, error=f'{png_path}: PNG encoding failed')
    tmp = f'{os.path.dirname(png_path)}/.{os.path.basename(png_path)}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(buf.tobytes())
    os.replace(tmp, png_path)
    return dict(ok=True, height=h, width=w, orig_height=dimg.orig_height,
                orig_width=dimg.orig_width)


def _load_state(state_file: Path) -> Dict[str, dict]:
    done: Dict[str, dict] = {}
    if state_file.is_file():
        with open(state_file, encoding='utf-8') as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    done[rec['image_id']] = rec
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interruption
    return done


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def build_coco(entries: Iterable[ImageEntry], sizes: Dict[str, dict], split: str,
               summary: SplitSummary) -> dict:
    """COCO dict of the converted images; boxes scaled to PNG pixels, clipped, < 1 px dropped."""
    images, annotations = [], []
    per_class, dropped = Counter(), Counter()
    for entry in entries:
        rec = sizes[entry.image_id]
        ow, oh, w, h = rec['orig_width'], rec['orig_height'], rec['width'], rec['height']
        img_id = len(images) + 1
        images.append(dict(id=img_id, file_name=f'{split}/{entry.image_id}.png', width=w,
                           height=h, image_id=entry.image_id, study_id=entry.study_id,
                           series_id=entry.series_id, orig_width=ow, orig_height=oh,
                           abnormal=entry.abnormal))
        sx, sy = w / ow, h / oh
        for label, x1, y1, x2, y2, rad_id in entry.boxes:
            x1, x2 = (min(max(v, 0.0), ow) * sx for v in (x1, x2))
            y1, y2 = (min(max(v, 0.0), oh) * sy for v in (y1, y2))
            bw, bh = x2 - x1, y2 - y1
            if bw < 1 or bh < 1:
                dropped[CLASSES[label]] += 1
                continue
            per_class[CLASSES[label]] += 1
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=label + 1,
                                    bbox=[round(x1, 3), round(y1, 3), round(bw, 3), round(bh, 3)],
                                    area=round(bw * bh, 3), iscrowd=0, rad_id=rad_id))
    summary.images_written = len(images)
    summary.normal_images = sum(not im['abnormal'] for im in images)
    summary.boxes = len(annotations)
    summary.dropped_boxes = sum(dropped.values())
    summary.per_class = {c: per_class[c] for c in CLASSES}
    summary.dropped_per_class = {c: dropped[c] for c in CLASSES if dropped[c]}
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)])


def split_by_study(coco: dict, val_fraction: float, seed: int = 0) -> Tuple[dict, dict]:
    """Split a COCO dict into (train, val) so that no study is in both.

    Args:
        coco (dict): COCO detection dict with ``study_id`` on every image.
        val_fraction (float): Share of studies that go to val.
        seed (int): Random seed.

    Returns:
        tuple[dict, dict]: The train and val COCO dicts (ids kept).
    """
    studies = sorted({im['study_id'] for im in coco['images']})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(studies))
    n_val = int(round(val_fraction * len(studies)))
    val_studies = {studies[i] for i in order[:n_val]}
    parts = []
    for want_val in (False, True):
        imgs = [im for im in coco['images'] if (im['study_id'] in val_studies) == want_val]
        ids = {im['id'] for im in imgs}
        parts.append(dict(images=imgs, categories=coco['categories'],
                          annotations=[a for a in coco['annotations'] if a['image_id'] in ids]))
    return parts[0], parts[1]


def convert_split(src: Path, dst: Path, split: str, img_size: int, workers: int, skip_bad: bool,
                  fast_decode: bool, progress: bool, val_fraction: float,
                  seed: int) -> Tuple[SplitSummary, List[Problem]]:
    """Convert one split; see :func:`convert_vindr_spinexr`."""
    from tqdm import tqdm
    summary = SplitSummary(split=split)
    entries, problems = read_split_csv(src / 'annotations' / f'{split}.csv', split)
    if any(p.fatal for p in problems):
        return summary, problems
    summary.images_in_csv = len(entries)
    bad = {p.image_id for p in problems if p.image_id}
    out_dir = dst / split
    out_dir.mkdir(parents=True, exist_ok=True)
    (dst / 'annotations').mkdir(parents=True, exist_ok=True)
    (dst / STATE_DIR).mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob('.*.tmp*'):
        stale.unlink()
    state_file = dst / STATE_DIR / f'{split}.jsonl'
    done = _load_state(state_file)
    sizes: Dict[str, dict] = {}
    tasks = []
    for image_id, entry in entries.items():
        if image_id in bad:  # a refused image_id never reaches a path
            continue
        dcm = _child(src / f'{split}_images', image_id, '.dicom')
        if not dcm.is_file():
            problems.append(Problem(split, str(src / 'annotations' / f'{split}.csv'),
                                    f'image listed in the CSV but not on disk: {dcm}',
                                    row=entry.first_row, image_id=image_id))
            bad.add(image_id)
            continue
        png = _child(out_dir, image_id, '.png')
        rec = done.get(image_id)
        if (rec is not None and rec.get('img_size') == img_size
                and rec.get('src_bytes') == dcm.stat().st_size and png.is_file()):
            sizes[image_id] = rec
            summary.resumed += 1
            continue
        tasks.append((image_id, str(dcm), str(png)))

    def record(image_id: str, dcm: str, result: dict, state) -> None:
        if not result['ok']:
            problems.append(Problem(split, dcm, f"corrupt or undecodable DICOM: "
                                    f"{result['error']}", image_id=image_id))
            bad.add(image_id)
            return
        rec = dict(image_id=image_id, img_size=img_size, src_bytes=os.path.getsize(dcm),
                   **{k: result[k] for k in ('height', 'width', 'orig_height', 'orig_width')})
        state.write(json.dumps(rec) + '\n')
        state.flush()
        sizes[image_id] = rec
        summary.converted += 1

    bar = tqdm(total=len(tasks), desc=f'convert {split}', unit='img', disable=not progress)
    with open(state_file, 'a', encoding='utf-8') as state:
        if workers <= 1:
            for image_id, dcm, png in tasks:
                record(image_id, dcm, convert_image(dcm, png, img_size, fast_decode), state)
                bar.update()
        else:
            # forkserver, not fork: forking a parent whose OpenCV/OpenMP thread pools are live
            # can deadlock the children; the server imports this module once, then forks.
            ctx = multiprocessing.get_context('forkserver')
            ctx.set_forkserver_preload([__name__])
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=_init_worker) as pool:
                futures = {pool.submit(convert_image, dcm, png, img_size, fast_decode):
                           (image_id, dcm) for image_id, dcm, png in tasks}
                try:
                    for fut in as_completed(futures):
                        image_id, dcm = futures[fut]
                        try:
                            result = fut.result()
                        except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by OOM
                            result = dict(ok=False, error=f'{type(exc).__name__}: {exc}')
                        record(image_id, dcm, result, state)
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    bar.close()
    summary.skipped = [i for i in entries if i in bad]
    if problems and not skip_bad:
        return summary, problems
    good = [e for i, e in entries.items() if i not in bad]
    coco = build_coco(good, sizes, split, summary)
    _write_json_atomic(dst / 'annotations' / f'{split}.json', coco)
    summary.json_written = True
    if val_fraction > 0 and split == 'train':
        tr, va = split_by_study(coco, val_fraction, seed)
        _write_json_atomic(dst / 'annotations' / 'train_split.json', tr)
        _write_json_atomic(dst / 'annotations' / 'val_split.json', va)
    return summary, problems


def format_summary(summaries: Sequence[SplitSummary], problems: Sequence[Problem],
                   skip_bad: bool) -> str:
    """Human-readable end-of-run summary."""
    lines = []
    for s in summaries:
        lines.append(f'[{s.split}] images in CSV {s.images_in_csv}, converted now {s.converted}, '
                     f'already done {s.resumed}, bad/skipped {len(s.skipped)}')
        if s.json_written:
            lines.append(f'[{s.split}] COCO: {s.images_written} images ({s.normal_images} normal), '
                         f'{s.boxes} boxes, {s.dropped_boxes} dropped (< 1 px after clipping)')
            lines.append(f'[{s.split}] per class: ' +
                         ', '.join(f'{c} {n}' for c, n in s.per_class.items()))
        else:
            lines.append(f'[{s.split}] COCO file NOT written (problems found; fix them or rerun '
                         f'with --skip-bad; converted PNGs are kept)')
        if s.skipped and skip_bad:
            lines.append(f'[{s.split}] skipped images: ' + ', '.join(map(shown_id, s.skipped)))
    if problems:
        lines.append(f'{len(problems)} problem(s):')
        lines.extend(f'  {p}' for p in problems)
    return '\n'.join(lines)


def convert_vindr_spinexr(data_root: str,
                          out_dir: str,
                          img_size: int = 1024,
                          workers: int = 1,
                          skip_bad: bool = False,
                          splits: Sequence[str] = ('train', 'test'),
                          fast_decode: bool = True,
                          val_fraction: float = 0.0,
                          seed: int = 0,
                          progress: bool = True,
                          log: Callable[[str], None] = print) -> int:
    """Convert the release at ``data_root`` into the spinexr layout at ``out_dir``.

    Args:
        data_root (str): Release root (``annotations/``, ``{split}_images/``).
        out_dir (str): Output root.
        img_size (int): Longer side of the PNGs.
        workers (int): Worker processes (``<= 1``: in this process).
        skip_bad (bool): Leave bad images out instead of failing.
        splits (Sequence[str]): Splits to convert.
        fast_decode (bool): Decode JPEG 2000 at a reduced resolution level when it still has at
            least ``img_size`` pixels on its longer side (about 3x less CPU; the PNG differs
            from a full decode + INTER_AREA by under one grey level on average).
        val_fraction (float): If > 0, also write ``train_split.json`` / ``val_split.json`` with this
            share of train studies held out (grouped by ``study_id``).
        seed (int): Seed of the train/val split.
        progress (bool): Show a progress bar.
        log (Callable[[str], None]): Where the summary goes.

    Returns:
        int: Exit code: 0 clean (or problems skipped with ``skip_bad``), 1 problems without
        ``skip_bad``, 2 fatal problems (unreadable CSV).
    """
    src, dst = Path(data_root), Path(out_dir)
    if img_size < 1:
        raise ValueError(f'img_size must be >= 1, got {img_size}')
    for split in splits:
        if file_name_problem(split) is not None:
            raise ValueError(f'split name {split!r} is not a plain file name: '
                             f'{file_name_problem(split)}')
    summaries, problems = [], []
    for split in splits:
        summary, probs = convert_split(src, dst, split, img_size, workers, skip_bad, fast_decode,
                                       progress, val_fraction, seed)
        summaries.append(summary)
        problems.extend(probs)
    report = dict(data_root=str(src), img_size=img_size, skip_bad=skip_bad,
                  splits=[asdict(s) for s in summaries], problems=[asdict(p) for p in problems])
    dst.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(dst / 'conversion_report.json', report)
    log(format_summary(summaries, problems, skip_bad))
    if any(p.fatal for p in problems):
        return 2
    return 1 if problems and not skip_bad else 0
