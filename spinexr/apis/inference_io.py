"""Files in and out for :mod:`spinexr.apis.inference`: input collection, decoding, findings
JSON/CSV (per image and, :mod:`spinexr.apis.inference_study`, per study) and overlays."""
import csv
import json
import os
import os.path as osp
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .inference_preprocess import DICOM_EXTS

#: Extensions read with OpenCV.
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
#: Extensions read as lists of paths.
LIST_EXTS = ('.txt', '.csv')
#: Columns of ``findings.csv``.
CSV_FIELDS = ('image_path', 'image_id', 'study_id', 'width', 'height', 'abnormal_prob',
              'class_name', 'score', 'x1', 'y1', 'x2', 'y2')
_NO_FINDING = 'No finding'


# ----------------------------------------------------------------------------- inputs
def _read_list(path: Path) -> List[str]:
    """Paths of a ``.txt`` (one per line, ``#`` comments) or ``.csv`` (``path`` column or first
    column) list; relative paths are taken from the current directory if they exist there, else
    from the list's folder."""
    with path.open(newline='', encoding='utf-8') as f:
        if path.suffix.lower() == '.csv':
            rows = list(csv.reader(f))
            if not rows:
                return []
            header = [c.strip().lower() for c in rows[0]]
            col = header.index('path') if 'path' in header else 0
            looks_like_header = 'path' in header or not osp.exists(rows[0][0].strip())
            entries = [r[col].strip() for r in rows[1 if looks_like_header else 0:] if len(r) > col]
        else:
            entries = [line.strip() for line in f]
    out = []
    for entry in entries:
        if not entry or entry.startswith('#'):
            continue
        if not osp.isabs(entry) and not osp.exists(entry):
            entry = str(path.parent / entry)
        out.append(entry)
    return out


def collect_inputs(inputs: Iterable[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Expand inputs into image files.

    Args:
        inputs (Iterable[str]): Files (DICOM, PNG, JPEG, ...), folders (searched recursively for
            :data:`DICOM_EXTS` and :data:`IMAGE_EXTS`, case-insensitive) and ``.txt`` / ``.csv``
            lists of paths (folders inside lists are expanded too).

    Returns:
        tuple: ``(files, failures)``: files in input order (folders sorted), without duplicates;
        ``(path, reason)`` for inputs that do not exist.
    """
    files: List[str] = []
    failures: List[Tuple[str, str]] = []
    seen = set()

    def add(p: str) -> None:
        key = osp.abspath(p)
        if key not in seen:
            seen.add(key)
            files.append(p)

    def visit(item: str, from_list: bool = False) -> None:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(q) for q in p.rglob('*')
                           if q.is_file() and q.suffix.lower() in DICOM_EXTS + IMAGE_EXTS)
            if not found:
                failures.append((item, 'folder holds no DICOM or image files'))
            for q in found:
                add(q)
        elif p.is_file() and p.suffix.lower() in LIST_EXTS and not from_list:
            for entry in _read_list(p):
                visit(entry, from_list=True)
        elif p.is_file():
            add(item)
        else:
            failures.append((item, 'no such file or folder'))

    for item in inputs:
        visit(str(item))
    return files, failures


def read_image(path: str,
               min_long_side: Optional[int] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Decode one file into a display image and its original size.

    Args:
        path (str): DICOM (by extension or the ``DICM`` magic) or an OpenCV-readable image.
        min_long_side (int, optional): Lets a JPEG 2000 DICOM decode at a reduced resolution whose
            longer side stays ``>= min_long_side`` (see :func:`spinexr.io.load_dicom`).

    Returns:
        tuple: ``(image, (orig_h, orig_w))``: ``uint8`` ``(H, W)`` grey or ``(H, W, 3)`` BGR (the
        decoded size may be below the original for a reduced DICOM decode); the original size is
        the DICOM's Rows x Columns or the image's own size.

    Raises:
        ValueError: The file cannot be decoded (the message names it and the reason).
    """
    image, orig_shape, _ = _decode(path, min_long_side)
    return image, orig_shape


def _decode(path: str, min_long_side: Optional[int] = None
            ) -> Tuple[np.ndarray, Tuple[int, int], Optional[str]]:
    """:func:`read_image` plus the DICOM's *StudyInstanceUID* (None for other files)."""
    ext = osp.splitext(path)[1].lower()
    is_dicom = ext in DICOM_EXTS
    if not is_dicom and ext not in IMAGE_EXTS:
        with open(path, 'rb') as f:
            is_dicom = f.read(132)[128:132] == b'DICM'
    if is_dicom:
        from spinexr.io.dicom import DicomReadError, load_dicom
        try:
            dimg = load_dicom(path, min_long_side=min_long_side)
        except DicomReadError as exc:
            raise ValueError(str(exc)) from None
        return (dimg.image, (dimg.orig_height, dimg.orig_width),
                dimg.uids.get('StudyInstanceUID') or None)
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ValueError(f'{path}: not a readable image (OpenCV could not decode it)')
    if img.dtype == np.uint16:  # as cv2.IMREAD_COLOR does
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'{path}: unsupported pixel type {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(img), (int(img.shape[0]), int(img.shape[1])), None


class ImageFileDataset(torch.utils.data.Dataset):
    """Decodes files for a ``DataLoader``; a failure is returned as a record, never raised.

    Each item is a dict: ``index``, ``path``, ``image`` (``uint8`` tensor ``(H, W)`` or
    ``(H, W, 3)`` as decoded, None on failure), ``orig_shape`` ``(h, w)``, ``error`` (str or
    None), ``study_uid`` (a DICOM's *StudyInstanceUID*, else None). Nothing is resized here: the
    resize runs batched on the device (:mod:`spinexr.apis.inference_batch`), on CPU too.

    Args:
        paths (Sequence[str]): Files.
        min_long_side (int, optional): Reduced JPEG 2000 decode (see :func:`read_image`).
    """

    def __init__(self, paths: Sequence[str], min_long_side: Optional[int] = None) -> None:
        self.paths = list(paths)
        self.min_long_side = min_long_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path = self.paths[index]
        item = dict(index=index, path=path, image=None, orig_shape=None, error=None,
                    study_uid=None)
        try:
            img, item['orig_shape'], item['study_uid'] = _decode(path, self.min_long_side)
            item['image'] = torch.from_numpy(img)
        except Exception as exc:  # noqa: BLE001 - any decode problem is reported, not raised
            msg = str(exc) if str(path) in str(exc) else f'{path}: {type(exc).__name__}: {exc}'
            item['error'] = msg
        return item


# ----------------------------------------------------------------------------- outputs
def draw_overlay(image: np.ndarray, orig_shape: Tuple[int, int], bboxes: np.ndarray,
                 scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                 abnormal_prob: Optional[float] = None) -> np.ndarray:
    """Draw boxes (original-pixel coordinates), class name and score on the display image.

    Returns:
        np.ndarray: ``(H, W, 3)`` BGR image at the decoded size (boxes scaled onto it).
    """
    import cv2

    from spinexr.datasets.metainfo import PALETTE
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    h, w = canvas.shape[:2]
    sx, sy = w / orig_shape[1], h / orig_shape[0]
    thick = max(1, round(max(h, w) / 500))
    font = max(0.35, max(h, w) / 1600)
    for box, score, label in sorted(zip(bboxes, scores, labels), key=lambda t: t[1]):
        r, g, b = PALETTE[int(label) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in (box[0] * sx, box[1] * sy, box[2] * sx,
                                                   box[3] * sy))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (b, g, r), thick)
        name = class_names[label] if 0 <= label < len(class_names) else f'class_{label}'
        text = f'{name} {score:.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
        cv2.rectangle(canvas, (x1, ty - th - base), (x1 + tw + 2, ty + 1), (b, g, r), -1)
        cv2.putText(canvas, text, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), 1, cv2.LINE_AA)
    if abnormal_prob is not None:
        cv2.putText(canvas, f'abnormal p={abnormal_prob:.3f}', (4, int(30 * font) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, font, (0, 255, 255), 1, cv2.LINE_AA)
    return canvas


def _record(item: Dict[str, Any], det: Dict[str, Any], class_names: Sequence[str]) -> dict:
    h, w = item['orig_shape']
    findings = []
    for box, score, label in zip(det['bboxes'], det['scores'], det['labels']):
        name = class_names[label] if 0 <= label < len(class_names) else f'class_{label}'
        findings.append(dict(class_name=name, class_id=int(label), score=round(float(score), 5),
                             box=[round(float(v), 2) for v in box]))
    findings.sort(key=lambda f: -f['score'])
    prob = det.get('abnormal_prob')
    # dicom_study_uid becomes study_id / study_id_source in inference_study.assign_study_ids
    return dict(image_path=str(item['path']), image_id=Path(item['path']).stem, width=int(w),
                height=int(h), abnormal_prob=None if prob is None else round(prob, 5),
                findings=findings, dicom_study_uid=item.get('study_uid'))


def write_findings(out_dir: str, records: Sequence[dict], failures: Sequence[Tuple[str, str]],
                   meta: Optional[dict] = None, studies: Optional[Sequence[dict]] = None,
                   class_names: Sequence[str] = ()) -> Dict[str, str]:
    """Write ``findings.json``, ``findings.csv``, ``failures.txt`` (and ``studies.csv``).

    The CSV has one row per finding (:data:`CSV_FIELDS`) and one ``No finding`` row, without
    score and box, for an image without any; the JSON holds the same per image plus ``meta`` and,
    with ``studies`` (:func:`spinexr.apis.inference_study.study_records`), one row per study
    under ``studies``, also written to ``studies.csv``.
    """
    from .inference_study import write_studies_csv
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, f) for k, f in (('json', 'findings.json'),
                                                  ('csv', 'findings.csv'),
                                                  ('failures', 'failures.txt'))}
    payload = dict(meta=meta or {}, images=list(records),
                   failures=[dict(path=p, error=e) for p, e in failures])
    if studies is not None:
        payload['studies'] = list(studies)
        paths['studies'] = write_studies_csv(osp.join(out_dir, 'studies.csv'), studies,
                                             class_names)
    with open(paths['json'], 'w', encoding='utf-8') as f:
        json.dump(payload, f, indent=1)
    with open(paths['csv'], 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for rec in records:
            head = [rec['image_path'], rec['image_id'], rec.get('study_id', ''), rec['width'],
                    rec['height'], '' if rec['abnormal_prob'] is None else rec['abnormal_prob']]
            if not rec['findings']:
                writer.writerow(head + [_NO_FINDING, '', '', '', '', ''])
            for fd in rec['findings']:
                writer.writerow(head + [fd['class_name'], fd['score'], *fd['box']])
    with open(paths['failures'], 'w', encoding='utf-8') as f:
        for p, e in failures:
            f.write(f'{p}\t{e}\n')
    return paths


def _write_overlay(path: str, image: np.ndarray, orig_shape: Tuple[int, int], det: dict,
                   names: Sequence[str]) -> None:
    import cv2
    canvas = draw_overlay(image, orig_shape, det['bboxes'], det['scores'], det['labels'], names,
                          det.get('abnormal_prob'))
    if not cv2.imwrite(path, canvas):
        raise OSError(f'could not write overlay {path}')
